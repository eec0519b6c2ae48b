"""Stage-1 schedules and the yaw-dependent mirror weight (METHOD.md "Stage 1")."""

from __future__ import annotations

import math

import pytest
import torch

from sym3dinv.cameras import camera_label, mirror_label
from sym3dinv.invert.mirror import flip, flip_box, mirror_weight, mirror_weights
from sym3dinv.invert.schedules import lr_at, noise_scale_at


def test_lr_schedule_key_steps() -> None:
    total, peak = 500, 0.01
    assert lr_at(0, total, peak) == 0.0  # warm-up starts at 0
    assert lr_at(12, total, peak) == pytest.approx(peak * 12 / 25)  # linear over the first 5% (25 steps)
    assert lr_at(25, total, peak) == pytest.approx(peak)
    assert lr_at(200, total, peak) == pytest.approx(peak)
    assert lr_at(375, total, peak) == pytest.approx(peak)  # ramp-down starts at 75%
    assert lr_at(437, total, peak) == pytest.approx(peak * (0.5 - 0.5 * math.cos(math.pi * (63 / 500) / 0.25)))
    assert lr_at(500, total, peak) == pytest.approx(0.0, abs=1e-12)
    lrs = [lr_at(s, total, peak) for s in range(375, 501)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_noise_ramp_key_steps() -> None:
    total = 500
    assert noise_scale_at(0, total) == pytest.approx(0.05)
    assert noise_scale_at(187, total) == pytest.approx(0.05 * (1 - 187 / 375) ** 2)  # quadratic fade
    assert noise_scale_at(375, total) == 0.0
    assert noise_scale_at(499, total) == 0.0


def test_mirror_weight_formula_threshold_symmetry() -> None:
    assert mirror_weight(0.0) == 0.0 and mirror_weight(0.199) == 0.0 and mirror_weight(-0.199) == 0.0
    pdf = math.exp(-0.5 * (0.2 / 0.29) ** 2) / (0.29 * math.sqrt(2 * math.pi))
    assert mirror_weight(0.2) == pytest.approx((1 - pdf / 2.7) / 2)
    assert mirror_weight(0.2) == pytest.approx(0.2992, abs=1e-3)
    assert mirror_weight(0.5) == pytest.approx(0.4424, abs=1e-3)
    for y in (0.2, 0.3, 0.6, 1.0, 1.5):
        assert mirror_weight(y) == mirror_weight(-y)
        assert 0.0 < mirror_weight(y) < 0.5
    ws = [mirror_weight(y) for y in (0.2, 0.4, 0.8, 1.2)]
    assert ws == sorted(ws)  # more sideways -> larger
    batch = mirror_weights(camera_label(torch.tensor([0.1, -0.5, 0.5]))).tolist()
    assert batch[0] == 0 and batch[1] == pytest.approx(batch[2], abs=1e-6) and batch[1] == pytest.approx(0.4424, abs=1e-3)
    # the mirrored camera has the opposite yaw, hence the same weight
    c = camera_label(0.7, 0.1)
    assert float(mirror_weights(mirror_label(c))[0]) == pytest.approx(float(mirror_weights(c)[0]), abs=1e-6)


def test_flips() -> None:
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    assert flip(x)[0, 0, 0].tolist() == [2.0, 1.0, 0.0]
    assert flip_box((0.1, 0.2, 0.3, 0.4)) == pytest.approx((0.7, 0.2, 0.9, 0.4))
