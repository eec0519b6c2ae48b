"""Properties that hold for any latent, camera and seed (not only the stored references)."""

from __future__ import annotations

import json

import pytest
import torch

from sym3dinv.cameras import camera_label, mirror_label
from sym3dinv.generator import TriPlaneGenerator, autocast_context
from sym3dinv.generator.networks import block_dtype
from sym3dinv.generator.ops import _conv_up2, setup_filter, upfirdn2d, upsample2d


@pytest.fixture(scope="module")
def G(eg3d_fixtures):
    cfg = json.loads((eg3d_fixtures / "tiny_config.json").read_text())["init_kwargs"]
    cfg = {**cfg, "img_resolution": 128, "sr_channels": [16, 16], "neural_rendering_resolution": 32,
           "rendering_kwargs": {**cfg["rendering_kwargs"], "image_resolution": 128, "depth_resolution": 12,
                                "depth_resolution_importance": 12,
                                "superresolution_module": "training.superresolution.SuperresolutionHybrid2X"}}
    torch.manual_seed(1)
    g = TriPlaneGenerator(**cfg).eval().requires_grad_(False)
    with torch.no_grad():  # make the stock-initialised volume partly opaque, like the fixture
        g.decoder.net[2].bias[0] = 2.0
        g.decoder.net[2].weight[0] *= 6
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    return g


