"""Contextual loss: minimum at identity, tolerant of small misalignment, sensitive to content."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sym3dinv.errors import ConfigError
from sym3dinv.metrics.contextual import contextual_loss, cx_from_features

from .conftest import to_pm1


@pytest.fixture(scope="module")
def crops(astronaut: np.ndarray) -> dict[str, torch.Tensor]:
    import skimage.data

    cat = skimage.data.chelsea()
    g = torch.Generator().manual_seed(0)
    eye = to_pm1(astronaut[70:134, 180:276])  # 64x96 around the eyes
    return {
        "eye": eye,
        "shift2": to_pm1(astronaut[70:134, 182:278]),  # same region, 2 px to the side
        "mouth": to_pm1(astronaut[120:184, 180:276]),  # same face, other region
        "other": to_pm1(cat[100:164, 150:246]),  # a different image
        "noise05": (eye + 0.05 * torch.randn(eye.shape, generator=g)).clamp(-1, 1),
        "noise20": (eye + 0.2 * torch.randn(eye.shape, generator=g)).clamp(-1, 1),
    }


@pytest.fixture(scope="module")
def losses(crops) -> dict[str, float]:
    names = ["eye", "shift2", "noise05", "noise20", "mouth", "other"]
    x = torch.cat([crops[n] for n in names])
    y = crops["eye"].expand_as(x)
    with torch.no_grad():
        out = contextual_loss(x, y)  # one batched call
    assert out.shape == (len(names),)
    return dict(zip(names, out.tolist(), strict=True))


def test_identity_is_the_minimum(losses) -> None:
    assert losses["eye"] == pytest.approx(0.0, abs=1e-4)  # CX = 1 -> -log 1
    assert all(v > losses["eye"] for k, v in losses.items() if k != "eye")


def test_small_shift_costs_little_compared_to_other_content(losses) -> None:
    assert losses["shift2"] < 0.5
    assert losses["other"] > 5 * losses["shift2"]
    assert losses["mouth"] > 5 * losses["shift2"]


def test_monotone_in_noise(losses) -> None:
    assert losses["eye"] < losses["noise05"] < losses["noise20"] < losses["other"]


def test_cx_is_invariant_to_permuting_feature_positions() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 6, 7, generator=g)
    y = torch.randn(2, 16, 5, 5, generator=g)
    perm = torch.randperm(42, generator=g)
    xp = x.reshape(2, 16, 42)[:, :, perm].reshape(2, 16, 6, 7)
    torch.testing.assert_close(cx_from_features(xp, y), cx_from_features(x, y), atol=1e-6, rtol=0)
    assert cx_from_features(y, y).min().item() == pytest.approx(1.0, abs=1e-4)
    assert (cx_from_features(x, y) < 0.9).all()


def test_gradient_is_finite_and_descends(crops) -> None:
    x = crops["noise20"].clone().requires_grad_(True)
    loss = contextual_loss(x, crops["eye"], layers=("relu3_3",))
    loss.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = contextual_loss(x - 0.02 * x.grad / x.grad.abs().max(), crops["eye"], layers=("relu3_3",))
    assert stepped.item() < loss.item()


def test_bad_arguments() -> None:
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ConfigError):
        contextual_loss(x, x, layers=("conv9",))
    with pytest.raises(ConfigError):
        contextual_loss(x, torch.zeros(2, 3, 32, 32))
