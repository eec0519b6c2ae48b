"""Depth error closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from sym3dinv.errors import ConfigError
from sym3dinv.metrics.depth import depth_error


def test_closed_form_with_mask() -> None:
    gt = torch.full((2, 4, 4), 2.0)
    pred = gt.clone()
    pred[0, 0, :] = 2.5  # 4 pixels off by 0.5
    pred[0, 3, :] = 100.0  # masked out below
    pred[1] = 2.2  # every pixel off by 0.2
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[0, 3, :] = False
    r = depth_error(pred, gt, mask)
    torch.testing.assert_close(r.mae, torch.tensor([4 * 0.5 / 12, 0.2]))
    torch.testing.assert_close(r.rmse, torch.tensor([math.sqrt(4 * 0.25 / 12), 0.2]))
    torch.testing.assert_close(r.valid_pixels, torch.tensor([12.0, 16.0]))
    torch.testing.assert_close(r.scale, torch.ones(2))


def test_median_alignment_removes_global_scale() -> None:
    gt = torch.linspace(2.0, 3.0, 64).reshape(1, 8, 8)
    r = depth_error(gt * 1.1, gt, align="median")
    assert r.scale.item() == pytest.approx(1 / 1.1, rel=1e-5)
    assert r.mae.item() < 1e-6
    raw = depth_error(gt * 1.1, gt)
    assert raw.mae.item() == pytest.approx((gt * 0.1).mean().item(), rel=1e-5)


def test_nonfinite_and_empty_and_nchw() -> None:
    gt = torch.ones(1, 1, 3, 3)
    pred = gt.clone()
    pred[0, 0, 0, 0] = float("inf")  # background rays: ignored, not propagated
    r = depth_error(pred, gt)
    assert r.mae.item() == 0.0 and r.valid_pixels.item() == 8
    empty = depth_error(pred[:, 0], gt[:, 0], torch.zeros(1, 3, 3, dtype=torch.bool))
    assert math.isnan(empty.mae.item()) and empty.valid_pixels.item() == 0
    with pytest.raises(ConfigError):
        depth_error(torch.ones(1, 3, 3), torch.ones(1, 3, 4))