def _ws(G, seed: int, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    c = camera_label(torch.linspace(-0.5, 0.5, n), 0.1)
    return G.mapping(z, c), c


@pytest.mark.parametrize("seed", [0, 7])
def test_explicit_generator_equals_global_rng(G, seed: int) -> None:
    ws, c = _ws(G, seed)
    torch.manual_seed(seed)
    a = G.synthesis(ws, c)
    b = G.synthesis(ws, c, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a.image, b.image) and torch.equal(a.image_depth, b.image_depth)


def test_deterministic_mode_is_repeatable_and_near_the_stochastic_mean(G) -> None:
    ws, c = _ws(G, 3)
    d1 = G.synthesis(ws, c, sampling="deterministic")
    torch.manual_seed(123)
    d2 = G.synthesis(ws, c, sampling="deterministic")
    assert torch.equal(d1.image, d2.image)
    stoch = torch.stack([G.synthesis(ws, c, generator=torch.Generator().manual_seed(s)).image_depth for s in range(6)])
    assert not torch.equal(stoch[0], stoch[1])
    err_det = (d1.image_depth - stoch.mean(0)).abs().mean()
    err_one = (stoch[0] - stoch[1:].mean(0)).abs().mean()
    assert err_det < 2 * err_one + 1e-3


def test_batch_equals_per_sample(G) -> None:
    ws, c = _ws(G, 5, n=3)
    full = G.synthesis(ws, c, sampling="deterministic")
    for i in range(3):
        one = G.synthesis(ws[i : i + 1], c[i : i + 1], sampling="deterministic")
        assert torch.allclose(full.image[i], one.image[0], atol=1e-4)
        assert torch.allclose(full.image_depth[i], one.image_depth[0], atol=1e-4)


def test_fused_and_ref_paths_agree(G) -> None:
    ws, c = _ws(G, 9)
    a = G.synthesis(ws, c, sampling="deterministic")
    b = G.synthesis(ws, c, sampling="deterministic", impl="ref")
    assert torch.allclose(a.image, b.image, atol=1e-4)
    G.train()  # 'inference_only' -> non-fused modulated convolutions (EG3D's training path)
    try:
        t = G.synthesis(ws, c, sampling="deterministic")
    finally:
        G.eval()
    assert torch.allclose(a.image, t.image, atol=1e-3)


def test_upsample_fast_equals_reference() -> None:
    x = torch.randn(2, 5, 9, 7)
    f = setup_filter((1, 3, 3, 1))
    assert torch.allclose(upsample2d(x, f, impl="fast"), upsample2d(x, f, impl="ref"), atol=1e-6)
    # the reference is a true convolution: a delta becomes the (scaled) filter
    d = torch.zeros(1, 1, 5, 5)
    d[0, 0, 2, 2] = 1
    y = upfirdn2d(d, f, padding=(1, 2, 1, 2), gain=2.0)
    assert y.shape[-2:] == (5, 5) and torch.allclose(y[0, 0, 0:4, 0:4], 2 * f)


def test_forward_does_not_mutate_the_module(G) -> None:
    ws, c = _ws(G, 2)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    res = G.neural_rendering_resolution
    out = G.synthesis(ws, c, neural_rendering_resolution=16, sampling="deterministic")
    assert out.image_raw.shape[-1] == 16 and G.neural_rendering_resolution == res
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert not hasattr(G, "_last_planes")


def test_mirror_camera_of_a_mirrored_scene(G) -> None:
    # mirroring the planes about x (flip the x axis of the xy and xz planes, and the second coordinate of
    # the (z, x) plane) and rendering at the mirror camera gives the flipped raw image
    ws, c = _ws(G, 4)
    planes = G.planes(ws)
    mirrored = planes.clone()
    mirrored[:, 0] = planes[:, 0].flip(-1)  # (x, y): x is the width axis
    mirrored[:, 1] = planes[:, 1].flip(-1)  # (x, z): x is the width axis
    mirrored[:, 2] = planes[:, 2].flip(-2)  # (z, x): x is the height axis
    a = G.render(planes, ws, c, sampling="deterministic", superresolution=False)
    b = G.render(mirrored, ws, mirror_label(c), sampling="deterministic", superresolution=False)
    assert torch.allclose(a.image_raw.flip(-1), b.image_raw, atol=2e-4)
    assert torch.allclose(a.image_depth.flip(-1), b.image_depth, atol=2e-4)


def test_autocast_only_on_cuda() -> None:
    import contextlib

    assert isinstance(autocast_context(torch.device("cpu"), "bf16"), contextlib.nullcontext)
    assert isinstance(autocast_context(torch.device("cuda"), "fp32"), contextlib.nullcontext)
    ctx = autocast_context(torch.device("cuda"), "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    assert autocast_context(torch.device("cuda"), "fp16").fast_dtype == torch.float16


def test_bad_shapes_are_clear(G) -> None:
    ws, c = _ws(G, 1)
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(ws[:, :3], c)
    with pytest.raises(ValueError, match="camera labels"):
        G.synthesis(ws, c[:, :16])
    with pytest.raises(TypeError, match="unknown constructor"):
        TriPlaneGenerator(z_dim=8, c_dim=25, w_dim=8, img_resolution=128, img_channels=3, bogus=1)
    with pytest.raises(ValueError, match="architecture"):
        TriPlaneGenerator(z_dim=8, c_dim=25, w_dim=8, img_resolution=128, img_channels=3, architecture="resnet")
    with torch.device("meta"):  # EG3D options that do not change the function are accepted and kept
        g = TriPlaneGenerator(z_dim=8, c_dim=25, w_dim=8, img_resolution=128, img_channels=3,
                              channel_base=256, channel_max=8, fp16_channels_last=True, resample_filter=(1, 3, 3, 1),
                              rendering_kwargs={"superresolution_module":
                                                "training.superresolution.SuperresolutionHybrid2X"})
    assert g.init_kwargs["fp16_channels_last"] is True


def test_explicit_generator_ignores_the_global_rng(G) -> None:
    ws, c = _ws(G, 11)
    torch.manual_seed(0)
    a = G.synthesis(ws, c, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(999)
    b = G.synthesis(ws, c, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.image, b.image)
    c2 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(a.image_raw, c2.image_raw)
    d = a.image_depth  # expected distance is clamped to the sampled depth range
    assert float(d.min()) >= 2.25 - 1e-5 and float(d.max()) <= 3.3 + (3.3 - 2.25) / 11 + 1e-5


def test_fused_and_nonfused_modconv_planes_agree(G) -> None:
    ws, _ = _ws(G, 12)
    fused = G.backbone.synthesis(ws, fused_modconv=True)
    split = G.backbone.synthesis(ws, fused_modconv=False)
    assert float((fused - split).abs().max() / fused.abs().max()) < 1e-5
    ref = G.backbone.synthesis(ws, fused_modconv=True, impl="ref")
    assert float((fused - ref).abs().max() / fused.abs().max()) < 1e-5


def test_conv_up_fast_equals_reference_and_spec() -> None:
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 5, 9, 9, generator=g), torch.randn(7, 5, 3, 3, generator=g)
    f = setup_filter()
    fast, ref = _conv_up2(x, w, f, 1, 1, "fast"), _conv_up2(x, w, f, 1, 1, "ref")
    assert fast.shape == (2, 7, 18, 18) and torch.allclose(fast, ref, atol=1e-5)
    # grouped (fused, per-sample weights) equals per-sample calls
    xg = x.reshape(1, 10, 9, 9)
    wg = torch.cat([w, 2 * w])
    both = _conv_up2(xg, wg, f, 2, 1, "fast").reshape(2, 7, 18, 18)
    assert torch.allclose(both[0], fast[0], atol=1e-5) and torch.allclose(both[1], 2 * fast[1], atol=1e-4)


def test_truncation_formula(G) -> None:
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(7))
    c = camera_label(torch.zeros(3), torch.zeros(3))
    ws = G.mapping(z, c)
    w_avg = G.backbone.mapping.w_avg
    assert torch.equal(G.mapping(z, c, truncation_psi=1.0), ws)
    assert torch.allclose(G.mapping(z, c, truncation_psi=0.0), w_avg.expand_as(ws))
    ws5 = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=6)
    assert torch.allclose(ws5[:, :6], w_avg + 0.5 * (ws[:, :6] - w_avg), atol=1e-6)
    assert torch.equal(ws5[:, 6:], ws[:, 6:])


