"""The CUDA paths: generator parity on the GPU, mixed precision staying close to fp32, the inversion giving
the CPU's result (fp32) on CUDA and running with the CUDA defaults (bf16 autocast, TF32, fused modconv).

Skipped where no CUDA device is present (CI); run on a GPU machine with ``pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from sym3dinv.cameras import camera_label
from sym3dinv.config.invert import InversionConfig, PerformanceConfig, Stage1Config, Stage2Config
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.invert import invert, render_views
from sym3dinv.invert.losses import LossFunctions, patch_contextual_loss
from sym3dinv.invert.stage2 import run_stage2
from sym3dinv.metrics.lpips import load_lpips
from sym3dinv.perf import resolve
from tests.plugin import make_tiny

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")
FP32 = {"autocast": "off", "tf32": "off"}


@pytest.fixture(scope="module")
def eg3d_tiny(eg3d_fixtures) -> tuple[TriPlaneGenerator, TriPlaneGenerator, dict[str, torch.Tensor]]:
    """The EG3D-reference tiny generator on CPU (its parity with EG3D is tests/generator's) and on CUDA."""
    cfg = json.loads((eg3d_fixtures / "tiny_config.json").read_text())
    G = TriPlaneGenerator(**cfg["init_kwargs"]).eval().requires_grad_(False)
    G.load_state_dict(load_file(eg3d_fixtures / "tiny_G.safetensors"), strict=True)
    ref = load_file(eg3d_fixtures / "tiny_reference.safetensors")
    return G, copy.deepcopy(G).to(CUDA), ref


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def test_eg3d_generator_on_cuda_matches_cpu(eg3d_tiny) -> None:
    """fp32 on the GPU: EG3D's mapping output, and the CPU's renders and ws-gradient (deterministic
    sampling: EG3D's stochastic samples come from the CPU generator's stream, which CUDA does not share)."""
    G_cpu, G, ref = eg3d_tiny
    cuda_ref = {k: v.to(CUDA) for k, v in ref.items()}
    assert _rel(G.mapping(cuda_ref["z"], cuda_ref["c_front"]).cpu(), ref["ws"]) < 1e-5
    outs, grads = [], []
    for gen, dev in ((G_cpu, "cpu"), (G, CUDA)):
        ws = ref["ws"].to(dev).clone().requires_grad_(True)
        out = gen.synthesis(ws, ref["c_yaw"].to(dev), noise_mode="const", sampling="deterministic")
        out.image.mean().backward()
        outs.append(out)
        grads.append(ws.grad.cpu())
    assert outs[1].image.device.type == "cuda" and outs[1].image.dtype == torch.float32
    for key in ("image", "image_raw", "image_depth"):
        a, b = outs[1][key].detach().cpu(), outs[0][key].detach()
        # GPU reductions round differently, and importance samples follow the coarse weights: measured on an
        # H100, max |diff| 5e-3 on the 512-px image; a wrong op or device mix-up gives errors of order 1
        rel = float((a - b).norm() / b.norm())
        assert rel < 2e-3 and float((a - b).abs().max()) < 2e-2, (key, rel, float((a - b).abs().max()))
    # the ws-gradient goes through the importance samples too: measured relative error 0.057 (cosine 0.998)
    g_gpu, g_cpu = grads[1].flatten(), grads[0].flatten()
    assert float(torch.nn.functional.cosine_similarity(g_gpu, g_cpu, dim=0)) > 0.99
    assert float((g_gpu - g_cpu).norm() / g_cpu.norm()) < 0.15


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_render_stays_close_to_fp32(eg3d_tiny, precision: str) -> None:
    _, G, ref = eg3d_tiny
    ref = {k: v.to(CUDA) for k, v in ref.items()}
    full = G.synthesis(ref["ws"], ref["c_yaw"], sampling="deterministic").image
    half = G.synthesis(ref["ws"], ref["c_yaw"], sampling="deterministic", precision=precision).image
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    err = float((half - full).abs().mean() / full.abs().mean())
    assert 0 < err < 0.05, err  # really ran in reduced precision, and stayed close


def _config(**perf: object) -> InversionConfig:
    return InversionConfig(
        stage1=Stage1Config(steps=3, w_avg_samples=64, lpips_resolution=64),
        stage2=Stage2Config(steps=4, pseudo_every=2, lpips_resolution=64, lpips_threshold=0.0, region_size=16),
        resolution=128, perf=PerformanceConfig(**perf))  # type: ignore[arg-type]


def _target() -> tuple[torch.Tensor, torch.Tensor]:
    G1 = make_tiny(1)
    c = camera_label(0.45, 0.05)
    with torch.no_grad():
        z = torch.randn(1, 16, generator=torch.Generator().manual_seed(3))
        return G1.synthesis(G1.mapping(z, c), c, sampling="deterministic").image.clamp(-1, 1)[0], c[0]


def _losses(device: torch.device) -> LossFunctions:
    return LossFunctions(perceptual=load_lpips("alex", device), contextual=patch_contextual_loss)


def test_fp32_inversion_on_cuda_matches_cpu() -> None:
    """Same seed, fp32, no TF32: the GPU inversion reaches the CPU's pivot and tuned weights."""
    img, c = _target()
    cfg = _config(**FP32)
    cpu = invert(make_tiny(0), img, c, config=cfg, losses=_losses(torch.device("cpu")))
    gpu = invert(make_tiny(0).to(CUDA), img, c, config=cfg, losses=_losses(CUDA))
    assert gpu.ws.device.type == "cuda" and gpu.stage2_steps == 4
    assert _rel(gpu.ws.cpu(), cpu.ws) < 1e-3
    for k, d in cpu.delta.items():
        assert float((gpu.delta[k].cpu() - d).norm()) <= 1e-2 * float(d.norm()) + 1e-6, k
    assert abs(gpu.metrics.mse - cpu.metrics.mse) < 1e-4


def test_shared_stage1_batch_on_cuda_gives_each_image_its_lone_result() -> None:
    """The bulk flow's GPU default (4 items per actor call, one stage-1 batch): fp32, no TF32, each image
    of the batch ends where it ends alone (cuDNN may pick other kernels per batch size: rounding only)."""
    from sym3dinv.invert import invert_batch

    G1 = make_tiny(1)
    cams = camera_label(torch.tensor([0.45, -0.3, 0.1, 0.3]), 0.05)
    with torch.no_grad():
        z = torch.randn(4, 16, generator=torch.Generator().manual_seed(4))
        imgs = G1.synthesis(G1.mapping(z, cams), cams, sampling="deterministic").image.clamp(-1, 1)
    cfg = _config(**FP32)
    cfg = replace(cfg, stage1=replace(cfg.stage1, batch_size=4))
    G = make_tiny(0).to(CUDA)
    batched = invert_batch(G, imgs, cams, config=cfg, losses=_losses(CUDA))
    for i, r in enumerate(batched):
        alone = invert(G, imgs[i], cams[i], config=cfg, losses=_losses(CUDA))
        assert _rel(r.ws.cpu(), alone.ws.cpu()) < 1e-4, i
    assert _rel(batched[0].ws.cpu(), batched[1].ws.cpu()) > 1e-3  # different images, different pivots


def test_inversion_with_cuda_defaults_runs_in_bf16() -> None:
    perf = resolve(PerformanceConfig(), CUDA)
    assert perf.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32") and perf.tf32
    assert perf.fused_modconv is None and perf.channels_last
    img, c = _target()
    r = invert(make_tiny(0).to(CUDA), img, c, config=_config(), losses=_losses(CUDA))
    s1, s2 = r.history["stage1"], r.history["stage2"]
    assert len(s1) == 3 and len(s2) == 4 and all(torch.isfinite(torch.tensor(h["loss"])) for h in s1 + s2)
    assert "warp" in s2[0] and "mirror" in s2[0]  # pseudo-label step with every term
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in r.delta.values())
    fp32 = invert(make_tiny(0).to(CUDA), img, c, config=_config(**FP32), losses=_losses(CUDA))
    assert abs(r.metrics.mse - fp32.metrics.mse) < 0.05  # mixed precision: same optimisation, near result


