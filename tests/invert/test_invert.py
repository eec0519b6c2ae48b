"""End-to-end inversion on a tiny random generator: mode switches, early stop, pseudo-term cadence,
weight delta, no generator copies, progress, determinism (METHOD.md "Stage 1", "Stage 2", "Baselines")."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.config.invert import InversionConfig, Stage1Config, Stage2Config
from sym3dinv.invert import apply_delta_, invert, invert_batch, render_views, synthesize

PSEUDO_KEYS = {"warp", "mirror", "depth_reg"}


def small_config(mode: str, s1_steps: int = 3, s2_steps: int = 5, **s2: float) -> InversionConfig:
    s2.setdefault("lpips_threshold", 0.0)
    return InversionConfig(
        mode=mode,  # type: ignore[arg-type]
        stage1=Stage1Config(steps=s1_steps, w_avg_samples=64, lpips_resolution=64, batch_size=2),
        stage2=Stage2Config(steps=s2_steps, lpips_resolution=64, **s2),  # type: ignore[arg-type]
        resolution=128,
    )


@pytest.fixture(scope="module")
def spi_run(tiny_factory, target, cheap_losses):
    G = tiny_factory(0)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    img, c = target
    mask = torch.zeros(128, 128, dtype=torch.bool)
    mask[16:112, 24:104] = True
    calls: list[tuple[str, int, int, dict[str, float]]] = []
    with mock.patch("copy.deepcopy", side_effect=copy.deepcopy) as dc:
        result = invert(G, img[0], c[0], mask=mask, config=small_config("spi"), losses=cheap_losses,
                        progress=lambda *a: calls.append(a))
    return G, before, result, calls, dc.call_count


def test_spi_progress_cadence_and_loss_decrease(spi_run) -> None:
    _, _, r, calls, _ = spi_run
    s1 = [a for a in calls if a[0] == "stage1"]
    s2 = [a for a in calls if a[0] == "stage2"]
    assert [a[1] for a in s1] == [0, 1, 2] and all(a[2] == 3 for a in s1)
    assert [a[1] for a in s2] == [0, 1, 2, 3, 4] and all(a[2] == 5 for a in s2)
    pseudo_at = [a[1] for a in s2 if PSEUDO_KEYS & a[3].keys()]
    assert pseudo_at == [0, 4]  # every 4th step
    assert all(a[3].keys() >= PSEUDO_KEYS for a in s2 if a[1] in (0, 4))  # yaw 0.5 >= 0.2: mirror too
    assert s1[0][3]["mirror_lpips"] > 0  # stage-1 mirror term active in spi
    h2 = r.history["stage2"]
    assert len(h2) == r.stage2_steps == 5 and not r.stopped_early
    assert h2[-1]["lpips"] < h2[0]["lpips"] and r.metrics.mse < h2[0]["mse"]
    assert 0.05 < h2[0]["warp_valid"] < 1.0  # the masks and visibility test cut something, not everything
    assert h2[0]["depth_reg"] == pytest.approx(0.0, abs=1e-10)  # before any update tuned == frozen
    assert h2[4]["depth_reg"] > 0
    assert r.ws.shape == (1, 6, 32) and set(r.timings) == {"stage1", "stage1_batch", "stage2", "total"}
    assert r.timings["stage1"] == r.timings["stage1_batch"]  # alone: the whole batch is its share


def test_spi_never_copies_or_mutates_generator(spi_run) -> None:
    G, before, r, _, deepcopies = spi_run
    assert deepcopies == 0
    after = G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    params = dict(G.named_parameters())
    assert set(params) <= set(r.delta) and all(r.delta[k].shape == params[k].shape for k in params)
    assert any(k.endswith("noise_const") for k in r.delta)  # stage-1 noise buffers travel in the delta


def test_delta_reproduces_tuned_outputs(spi_run, tiny_factory) -> None:
    G, _, r, _, _ = spi_run
    c = torch.cat([r.camera, camera_label(-0.3, 0.1)])
    ws = r.ws.expand(2, -1, -1)
    with torch.no_grad():
        functional = synthesize(G, ws, c, tensors=r.tensors(G)).image
        G2 = apply_delta_(tiny_factory(0), r.delta)
        plain = G2.synthesis(ws, c, sampling="deterministic").image
        G3 = apply_delta_(tiny_factory(0), r.delta_as(torch.float16))
        half = G3.synthesis(ws, c, sampling="deterministic").image
        untuned = G.synthesis(ws, c, sampling="deterministic").image
    assert torch.allclose(functional, plain, atol=1e-5)
    assert (half - plain).abs().max() < 1e-2 < (untuned - plain).abs().max()
    views = render_views(G, r.ws, c, delta=r.delta)
    assert torch.allclose(views.image, plain, atol=1e-5)
    assert views.depth.shape == (2, 1, 16, 16) and (views.depth_z <= views.depth + 1e-6).all()


def test_wplus_runs_no_stage2_and_is_deterministic(tiny_factory, target, cheap_losses) -> None:
    G = tiny_factory(0)
    img, c = target
    calls: list[str] = []
    cfg = small_config("w+", s1_steps=2)
    a = invert(G, img, c, config=cfg, losses=cheap_losses, progress=lambda s, *_: calls.append(s))
    b = invert(G, img, c, config=cfg, losses=cheap_losses)
    assert calls == ["stage1"] * 2 and a.history["stage2"] == () and a.stage2_steps == 0
    assert all(h["mirror_lpips"] == 0 for h in a.history["stage1"])  # no mirror term in w+
    assert all(k.endswith("noise_const") for k in a.delta)  # only the per-image noise, no tuning
    assert torch.equal(a.ws, b.ws) and all(torch.equal(a.delta[k], b.delta[k]) for k in a.delta)


def test_pti_has_no_pseudo_terms_and_early_stop(tiny_factory, target, cheap_losses) -> None:
    G = tiny_factory(0)
    img, c = target
    r = invert(G, img, c, config=small_config("pti", s1_steps=1, s2_steps=3), losses=cheap_losses)
    assert r.stage2_steps == 3 and all(not (PSEUDO_KEYS & h.keys()) for h in r.history["stage2"])
    early = invert(G, img, c, config=small_config("pti", s1_steps=1, s2_steps=50, lpips_threshold=10.0),
                   losses=cheap_losses)
    assert early.stopped_early and early.stage2_steps == 1 and "loss" not in early.history["stage2"][0]
    params = dict(G.named_parameters())
    assert all(torch.count_nonzero(early.delta[k]) == 0 for k in params)  # stopped before any update


def test_batch_stage1_independent_ws(tiny_factory, cheap_losses) -> None:
    G = tiny_factory(0)
    c = camera_label(torch.tensor([0.4, -0.3, 0.0]), 0.0)
    imgs = torch.stack([torch.full((3, 128, 128), v) for v in (-0.5, 0.0, 0.5)])
    rs = invert_batch(G, imgs, c, config=small_config("w+", s1_steps=2), losses=cheap_losses)
    assert len(rs) == 3 and all(r.ws.shape == (1, 6, 32) for r in rs)
    assert not torch.equal(rs[0].ws, rs[1].ws) and torch.equal(rs[2].camera, c[2:])


def test_batched_items_equal_lone_items_and_arrive_one_by_one(tiny_factory, cheap_losses) -> None:
    """An image's result does not depend on its stage-1 batch (same mean-w latents and w-noise stream as
    alone, float rounding only), and iter_inversions yields each result when its stage 2 ends."""
    from dataclasses import replace

    from sym3dinv.invert import iter_inversions

    G, G1 = tiny_factory(0), tiny_factory(1)
    cams = camera_label(torch.tensor([0.4, -0.3, 0.1]), 0.05)
    with torch.no_grad():
        z = torch.randn(3, 16, generator=torch.Generator().manual_seed(4))
        imgs = G1.synthesis(G1.mapping(z, cams), cams, sampling="deterministic").image.clamp(-1, 1)
    cfg = small_config("spi", s1_steps=3, s2_steps=2)
    cfg = replace(cfg, stage1=replace(cfg.stage1, batch_size=3))
    events: list[str] = []
    results = iter_inversions(G, imgs, cams, config=cfg, losses=cheap_losses,
                              progress=lambda stage, *_: events.append(stage))
    first = next(results)
    assert events == ["stage1"] * 3 + ["stage2"] * 2  # the batch's stage 1, then the first item's stage 2 only
    batched = [first, *results]
    assert events.count("stage2") == 6
    for i, r in enumerate(batched):
        alone = invert(G, imgs[i], cams[i], config=cfg, losses=cheap_losses)
        torch.testing.assert_close(r.ws, alone.ws, rtol=0, atol=1e-5)
        for k in alone.delta:  # Adam can turn rounding of ~0 gradients into one lr-sized step
            diff = (r.delta[k] - alone.delta[k]).abs()
            assert float(diff.max()) <= 1e-3 and float(diff.mean()) <= 1e-5, (k, float(diff.max()))
    assert not torch.equal(batched[0].ws, batched[1].ws)


@pytest.mark.slow
def test_spi_with_real_lpips_and_contextual(tiny_factory, target) -> None:
    """The default losses (LPIPS-VGG from the offline models) drive the same loop."""
    from sym3dinv.invert import default_losses

    G = tiny_factory(0)
    img, c = target
    r = invert(G, img, c, config=small_config("spi", s1_steps=2, s2_steps=5), losses=default_losses("vgg"))
    h2 = r.history["stage2"]
    assert h2[-1]["lpips"] < h2[0]["lpips"] and {"warp", "mirror", "depth_reg"} <= h2[4].keys()
    assert r.metrics.lpips_alex is not None and 0 < r.metrics.lpips_alex < 1


def test_spi_warps_with_given_depth(tiny_factory, target, cheap_losses) -> None:
    """``stage2.warp_depth="given"``: the caller's true z-depths at the input and the 4 warp cameras, asked
    for once, replace the generator's (the benchmark's "warps with ground-truth depth" ablation)."""
    from sym3dinv.cameras import ray_distance_to_z
    from sym3dinv.errors import ConfigError

    G, G1 = tiny_factory(0), tiny_factory(1)  # G1 rendered the target: its depth is the truth here
    img, c = target
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(3))
    calls: list[torch.Tensor] = []

    def truth(cams: torch.Tensor) -> torch.Tensor:
        calls.append(cams)
        with torch.no_grad():
            out = G1.synthesis(G1.mapping(z, c).expand(cams.shape[0], -1, -1), cams, sampling="deterministic")
        return ray_distance_to_z(out.image_depth, cams)

    given = invert(G, img, c, config=small_config("spi", 1, 5, warp_depth="given"), losses=cheap_losses,
                   warp_depth_fn=truth)
    assert len(calls) == 1 and calls[0].shape == (5, 25) and torch.allclose(calls[0][:1], c)
    current = invert(G, img, c, config=small_config("spi", 1, 5), losses=cheap_losses)
    g0, c0 = given.history["stage2"][0], current.history["stage2"][0]
    assert g0["warp_valid"] > 0.2 and g0["warp"] != pytest.approx(c0["warp"], rel=1e-4)
    with pytest.raises(ConfigError, match="needs warp_depth_fn"):
        invert(G, img, c, config=small_config("spi", 1, 1, warp_depth="given"), losses=cheap_losses)
    with pytest.raises(ConfigError, match="only used with"):
        invert(G, img, c, config=small_config("spi", 1, 1), losses=cheap_losses, warp_depth_fn=truth)
    with pytest.raises(ConfigError, match="finite"):
        invert(G, img, c, config=small_config("spi", 1, 1, warp_depth="given"), losses=cheap_losses,
               warp_depth_fn=lambda cams: torch.ones(cams.shape[0], 8, 8))
