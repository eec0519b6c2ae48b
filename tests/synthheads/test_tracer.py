"""Ground-truth correctness of the SynthHeads renderer: depth, mirror symmetry, landmarks, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sym3dinv import cameras
from sym3dinv.synthheads.dataset import render_identity
from sym3dinv.synthheads.head import LANDMARK_MIRROR, LANDMARKS, Head, Part
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import RAY_END, RAY_START, render_head

RES = 64


@pytest.fixture(scope="module")
def sym_head() -> Head:
    return Head(sample_head_params(3, strong=False))


def test_same_seed_renders_bit_identical() -> None:
    lab = cameras.camera_label(torch.tensor([0.3, -0.5]), torch.tensor([0.1, -0.1]))
    a = render_head(Head(sample_head_params(11)), lab, 32)
    b = render_head(Head(sample_head_params(11)), lab, 32)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.z_depth, b.z_depth) and torch.equal(a.parts, b.parts)


def test_frontal_framing_and_ranges(sym_head: Head) -> None:
    r = render_head(sym_head, cameras.camera_label(0.0, 0.0), RES)
    hit = r.mask[0, 0]
    assert torch.all(r.distance[0, 0][hit] > RAY_START) and torch.all(r.distance[0, 0][hit] < RAY_END)
    assert torch.all(r.distance[0, 0][~hit] == RAY_END)
    face = r.face_mask[0, 0]
    cols = face.any(0).nonzero()
    width = float(cols.max() - cols.min() + 1) / RES
    assert 0.4 < width < 0.7  # FFHQ-like crop
    for p in (Part.SKIN, Part.EYES, Part.BROWS, Part.NOSE, Part.LIPS, Part.HAIR, Part.BACKGROUND):
        assert (r.parts == p).any(), p.name
    assert r.rgb.min() >= 0 and r.rgb.max() <= 1
    torch.testing.assert_close(r.as_eg3d(), r.rgb * 2 - 1)


def test_depth_reprojection_between_views() -> None:
    head = Head(sample_head_params(5))
    lab = cameras.camera_label(torch.tensor([0.35, -0.25]), torch.tensor([0.05, -0.12]))
    r = render_head(head, lab, RES)
    o, d = cameras.pixel_rays(lab[:1], RES)
    hit_a = r.mask[0, 0].reshape(-1)
    pts = (o + d * r.distance[:1, 0].reshape(1, -1, 1))[:, hit_a]  # A's surface points
    # z-depth and ray distance agree through the optical-axis cosine
    z_a = cameras.ray_distance_to_z(r.distance[:1], lab[:1])
    torch.testing.assert_close(z_a, r.z_depth[:1])
    uv, z_proj = cameras.world_to_pixel(pts, lab[1:])
    zb = r.z_depth[1:]
    spread = F.max_pool2d(zb, 3, 1, 1) + F.max_pool2d(-zb, 3, 1, 1)  # local depth range
    smooth = ((spread < 0.03) & r.mask[1:]).float()  # away from silhouettes and depth edges
    grid = (uv * 2 - 1)[:, None]  # [1, 1, P, 2]; pixel centres at (j + 0.5) / RES as in pixel_rays
    keep = F.grid_sample(smooth, grid, mode="nearest", align_corners=False)[0, 0, 0] > 0.5
    keep &= ((uv > 0.02) & (uv < 0.98)).all(-1)[0]
    z_b = F.grid_sample(zb, grid, mode="bilinear", align_corners=False)[0, 0, 0]
    diff = (z_proj[0] - z_b)[keep]
    assert keep.sum() > 300
    # nothing A sees lies in front of B's surface (B would have hit it first) ...
    assert (diff < -0.01).float().mean() < 0.01
    # ... and where both see the same point the depths agree (a pixel step on a slanted surface ~5 mm)
    visible = diff.abs() < 0.02
    assert visible.float().mean() > 0.6
    assert diff[visible].abs().median() < 2e-3


def test_mirrored_camera_renders_flipped_image(sym_head: Head) -> None:
    c = cameras.camera_label(0.4, -0.1)
    r = render_head(sym_head, torch.cat((c, cameras.mirror_label(c))), RES)
    flipped = r.rgb[0].flip(-1)
    err = (r.rgb[1] - flipped).abs().amax(0)
    assert err.mean() < 2e-3
    assert (err > 0.05).float().mean() < 0.005  # only a few silhouette pixels may alias
    assert (r.parts[1] == r.parts[0].flip(-1)).float().mean() > 0.995
    torch.testing.assert_close(r.z_depth[1, 0], r.z_depth[0, 0].flip(-1), atol=2e-3, rtol=0)
    # landmarks swap left/right and mirror their x
    lm0, lm1 = r.landmarks[0], r.landmarks[1][list(LANDMARK_MIRROR)]
    torch.testing.assert_close(lm1[:, 0], RES - lm0[:, 0], atol=1e-3, rtol=0)
    torch.testing.assert_close(lm1[:, 1], lm0[:, 1], atol=1e-3, rtol=0)


def test_asymmetric_head_breaks_the_mirror() -> None:
    head = Head(sample_head_params(3, strong=True))
    c = cameras.camera_label(0.4, -0.1)
    r = render_head(head, torch.cat((c, cameras.mirror_label(c))), RES)
    err = (r.rgb[1] - r.rgb[0].flip(-1)).abs().amax(0)
    assert (err > 0.05).float().mean() > 0.01


def _near(mask: torch.Tensor, xy: torch.Tensor, radius: int) -> bool:
    grown = F.max_pool2d(mask[None, None].float(), 2 * radius + 1, 1, radius)[0, 0] > 0
    x, y = (int(v) for v in xy.floor())
    return bool(grown[y, x])


@pytest.mark.parametrize("yaw", [0.0, 0.45])
def test_landmarks_fall_on_their_parts(yaw: float) -> None:
    head = Head(sample_head_params(9, asymmetry_rate=0.0))
    r = render_head(head, cameras.camera_label(yaw, 0.05), 128)
    parts, lm, vis = r.parts[0], r.landmarks[0], r.landmarks_visible[0]
    name = {n: i for i, n in enumerate(LANDMARKS)}
    if yaw == 0.0:  # outline points sit near the silhouette, where the z-test may call a few hidden
        assert vis[:8].all() and vis[8:].sum() >= 7
    assert vis[name["nose_tip"]] and vis[name["eye_left_outer"]]
    assert _near(parts == Part.NOSE, lm[name["nose_tip"]], 0)
    for n in ("eye_right_outer", "eye_right_inner", "eye_left_inner", "eye_left_outer"):
        if vis[name[n]]:
            assert _near(parts == Part.EYES, lm[name[n]], 1), n
    for n in ("mouth_right", "mouth_left"):
        if vis[name[n]]:
            assert _near(parts == Part.LIPS, lm[name[n]], 2), n
    assert _near(parts == Part.SKIN, lm[name["chin"]], 1)
    assert lm[name["chin"], 1] > lm[name["mouth_left"], 1] > lm[name["nose_tip"], 1] > lm[name["eye_left_inner"], 1]
    # outline points sit on the face: skin next to them
    for i in range(9):
        if vis[name[f"outline_{i:02d}"]]:
            assert _near(parts == Part.SKIN, lm[name[f"outline_{i:02d}"]], 2)


def test_render_identity_matches_trainer_contract() -> None:
    lab = cameras.camera_label(torch.tensor([0.0, 0.5, -0.9]), 0.0)
    rgb, z, mask = render_identity(4, lab, 32)
    assert rgb.shape == (3, 3, 32, 32) and z.shape == (3, 1, 32, 32) and mask.shape == (3, 1, 32, 32)
    assert mask.dtype == torch.bool and mask.float().mean() > 0.2
    assert torch.all(z[mask] > 2.0) and torch.all(z[mask] < 3.3)


def test_surfaces_stay_inside_the_ray_range_from_any_orbit_camera() -> None:
    head = Head(sample_head_params(2, strong=True))
    yaw = torch.deg2rad(torch.tensor([-90.0, -60.0, 60.0, 90.0, 180.0, 0.0]))
    pitch = torch.deg2rad(torch.tensor([0.0, 25.0, -25.0, 0.0, 0.0, 60.0]))
    r = render_head(head, cameras.camera_label(yaw, pitch), 32)
    d = r.distance[r.mask]
    assert d.numel() > 1000 and d.min() > RAY_START + 0.05 and d.max() < RAY_END


def test_antialias_smooths_colour_only(sym_head: Head) -> None:
    c = cameras.camera_label(0.4, -0.1)
    lab = torch.cat((c, cameras.mirror_label(c)))
    plain = render_head(sym_head, lab, 32)
    aa = render_head(sym_head, lab, 32, antialias=2)
    assert torch.equal(aa.parts, plain.parts) and torch.equal(aa.z_depth, plain.z_depth)
    assert 0 < (aa.rgb - plain.rgb).abs().mean() < 0.05
    assert (aa.rgb[1] - aa.rgb[0].flip(-1)).abs().mean() < 2e-3  # still mirror-exact