def test_compiled_lpips_matches_eager_on_cuda() -> None:
    img, c = _target()
    eager = invert(make_tiny(0).to(CUDA), img, c, config=replace(_config(**FP32), mode="w+"), losses=_losses(CUDA))
    comp = invert(make_tiny(0).to(CUDA), img, c, config=replace(_config(compile="on", **FP32), mode="w+"),
                  losses=_losses(CUDA))
    assert _rel(comp.ws, eager.ws) < 1e-3


def test_render_views_on_cuda_are_plain_tensors() -> None:
    G = make_tiny(0).to(CUDA)
    ws = G.mapping(torch.randn(1, 16, device=CUDA), camera_label(0.0, 0.0).to(CUDA))
    cams = torch.cat([camera_label(y, 0.0) for y in (-0.5, 0.0, 0.5)])  # CPU cameras: moved to G's device
    v = render_views(G, ws, cams, chunk=2)
    assert v.image.shape == (3, 3, 128, 128) and v.image.device.type == "cuda"
    v.image.add_(0)  # not an inference tensor


def _stage2_inputs() -> tuple[TriPlaneGenerator, torch.Tensor, torch.Tensor, torch.Tensor, LossFunctions]:
    img, c = _target()
    G = make_tiny(0, noise_strength=0.1).to(CUDA)
    x, cam = img[None].to(CUDA), c[None].to(CUDA)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)).to(CUDA), cam)
    return G, x, cam, ws, _losses(CUDA)


