"""``invert``: one photo (or a batch) -> pivot ws + generator weight delta + metrics (METHOD.md).

Modes share one code path (METHOD.md "Baselines"): ``w+`` = stage 1 without the mirror term, no stage 2;
``pti`` = the same pivot + stage 2 on the input view only; ``spi`` = everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from sym3dinv.config.invert import InversionConfig
from sym3dinv.encoder.model import TrainedEncoder, encode
from sym3dinv.errors import ConfigError
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.invert.losses import LossFunctions, default_losses
from sym3dinv.invert.mirror import Box
from sym3dinv.invert.pseudo import FaceRegions
from sym3dinv.invert.render import synthesize, tuned_tensors
from sym3dinv.invert.stage1 import Progress, run_stage1
from sym3dinv.invert.stage2 import DepthFn, run_stage2
from sym3dinv.perf import device_settings, no_grad_render, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewMetrics:
    """Reconstruction metrics at the input view (images in [-1, 1]; None where the metric is unavailable)."""

    mse: float  # on [-1, 1] images
    psnr: float  # dB, peak-to-peak 2 (the [-1, 1] range)
    lpips_alex: float | None
    ssim: float | None
    identity: float | None


@dataclass(frozen=True)
class InversionResult:
    """Everything one inversion produced; the tuned generator is ``G + delta``."""

    ws: Float[Tensor, "1 k w"]  # pivot latent
    delta: dict[str, Tensor]  # name -> tuned - original (parameters and per-image noise buffers), fp32
    history: Mapping[str, tuple[dict[str, float], ...]]  # "stage1" / "stage2" -> per-step losses
    metrics: ViewMetrics
    timings: Mapping[str, float]  # seconds: "stage1" (this image's share of its batch), "stage1_batch", "stage2", "total"
    stage2_steps: int
    stopped_early: bool
    config: InversionConfig
    camera: Float[Tensor, "1 25"]  # the camera inverted at: the input's, or stage 1's correction of it

    def delta_as(self, dtype: torch.dtype = torch.float16) -> dict[str, Tensor]:
        """The delta in a storage dtype (fp16 halves it; tuning changes are small, so rounding is benign)."""
        return {k: v.to(dtype) for k, v in self.delta.items()}

    def tensors(self, G: TriPlaneGenerator) -> dict[str, Tensor]:
        """G's tuned tensors for :func:`sym3dinv.invert.render.synthesize` / ``functional_call``."""
        return tuned_tensors(G, self.delta)


def _prep_image(image: Tensor, res: int) -> Tensor:
    x = image[None] if image.ndim == 3 else image
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"image must be [3, H, W] or [N, 3, H, W] in [-1, 1], got {tuple(image.shape)}")
    if x.shape[-2:] != (res, res):
        x = F.interpolate(x.float(), size=(res, res), mode="bilinear", align_corners=False, antialias=True)
    return x.float()


def _prep_mask(mask: Tensor | None, n: int, res: int, device: torch.device) -> Tensor | None:
    if mask is None:
        return None
    m = mask.float().reshape(-1, 1, *mask.shape[-2:])
    if m.shape[0] not in (1, n):
        raise ConfigError(f"mask batch {m.shape[0]} does not match {n} images")
    m = F.interpolate(m, size=(res, res), mode="nearest") if m.shape[-1] != res else m
    return m.expand(n, -1, -1, -1).to(device)


@torch.no_grad()
def input_view_metrics(render: Tensor, image: Tensor, losses: LossFunctions) -> ViewMetrics:
    """MSE/PSNR always; LPIPS-alex, SSIM, identity when the metrics package provides them."""
    mse = float(F.mse_loss(render, image))
    psnr = float(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))))

    def opt(fn: object) -> float | None:
        if fn is None:
            return None
        try:
            out = fn(render, image)  # type: ignore[operator]
            out = getattr(out, "cosine", out)  # identity_similarity returns an IdentityResult
            return float(torch.as_tensor(out).float().mean())
        except Exception as exc:  # a missing model must not sink the inversion itself
            log.warning("input-view metric %s unavailable: %s", getattr(fn, "__name__", fn), exc)
            return None

    return ViewMetrics(mse=mse, psnr=psnr, lpips_alex=opt(losses.lpips_metric), ssim=opt(losses.ssim),
                       identity=opt(losses.identity))


def check_encoder(config: InversionConfig, encoder: TrainedEncoder | None, G: TriPlaneGenerator) -> None:
    """The config is valid, and an encoder start has ``G``'s own encoder."""
    config.validate()
    if config.stage1.init == "encoder":
        if encoder is None:
            raise ConfigError("stage1.init='encoder' (the instant/quick presets) needs the generator's trained "
                              "encoder: pass encoder=load_encoder_for(source, G)")
        encoder.check(G)


