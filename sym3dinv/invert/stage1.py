"""Stage 1: W+ latent optimisation with the symmetry prior (METHOD.md "Stage 1").

StyleGAN2-projector recipe: start from the camera-conditioned mean w, Adam on ws with the warm-up /
cosine schedule, decaying Gaussian noise on w, optionally optimised noise buffers with the projector's
autocorrelation penalty. Loss per image: LPIPS(render(ws, c), I) + w_m * LPIPS(render(ws, mirror(c)),
flip(I)), the second term only in ``spi`` mode. Several images run as one batch with independent ws; a
group of photos of one person shares one pivot (:mod:`.latents`).
With ``refine_camera`` small per-image camera corrections are optimised too (:mod:`.camera_refine`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import mirror_label
from sym3dinv.config.invert import InversionConfig, Stage1Config
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.invert.camera_refine import camera_prior, refine_labels
from sym3dinv.invert.latents import Latents, start_latents
from sym3dinv.invert.losses import LossFunctions, fixed_target_loss, set_loss_memory_format
from sym3dinv.invert.mirror import flip, mirror_weights
from sym3dinv.invert.render import area_resize, synthesize
from sym3dinv.invert.schedules import lr_at, noise_scale_at
from sym3dinv.perf import autocast, compile_with_fallback, resolve

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True)
class Stage1Result:
    """Pivots of a batch."""

    ws: Float[Tensor, "n k w"]  # each image's pivot (a group's photos: the shared pivot + the photo's offset)
    noise: dict[str, Tensor]  # state-dict name -> per-pivot noise [p, r, r] (p = 1 for a group); empty when not optimised
    history: tuple[dict[str, float], ...]  # per step, batch means
    seconds: float
    cameras: Float[Tensor, "n 25"] | None = None  # the corrected cameras (refine_camera), else the inputs
    pivot: Float[Tensor, "p k w"] | None = None  # the optimised pivots without offsets (a group's shared one)


def noise_regularizer(noise: dict[str, Tensor]) -> Float[Tensor, " n"]:
    """Projector's penalty: squared autocorrelation at shifts of 1 px, over an image pyramid down to 8 px."""
    total: Tensor | int = 0
    for buf in noise.values():  # [N, 1, r, r]
        x = buf
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean(dim=(1, 2, 3)) ** 2
            total = total + (x * torch.roll(x, 1, dims=2)).mean(dim=(1, 2, 3)) ** 2
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total if isinstance(total, Tensor) else torch.zeros(())


