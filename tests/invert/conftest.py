"""Inversion tests (CPU, seconds): the plugin's tiny generator with noise that matters, and a target
rendered by a different tiny generator. Cheap losses are the plugin's ``cheap_losses`` fixture."""

from __future__ import annotations

import pytest
import torch

from sym3dinv.generator import TriPlaneGenerator
from tests.plugin import make_tiny as _make_tiny


def make_tiny(seed: int = 0) -> TriPlaneGenerator:
    return _make_tiny(seed, noise_strength=0.1)  # non-zero noise strengths so the noise buffers matter


@pytest.fixture()
def tiny_G() -> TriPlaneGenerator:
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_factory():
    """``make_tiny(seed)`` for tests that need several generators."""
    return make_tiny


def target_image(yaw: float = 0.5, pitch: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """A [1,3,128,128] image rendered by a *different* tiny generator, and its camera."""
    from sym3dinv.cameras import camera_label

    G1 = make_tiny(1)
    c = camera_label(yaw, pitch)
    with torch.no_grad():
        img = G1.synthesis(G1.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(3)), c), c,
                           sampling="deterministic").image
    return img.clamp(-1, 1), c


@pytest.fixture(scope="session")
def target() -> tuple[torch.Tensor, torch.Tensor]:
    return target_image()