def invert_batch(
    G: TriPlaneGenerator,
    images: Float[Tensor, "n 3 h w"],
    cameras: Float[Tensor, "n 25"],
    *,
    masks: Bool[Tensor, "n h w"] | Float[Tensor, "n h w"] | None = None,
    regions: Sequence[FaceRegions | None] | None = None,
    config: InversionConfig | None = None,
    progress: Progress | None = None,
    losses: LossFunctions | None = None,
    warp_depth_fns: Sequence[DepthFn | None] | None = None,
    encoder: TrainedEncoder | None = None,
) -> list[InversionResult]:
    """Invert several images: stage 1 in batches of ``config.stage1.batch_size``, stage 2 one by one.

    An image's result does not depend on the batch it is in (see :func:`run_stage1`), up to float rounding.
    ``warp_depth_fns``: per image, its known geometry for ``stage2.warp_depth="given"`` (benchmarks).
    ``encoder``: the trained encoder of ``G`` that ``stage1.init="encoder"`` starts from.
    """
    return list(iter_inversions(G, images, cameras, masks=masks, regions=regions, config=config, progress=progress,
                                losses=losses, warp_depth_fns=warp_depth_fns, encoder=encoder))


def iter_inversions(
    G: TriPlaneGenerator,
    images: Float[Tensor, "n 3 h w"],
    cameras: Float[Tensor, "n 25"],
    *,
    masks: Bool[Tensor, "n h w"] | Float[Tensor, "n h w"] | None = None,
    regions: Sequence[FaceRegions | None] | None = None,
    config: InversionConfig | None = None,
    progress: Progress | None = None,
    losses: LossFunctions | None = None,
    warp_depth_fns: Sequence[DepthFn | None] | None = None,
    encoder: TrainedEncoder | None = None,
) -> Iterator[InversionResult]:
    """:func:`invert_batch` yielding each image's result (in input order) as soon as its stage 2 ends.

    For batch pipelines: a result can be written before the next image's stage 2 starts, so a crash
    later in the batch loses only unfinished images. An exception (an image's stage 2, or a batch's
    stage 1) ends the iteration; the images already yielded are complete. Close the iterator (or
    exhaust it) to restore the process-wide device settings it holds.
    """
    config = config or InversionConfig()
    check_encoder(config, encoder, G)
    dev = next(G.parameters()).device
    perf = resolve(config.perf, dev)
    with device_settings(perf):  # CPU: flush denormals; CUDA: TF32 (restored afterwards)
        yield from _invert_batch(G, images, cameras, masks, regions, config, progress, losses, dev, warp_depth_fns,
                                 encoder if config.stage1.init == "encoder" else None)