def test_gradient_reaches_every_w(G) -> None:
    ws, c = _ws(G, 13)
    w = ws.clone().requires_grad_(True)
    G.synthesis(w, c, sampling="deterministic").image.mean().backward()
    assert w.grad is not None and bool((w.grad.abs().sum(-1) > 0).all())  # incl. ws[:, -1] for the SR


def test_block_dtype_decisions() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert block_dtype(True, cpu) == torch.float32  # EG3D forces fp32 off CUDA (the clamp still applies)
    assert block_dtype(True, cuda) == torch.float16
    assert block_dtype(True, cuda, force_fp32=True) == torch.float32
    assert block_dtype(False, cuda) == torch.float32


@pytest.mark.parametrize(("module", "res"), [("training.superresolution.SuperresolutionHybrid4X", 256),
                                             ("training.superresolution.SuperresolutionHybrid8XDC", 512)])
def test_superresolution_variants_have_eg3d_keys(module: str, res: int) -> None:
    with torch.device("meta"):
        g = TriPlaneGenerator(z_dim=512, c_dim=25, w_dim=512, img_resolution=res, img_channels=3,
                              rendering_kwargs={"superresolution_module": module}, channel_base=512, channel_max=32)
    sd = g.state_dict()
    assert ("superresolution.resample_filter" in sd) == (res == 256)  # 4X/2X register it, 8XDC does not
    if res == 256:
        assert tuple(sd["superresolution.block0.conv0.weight"].shape) == (128, 32, 3, 3)  # no-up block at 128
        assert tuple(sd["superresolution.block0.conv0.noise_const"].shape) == (128, 128)
        assert tuple(sd["superresolution.block1.conv0.weight"].shape) == (64, 128, 3, 3)
    with pytest.raises(ValueError, match="unsupported superresolution_module"):
        TriPlaneGenerator(z_dim=8, c_dim=25, w_dim=512, img_resolution=512, img_channels=3,
                          rendering_kwargs={"superresolution_module": "os.system"})
