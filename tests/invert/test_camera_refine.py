"""Stage-1 camera refinement (``stage1.refine_camera``) on the tiny generator: it recovers a known camera
error, its prior keeps corrections small, the mirror camera follows, and the inversion reports the result."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from sym3dinv.cameras import camera_label, mirror_label
from sym3dinv.config.invert import InversionConfig, Stage1Config
from sym3dinv.generator.latents import mean_w
from sym3dinv.invert import invert
from sym3dinv.invert.camera_refine import camera_error_deg, camera_prior, refine_labels
from sym3dinv.invert.render import synthesize
from sym3dinv.invert.stage1 import _step_cameras, run_stage1
from tests.plugin import make_tiny

TRUE = (0.35, 0.05)
ERROR_DEG = (4.0, -3.0, 2.0)


def test_corrections_are_rigid_orbit_moves() -> None:
    c = camera_label(torch.tensor([0.3, -0.5]), torch.tensor([0.1, 0.0]))
    d = torch.tensor([[0.05, -0.02, 0.03], [0.0, 0.0, 0.0]], requires_grad=True)
    r = refine_labels(c, d)
    ref = camera_label(torch.tensor([0.35, -0.5]), torch.tensor([0.08, 0.0]), roll=torch.tensor([0.03, 0.0]))
    assert torch.allclose(r, ref, atol=1e-5)
    r.sum().backward()
    assert d.grad is not None and bool((d.grad[0] != 0).all())  # roll too, although it starts at 0
    assert camera_prior(torch.deg2rad(torch.tensor([[5.0, 0.0, 0.0]])), 5.0).item() == pytest.approx(1.0)


def _problem(prior_weight: float, steps: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(true camera, perturbed camera, camera after stage 1): the target is the start latent rendered at the
    true camera, and ws barely move, so only the camera can explain the difference."""
    G = make_tiny(0)
    c_true = camera_label(*TRUE)
    w, _ = mean_w(G, camera_label(0.0, 0.0), 64, torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = synthesize(G, w.repeat(1, G.num_ws, 1), c_true, sampling="deterministic").image
    c0 = refine_labels(c_true, torch.deg2rad(torch.tensor([ERROR_DEG]))).detach()
    s1 = replace(Stage1Config(), steps=steps, w_avg_samples=64, w_avg_camera="frontal", noise_scale=0.0,
                 optimize_noise=False, lr=1e-5, refine_camera=True, camera_lr=0.01, camera_prior_weight=prior_weight)
    from tests.plugin import make_cheap_losses

    r = run_stage1(G, img, c0, InversionConfig(mode="w+", resolution=128, stage1=s1), make_cheap_losses(),
                   torch.Generator().manual_seed(0))
    assert r.cameras is not None and "camera_delta_deg" in r.history[-1]
    return c_true, c0, r.cameras


def test_refinement_recovers_a_known_perturbation() -> None:
    c_true, c0, c1 = _problem(prior_weight=1e-6)
    before, after = camera_error_deg(c0, c_true)[0], camera_error_deg(c1, c_true)[0]
    assert torch.allclose(before, torch.tensor([abs(e) for e in ERROR_DEG]), atol=1e-3)
    assert bool((after < 0.5).all()), after  # 4/3/2 deg -> under half a degree


def test_a_strong_prior_keeps_the_estimate() -> None:
    _, c0, c1 = _problem(prior_weight=100.0, steps=8)
    assert bool((camera_error_deg(c1, c0)[0] < 0.3).all())


def test_mirror_camera_follows_the_refined_one() -> None:
    c = camera_label(torch.tensor([0.4, -0.3]), 0.05)
    d = torch.deg2rad(torch.tensor([[3.0, 1.0, 0.0], [-2.0, 0.0, 1.0]]))
    cams = _step_cameras(c, d, mirrored=True)
    assert torch.allclose(cams[:2], refine_labels(c, d)) and torch.allclose(cams[2:], mirror_label(cams[:2]))
    assert torch.equal(_step_cameras(c, None, mirrored=False), c)


def test_inversion_reports_and_uses_the_refined_camera(cheap_losses) -> None:
    G = make_tiny(0)
    c = camera_label(0.5, 0.0)
    img = torch.zeros(1, 3, 128, 128)
    cfg = InversionConfig(mode="pti", resolution=128, stage1=replace(Stage1Config(), steps=3, w_avg_samples=32,
                          refine_camera=True, camera_lr=0.02),
                          stage2=replace(InversionConfig().stage2, steps=1))
    r = invert(G, img, c[0], config=cfg, losses=cheap_losses)
    moved = camera_error_deg(r.camera, c)[0]
    assert 0 < float(moved.max()) < 5 and math.isfinite(float(moved.sum()))
    off = invert(G, img, c[0], config=replace(cfg, stage1=replace(cfg.stage1, refine_camera=False)), losses=cheap_losses)
    assert torch.equal(off.camera, c)
