"""Pseudo-label pieces of stage 2: asymmetry filter, crops, regions, warped-view loss, contextual loss."""

from __future__ import annotations

import pytest
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.invert.losses import patch_contextual_loss
from sym3dinv.invert.pseudo import (
    FaceRegions,
    asymmetry_mask,
    crop_boxes,
    depth_reg_loss,
    mirror_pseudo_loss,
    warp_pseudo_loss,
)
from sym3dinv.invert.render import cross_offsets, views_around


def test_asymmetry_mask_rule() -> None:
    flipped = torch.zeros(1, 3, 4, 4)
    render = torch.zeros(1, 3, 4, 4)
    render[..., 0, 0] = 0.2  # agrees within 0.25
    render[..., 1, 1] = 0.9  # conflicts
    keep = asymmetry_mask(render, flipped, 0.25)
    assert keep.shape == (1, 1, 4, 4) and keep[0, 0, 0, 0] and not keep[0, 0, 1, 1] and keep.sum() == 15


def test_crop_boxes_exact_on_pixel_grid() -> None:
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    crops = crop_boxes(x, [(0.0, 0.0, 0.5, 0.5), (0.5, 0.25, 1.0, 0.75)], 4)
    assert torch.equal(crops[0, 0], x[0, 0, :4, :4]) and torch.equal(crops[1, 0], x[0, 0, 2:6, 4:])


def test_regions_from_landmarks() -> None:
    lm = torch.zeros(68, 2)
    lm[36:42] = torch.tensor([30.0, 50.0])
    lm[36, 0], lm[39, 0] = 20.0, 40.0
    lm[42:48] = torch.tensor([70.0, 50.0])
    lm[48:68] = torch.tensor([50.0, 80.0])
    r = FaceRegions.from_landmarks(lm, 100, pad=0.0)
    assert r.boxes[0] == pytest.approx((0.2, 0.5, 0.4, 0.5)) and r.boxes[2] == pytest.approx((0.5, 0.8, 0.5, 0.8))
    with pytest.raises(ValueError):
        FaceRegions.from_landmarks(torch.zeros(5, 2), 100)


def test_contextual_loss_prefers_same_content() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    shifted = torch.roll(x, 1, dims=3)  # same patches, misaligned: contextual loss stays small
    other = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    same, shift, diff = (float(patch_contextual_loss(x, y)) for y in (x, shifted, other))
    assert same < shift < diff and shift < 0.5 * diff


def test_mirror_loss_zero_for_symmetric_match() -> None:
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    loss, kept = mirror_pseudo_loss(torch.flip(img, dims=(-1,)), img, FaceRegions(), patch_contextual_loss, 0.25, 16)
    assert float(kept) == 1.0 and float(loss) < 0.1


def test_warp_loss_identity_views_and_depth_reg() -> None:
    c = camera_label(0.3, 0.0)
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    depth = torch.full((1, 1, 8, 8), 2.5)
    per_view, valid = warp_pseudo_loss(img.expand(2, -1, -1, -1), c.expand(2, -1), depth.expand(2, -1, -1, -1),
                                       img, c, depth, None, lambda a, b: (a - b).abs().mean(dim=(1, 2, 3)), 0.05)
    assert valid.shape == (2, 1, 32, 32) and valid.float().mean() > 0.9
    assert per_view.max() < 0.02  # same camera: the warp reproduces the input
    assert float(depth_reg_loss(depth + 0.1, depth)) == pytest.approx(0.01, rel=1e-5)


def test_views_around_offsets() -> None:
    from sym3dinv.cameras import yaw_pitch_roll

    c = camera_label(0.3, -0.05)
    v = views_around(c, cross_offsets(0.2, 0.1))
    ypr = yaw_pitch_roll(v)
    assert torch.allclose(ypr[:, 0], torch.tensor([0.5, 0.1, 0.3, 0.3]), atol=1e-5)
    assert torch.allclose(ypr[:, 1], torch.tensor([-0.05, -0.05, 0.05, -0.15]), atol=1e-5)
    assert torch.allclose(v[:, 16:], c[:, 16:].expand(4, -1))