def _invert_batch(G: TriPlaneGenerator, images: Tensor, cameras: Tensor, masks: Tensor | None,
                  regions: Sequence[FaceRegions | None] | None, config: InversionConfig, progress: Progress | None,
                  losses: LossFunctions | None, dev: torch.device,
                  warp_depth_fns: Sequence[DepthFn | None] | None = None,
                  encoder: TrainedEncoder | None = None) -> Iterator[InversionResult]:
    perf = resolve(config.perf, dev)
    if config.resolution != G.img_resolution:
        log.info("input resized to the generator's %d px (config.resolution=%d)", G.img_resolution, config.resolution)
    res = G.img_resolution
    x = _prep_image(images, res).to(dev)
    n = x.shape[0]
    if cameras.shape != (n, 25):
        raise ConfigError(f"cameras must be [{n}, 25], got {tuple(cameras.shape)}")
    cams = cameras.to(dev, torch.float32)
    m = _prep_mask(masks, n, res, dev)
    regs = list(regions) if regions is not None else [None] * n
    depth_fns = list(warp_depth_fns) if warp_depth_fns is not None else [None] * n
    if len(depth_fns) != n:
        raise ConfigError(f"warp_depth_fns has {len(depth_fns)} entries for {n} images")
    losses = losses or default_losses(config.lpips_net, dev)
    bs = config.stage1.batch_size
    for lo in range(0, n, bs):
        gen = torch.Generator(device="cpu").manual_seed(config.seed)  # every batch draws what a lone image would
        init, t_enc = None, 0.0
        if encoder is not None:  # the encoder's answer as the start (no gradients: it is not tuned)
            t_e = time.perf_counter()
            with torch.no_grad():
                init, _ = encode(encoder.net.to(dev), G, x[lo:lo + bs], cams[lo:lo + bs])
            t_enc = time.perf_counter() - t_e
        s1 = run_stage1(G, x[lo:lo + bs], cams[lo:lo + bs], config, losses, gen, progress, init_ws=init)
        s1_seconds = s1.seconds + t_enc
        c1 = s1.cameras if s1.cameras is not None else cams[lo:lo + bs]  # corrected by stage 1 (refine_camera)
        for j in range(s1.ws.shape[0]):
            i = lo + j
            t0 = time.perf_counter()
            noise = {k: v[j] for k, v in s1.noise.items()}
            ws = s1.ws[j:j + 1]
            history = {"stage1": s1.history, "stage2": ()}
            steps, early = 0, False
            state = G.state_dict(keep_vars=True)
            delta = {k: (v - state[k].detach()) for k, v in noise.items()}
            if config.run_stage2:
                s2 = run_stage2(G, x[i:i + 1], c1[j:j + 1], ws, noise, config, losses,
                                mask=None if m is None else m[i:i + 1], regions=regs[i], progress=progress,
                                warp_depth_fn=depth_fns[i])
                delta, steps, early = s2.delta, s2.steps_run, s2.stopped_early
                history["stage2"] = s2.history
            with no_grad_render(perf):  # pure render: inference_mode unless switched off
                render = synthesize(G, ws, c1[j:j + 1], tensors=tuned_tensors(G, delta),
                                    sampling=config.sampling, fused_modconv=perf.fused_modconv).image
                metrics = input_view_metrics(render, x[i:i + 1], losses)
            t2 = time.perf_counter() - t0
            yield InversionResult(
                ws=ws, delta=delta, history=history, metrics=metrics,
                timings={"stage1": s1_seconds / s1.ws.shape[0], "stage1_batch": s1_seconds, "stage2": t2,
                         "total": s1_seconds / s1.ws.shape[0] + t2,
                         **({"encoder": t_enc / s1.ws.shape[0]} if encoder is not None else {})},
                stage2_steps=steps, stopped_early=early, config=config, camera=c1[j:j + 1].cpu())


def invert(
    G: TriPlaneGenerator,
    image: Float[Tensor, "3 h w"] | Float[Tensor, "1 3 h w"],
    camera: Float[Tensor, "25"] | Float[Tensor, "1 25"],
    *,
    mask: Bool[Tensor, "h w"] | Float[Tensor, "h w"] | None = None,
    landmarks: Float[Tensor, "68 2"] | None = None,
    regions: FaceRegions | Sequence[Box] | None = None,
    config: InversionConfig | None = None,
    progress: Progress | None = None,
    losses: LossFunctions | None = None,
    warp_depth_fn: DepthFn | None = None,
    encoder: TrainedEncoder | None = None,
) -> InversionResult:
    """Invert one photo ([-1, 1] RGB) seen from ``camera`` (25-d EG3D label).

    ``mask``: face mask used by the warp losses (None = whole image). ``landmarks``: iBUG-68 pixel
    coordinates in ``image`` for the eye/mouth boxes; or pass ``regions`` (boxes in [0, 1] coords).
    ``progress(stage, step, total, losses)`` is called after every step. ``losses`` replaces the
    default LPIPS/contextual losses (tests, benchmarks). ``warp_depth_fn(cameras [V, 25]) -> z-depth
    [V, 1, r, r]``: the true geometry that ``stage2.warp_depth="given"`` warps with (benchmarks that know it).
    ``encoder``: ``G``'s trained encoder (:func:`sym3dinv.encoder.load_encoder_for`), needed when
    ``stage1.init="encoder"`` (``instant``, ``quick``).
    """
    x = image[None] if image.ndim == 3 else image
    if x.shape[0] != 1:
        raise ConfigError(f"invert takes one image; use invert_batch for {x.shape[0]}")
    c = camera.reshape(1, 25)
    reg: FaceRegions | None
    if isinstance(regions, FaceRegions):
        reg = regions
    elif regions is not None:
        reg = FaceRegions(boxes=tuple(tuple(float(v) for v in b) for b in regions))  # type: ignore[misc]
    elif landmarks is not None:
        reg = FaceRegions.from_landmarks(landmarks, int(x.shape[-1]))
    else:
        reg = None
    masks = None if mask is None else mask.reshape(1, *mask.shape[-2:])
    return invert_batch(G, x, c, masks=masks, regions=[reg], config=config, progress=progress, losses=losses,
                        warp_depth_fns=[warp_depth_fn], encoder=encoder)[0]