def _stage2_config(threshold: float = 0.0, **perf: object) -> InversionConfig:
    base = _config(**{**FP32, "cuda_graphs": "on", **perf})
    return replace(base, stage2=replace(base.stage2, steps=10, pseudo_every=4, lpips_threshold=threshold))


def _assert_same_run(a, b) -> None:  # noqa: ANN001
    assert a.steps_run == b.steps_run and a.pseudo_steps == b.pseudo_steps and a.stopped_early == b.stopped_early
    for ha, hb in zip(a.history, b.history, strict=True):
        assert list(ha) == list(hb)
        for k in ha:
            assert abs(ha[k] - hb[k]) <= 1e-4 * max(1.0, abs(hb[k])), (k, ha[k], hb[k])
    for k in a.delta:  # atomics in grid_sample's backward: not bit-identical, far inside one Adam step
        assert float((a.delta[k] - b.delta[k]).abs().max()) <= 1e-4, k


def test_stage2_cuda_graph_replays_give_the_eager_result() -> None:
    G, x, cam, ws, losses = _stage2_inputs()
    eager = run_stage2(G, x, cam, ws, {}, _stage2_config(cuda_graphs="off"), losses)
    graphed = run_stage2(G, x, cam, ws, {}, _stage2_config(), losses)
    assert eager.graphed_steps == 0
    assert graphed.graphed_steps == 6  # plain steps 3, 5, 6, 7, 9 and pseudo step 8 (after 2 eager of each kind)
    assert graphed.pseudo_steps == (0, 4, 8) and "warp" in graphed.history[8]
    _assert_same_run(graphed, eager)
    assert max(float(d.abs().max()) for d in graphed.delta.values()) > 1e-4  # the weights really moved


def test_stage2_early_stop_inside_a_replayed_step_keeps_the_weights_before_it() -> None:
    G, x, cam, ws, losses = _stage2_inputs()
    lp = [h["lpips"] for h in run_stage2(G, x, cam, ws, {}, _stage2_config(cuda_graphs="off"), losses).history]
    k = next(i for i in (5, 6, 7, 9) if lp[i] < min(lp[:i]))  # a replayed step that sets a new best
    threshold = (lp[k] + min(lp[:k])) / 2
    eager = run_stage2(G, x, cam, ws, {}, _stage2_config(threshold, cuda_graphs="off"), losses)
    graphed = run_stage2(G, x, cam, ws, {}, _stage2_config(threshold), losses)
    assert eager.stopped_early and eager.steps_run == k + 1 and graphed.graphed_steps >= 2
    _assert_same_run(graphed, eager)


def test_stage2_falls_back_to_eager_when_capture_fails(monkeypatch, caplog) -> None:
    from sym3dinv.invert.cuda_graphs import StepGraphs

    def broken(self, fwd_bwd):  # noqa: ANN001, ANN202
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(StepGraphs, "_capture", broken)
    G, x, cam, ws, losses = _stage2_inputs()
    r = run_stage2(G, x, cam, ws, {}, _stage2_config(), losses)
    assert r.graphed_steps == 0 and r.steps_run == 10
    assert "CUDA graph capture failed" in caplog.text
    _assert_same_run(r, run_stage2(G, x, cam, ws, {}, _stage2_config(cuda_graphs="off"), losses))