def run_stage1(
    G: TriPlaneGenerator,
    images: Float[Tensor, "n 3 h w"],
    cameras: Float[Tensor, "n 25"],
    config: InversionConfig,
    losses: LossFunctions,
    generator: torch.Generator,
    progress: Progress | None = None,
    init_ws: Float[Tensor, "n k w"] | None = None,
    *,
    shared: bool = False,
) -> Stage1Result:
    """Optimise one pivot per image; ``images`` are at G's output resolution, [-1, 1]. ``init_ws``: the
    start (an encoder's prediction) instead of the camera-conditioned mean w.

    Random draws (mean-w latents, the per-step w noise) come from ``generator``: each image of a batch gets
    the stream a batch of one would get, so batching only changes float rounding, never an image's result.
    ``shared``: the images are photos of one person with one pivot (:mod:`.latents`); the loss is the sum
    of every photo's input and mirror terms, and the result holds each photo's ws (pivot + its offset).
    """
    cfg = config.stage1
    t0 = time.perf_counter()
    n, dev = images.shape[0], images.device
    perf = resolve(config.perf, dev)
    lat = start_latents(G, cameras, config, generator, init_ws, shared=shared)
    delta = torch.zeros(n, 3, device=dev, requires_grad=True) if cfg.refine_camera else None
    opt = _optimizer(lat, delta, cfg)
    wm, target = _targets(images, cameras, config)
    mirrored = wm is not None
    set_loss_memory_format(losses, perf.channels_last)
    # the (mirrored) targets never change: their LPIPS features are computed once (perf switch)
    perceptual = compile_with_fallback(
        fixed_target_loss(losses.perceptual, target, cache=perf.cache_target_features), perf.compile,
        "stage-1 LPIPS")
    history: list[dict[str, float]] = []
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, g["base_lr"], cfg.lr_rampup, cfg.lr_rampdown)
        cams = _step_cameras(cameras, delta, mirrored)
        ws_in = lat.step_ws(noise_scale_at(step, cfg.steps, cfg.noise_scale, cfg.noise_ramp))
        if mirrored:  # the mirror view shares the latent
            ws_in = torch.cat((ws_in, ws_in))
        # with share_planes the tri-planes of each distinct latent are computed once and tiled
        planes_batch = lat.distinct if perf.share_planes and lat.distinct < ws_in.shape[0] else None
        out = synthesize(G, ws_in, cams, tensors=lat.render_noise(ws_in.shape[0], planes_batch),
                         sampling=config.sampling, fused_modconv=perf.fused_modconv, precision=perf.precision,
                         planes_batch=planes_batch)
        with autocast(perf):
            dist = perceptual(area_resize(out.image, target.shape[-1])).float()  # [N] or [2N]
        rec = dist[:n]
        loss_i = rec.clone() + lat.prior()
        rec_m = torch.zeros_like(rec)
        if wm is not None:
            rec_m = dist[n:]
            loss_i = loss_i + wm * rec_m
        reg = noise_regularizer(lat.noise) if lat.noise else torch.zeros_like(rec)
        if delta is not None:
            loss_i = loss_i + cfg.camera_prior_weight * camera_prior(delta, cfg.camera_sigma_deg)
        loss = loss_i.sum() + cfg.noise_reg_weight * reg.sum()  # sum: independent images keep their own scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lat.normalise_noise()
        rec_stats = {"lpips": float(rec.detach().mean()), "mirror_lpips": float(rec_m.detach().mean()),
                     "noise_reg": float(reg.detach().mean()), "loss": float(loss_i.detach().mean()),
                     "lr": float(opt.param_groups[0]["lr"])}
        if delta is not None:
            rec_stats["camera_delta_deg"] = float(torch.rad2deg(delta.detach()).abs().mean())
        if lat.offsets is not None:
            rec_stats["offset_prior"] = float(lat.prior().detach().mean())
        history.append(rec_stats)
        if progress is not None:
            progress("stage1", step, cfg.steps, rec_stats)
    noise_out = {k: v.detach()[:, 0] for k, v in lat.noise.items()}
    final = cameras if delta is None else refine_labels(cameras, delta).detach()
    return Stage1Result(ws=lat.final_ws(), noise=noise_out, history=tuple(history), seconds=time.perf_counter() - t0,
                        cameras=final, pivot=lat.base.detach())


def _optimizer(lat: Latents, delta: Tensor | None, cfg: Stage1Config) -> torch.optim.Adam:
    """Adam on the latents (``lr``) and, when refining, the camera corrections (``camera_lr``); each group's
    ``base_lr`` follows the same warm-up / ramp-down."""
    groups: list[dict] = [{"params": lat.params(), "base_lr": cfg.lr}]
    if delta is not None:
        groups.append({"params": [delta], "base_lr": cfg.camera_lr})
    return torch.optim.Adam(groups, betas=(0.9, 0.999), lr=cfg.lr)


def _step_cameras(cameras: Tensor, delta: Tensor | None, mirrored: bool) -> Tensor:
    """This step's render cameras: the (corrected) inputs, then, with the mirror term, their mirrors ([2N])."""
    cams = cameras if delta is None else refine_labels(cameras, delta)
    return torch.cat((cams, mirror_label(cams))) if mirrored else cams


def _targets(images: Tensor, cameras: Tensor, config: InversionConfig) -> tuple[Tensor | None, Tensor]:
    """(mirror weights or None, LPIPS targets): with the mirror term, both views of every image go in one
    synthesis call ([2N]: the inputs, then their flips at the mirrored cameras, :func:`_step_cameras`)."""
    cfg = config.stage1
    wm = None
    if config.use_mirror_stage1:
        wm = mirror_weights(cameras, cfg.mirror_yaw_threshold, cfg.mirror_sigma, cfg.mirror_norm)
        wm = wm if bool((wm > 0).any()) else None
    target = area_resize(images, min(cfg.lpips_resolution, images.shape[-1]))
    if wm is None:
        return None, target
    return wm, torch.cat((target, flip(target)))
