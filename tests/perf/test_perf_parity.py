"""Every speed switch keeps the inversion's function: on and off give the same losses/results within
tolerance (real LPIPS weights, the tiny random generator)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.config.invert import InversionConfig, PerformanceConfig, Stage1Config, Stage2Config
from sym3dinv.invert import render_views
from sym3dinv.invert.losses import (
    LossFunctions,
    default_losses,
    fixed_target_loss,
    patch_contextual_loss,
    set_loss_memory_format,
)
from sym3dinv.invert.stage1 import run_stage1
from sym3dinv.invert.stage2 import run_stage2
from sym3dinv.metrics.lpips import load_lpips
from tests.plugin import make_tiny


@pytest.fixture(scope="module")
def lpips_losses() -> LossFunctions:
    return LossFunctions(perceptual=load_lpips("alex"), contextual=patch_contextual_loss)


@pytest.fixture(scope="module")
def target() -> tuple[torch.Tensor, torch.Tensor]:
    G1 = make_tiny(1)
    c = camera_label(0.45, 0.05)
    with torch.no_grad():
        z = torch.randn(1, 16, generator=torch.Generator().manual_seed(3))
        img = G1.synthesis(G1.mapping(z, c), c, sampling="deterministic").image.clamp(-1, 1)
    return img, c


def _config(**perf: object) -> InversionConfig:
    return InversionConfig(
        stage1=Stage1Config(steps=2, w_avg_samples=64, lpips_resolution=64),
        stage2=Stage2Config(steps=3, pseudo_every=2, lpips_resolution=64, lpips_threshold=0.0, region_size=16),
        resolution=128, perf=PerformanceConfig(**perf))  # type: ignore[arg-type]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_cached_target_features_give_identical_loss_and_gradient(net: str) -> None:
    fn = load_lpips(net)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    x = (torch.rand(2, 3, 64, 64, generator=g) * 2 - 1).requires_grad_(True)
    values, grads = [], []
    for cache in (True, False):
        v = fixed_target_loss(fn, target, cache=cache)(x)
        (gx,) = torch.autograd.grad(v.sum(), x)
        values.append(v.detach())
        grads.append(gx)
    assert values[0].shape == (2,) and float(values[0].min()) > 0.01  # a real, non-trivial distance
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)


def test_fixed_target_loss_passes_other_losses_through() -> None:
    calls = []

    def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return (x - y).abs().mean(dim=(1, 2, 3))

    t = torch.zeros(1, 3, 8, 8)
    out = fixed_target_loss(l1, t, cache=True)(torch.ones(3, 3, 8, 8))
    assert out.tolist() == [1.0, 1.0, 1.0] and len(calls) == 1


def test_channels_last_loss_networks_same_values_and_gradients() -> None:
    """The switch stores every loss network's conv weights NHWC (the contextual loss's bound VGG too) and
    back; LPIPS-VGG/Alex and the contextual loss give the same values and input gradients either way."""
    losses = default_losses("vgg")
    assert losses.contextual.keywords["vgg"] is losses.perceptual  # type: ignore[attr-defined]
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    results = []
    try:
        for cl in (True, False):
            set_loss_memory_format(losses, cl)
            convs = [m.weight for net in (losses.perceptual, losses.lpips_metric) for m in net.modules()  # type: ignore[union-attr]
                     if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]  # (1x1 weights are both)
            assert len(convs) == 18 and all(w.is_contiguous(memory_format=torch.channels_last) == cl
                                            and w.is_contiguous() == (not cl) for w in convs)
            x = x0.clone().requires_grad_(True)
            vals = torch.stack([losses.perceptual(x, y), losses.lpips_metric(x, y),  # type: ignore[misc]
                                losses.contextual(x[:, :, :32, :32], y[:, :, :32, :32])])
            (gx,) = torch.autograd.grad(vals.sum(), x)
            results.append((vals.detach(), gx))
    finally:
        set_loss_memory_format(losses, False)  # the modules are shared per process
    assert float(results[0][0].min()) > 0.01  # real, non-trivial distances
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-7)


def test_stage2_channels_last_on_off_same_losses(target, lpips_losses) -> None:
    img, c = target
    G = make_tiny(0, noise_strength=0.1)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)), c)
    runs = [run_stage2(G, img, c, ws, {}, _config(channels_last=t), lpips_losses) for t in ("on", "off")]
    assert runs[0].pseudo_steps == (0, 2) and "warp" in runs[0].history[0]
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(b[k])), (k, a[k], b[k])
    for k in runs[0].delta:
        torch.testing.assert_close(runs[0].delta[k], runs[1].delta[k], rtol=0, atol=1e-4)


def test_stage1_cache_on_off_same_history(target, lpips_losses) -> None:
    img, c = target
    G = make_tiny(0, noise_strength=0.1)
    runs = []
    for cache in (True, False):
        cfg = _config(cache_target_features=cache)
        runs.append(run_stage1(G, img, c, cfg, lpips_losses, torch.Generator().manual_seed(0)))
    assert runs[0].history[0]["mirror_lpips"] > 0  # the mirrored target (yaw 0.45) is part of the loss
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        for k in ("lpips", "mirror_lpips", "loss"):
            assert abs(a[k] - b[k]) <= 1e-6, (k, a[k], b[k])
    torch.testing.assert_close(runs[0].ws, runs[1].ws, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("switch", "on", "off"), [("unfused_modconv", "on", "off"), ("share_planes", True, False),
                                                   ("channels_last", "on", "off")])
def test_stage1_switch_on_off_same_result(target, lpips_losses, switch: str, on: object, off: object) -> None:
    img, c = target
    G = make_tiny(0, noise_strength=0.1)
    runs = [run_stage1(G, img, c, _config(**{switch: t}), lpips_losses, torch.Generator().manual_seed(0))
            for t in (on, off)]
    assert runs[0].history[0]["mirror_lpips"] > 0 and runs[0].noise  # mirror view and per-image noise active
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        assert abs(a["loss"] - b["loss"]) <= 1e-4
    torch.testing.assert_close(runs[0].ws, runs[1].ws, rtol=0, atol=1e-4)


def test_stage2_switches_on_off_same_losses(target, lpips_losses) -> None:
    img, c = target
    G = make_tiny(0, noise_strength=0.1)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)), c)
    on = _config()
    on = replace(on, stage2=replace(on.stage2, steps=2))  # a pseudo-label step (0) and a plain one (1)
    off = replace(on, perf=PerformanceConfig(cache_target_features=False, unfused_modconv="off",
                                             inference_mode=False, share_planes=False))
    runs = [run_stage2(G, img, c, ws, {}, cfg, lpips_losses) for cfg in (on, off)]
    assert runs[0].pseudo_steps == runs[1].pseudo_steps == (0,)
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(b[k])), (k, a[k], b[k])
    for k in runs[0].delta:  # Adam steps are ~lr = 3e-4 per element: 1e-4 is well inside one step
        torch.testing.assert_close(runs[0].delta[k], runs[1].delta[k], rtol=0, atol=1e-4)


@pytest.mark.parametrize(("views", "share"), [(1, True), (2, True), (4, False), (5, True)])
@pytest.mark.parametrize("warp_depth", ["pivot", "current"])
def test_stage2_views_per_pass_same_losses_and_weights(target, lpips_losses, views: int, share: bool,
                                                       warp_depth: str) -> None:
    """Passes of a few cameras (gradient accumulation, tri-planes computed once) = all six in one pass."""
    img, c = target
    G = make_tiny(0, noise_strength=0.1)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)), c)
    base = _config(views_per_pass=0, share_planes=share)
    base = replace(base, stage2=replace(base.stage2, steps=3, warp_depth=warp_depth))  # pseudo, plain, pseudo
    passes = replace(base, perf=replace(base.perf, views_per_pass=views))
    runs = [run_stage2(G, img, c, ws, {}, cfg, lpips_losses) for cfg in (base, passes)]
    assert runs[0].pseudo_steps == runs[1].pseudo_steps == (0, 2)
    assert {"warp", "warp_valid", "mirror", "mirror_kept", "depth_reg"} <= runs[0].history[0].keys()
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        assert list(a) == list(b)
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(b[k])), (k, a[k], b[k])
    for k in runs[0].delta:  # Adam turns rounding of ~0 gradients into up to one lr-sized step (3e-4)
        diff = (runs[1].delta[k] - runs[0].delta[k]).abs()
        assert float(diff.max()) <= 1e-4 and float(diff.mean()) <= 1e-6, (k, float(diff.max()), float(diff.mean()))
    assert max(float(d.abs().max()) for d in runs[0].delta.values()) > 1e-4  # the weights really moved


def test_render_views_inference_mode_same_and_writable() -> None:
    G = make_tiny(0)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(0)), camera_label(0.0, 0.0))
    cams = torch.cat([camera_label(y, 0.0) for y in (-0.3, 0.3)])
    fast = render_views(G, ws, cams)
    slow = render_views(G, ws, cams, inference_mode=False)
    for a, b in zip((fast.image, fast.depth_z), (slow.image, slow.depth_z), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not fast.image.is_inference()
    fast.image.clamp_(-1, 1)  # callers may modify the returned tensors in place
    unfused = render_views(G, ws, cams, fused_modconv=False)
    torch.testing.assert_close(unfused.image, slow.image, rtol=0, atol=1e-4)
    per_camera = render_views(G, ws, cams, share_planes=False)  # backbone once per camera
    torch.testing.assert_close(per_camera.image, slow.image, rtol=0, atol=1e-5)
    torch.testing.assert_close(per_camera.depth, slow.depth, rtol=0, atol=1e-5)


def test_paper_and_fast_presets_have_default_perf() -> None:
    from sym3dinv.config.presets import preset

    assert preset("paper").perf == preset("fast").perf == PerformanceConfig()
    assert replace(preset("fast"), perf=PerformanceConfig(cache_target_features=False)).stage1.steps == 100
