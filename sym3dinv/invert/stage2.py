"""Stage 2: tune the generator around the frozen pivot (PTI-like) with pseudo labels (METHOD.md).

Functional formulation: the caller's generator is never modified or copied as a module; its parameters
are cloned once into a trainable dict and every render goes through ``torch.func.functional_call``. The
result is the weight delta ``trainable - original`` (plus the stage-1 noise buffers' change).
All cameras of a step (input, nearby views, mirror) are rendered in one batched synthesis call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import mirror_label, yaw_pitch_roll
from sym3dinv.config.invert import InversionConfig
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.invert.losses import LossFunctions, fixed_target_loss
from sym3dinv.invert.pseudo import FaceRegions, depth_reg_loss, mirror_pseudo_loss, warp_pseudo_loss
from sym3dinv.invert.render import area_resize, cross_offsets, synthesize, views_around
from sym3dinv.invert.stage1 import Progress
from sym3dinv.perf import autocast, compile_with_fallback, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage2Result:
    """Tuned generator of one image, as a delta on the original weights."""

    delta: dict[str, Tensor]  # name -> tuned - original (parameters and noise buffers), fp32
    history: tuple[dict[str, float], ...]  # per step
    steps_run: int
    stopped_early: bool
    pseudo_steps: tuple[int, ...]  # steps at which the pseudo-label terms ran
    seconds: float


def run_stage2(
    G: TriPlaneGenerator,
    image: Float[Tensor, "1 3 h w"],
    camera: Float[Tensor, "1 25"],
    ws: Float[Tensor, "1 k w"],
    noise: dict[str, Tensor],
    config: InversionConfig,
    losses: LossFunctions,
    *,
    mask: Float[Tensor, "1 1 h w"] | None = None,
    regions: FaceRegions | None = None,
    progress: Progress | None = None,
) -> Stage2Result:
    """Tune all of G's parameters for one image; ``noise`` are its stage-1 noise buffers ([r, r] each)."""
    cfg = config.stage2
    t0 = time.perf_counter()
    sampling = config.sampling
    perf = resolve(config.perf, image.device)
    # all cameras of a step render the one pivot: its tri-planes once per step with share_planes
    speed = {"fused_modconv": perf.fused_modconv, "precision": perf.precision,
             "planes_batch": 1 if perf.share_planes else None}
    original = dict(G.named_parameters())
    trainable = {k: p.detach().clone().requires_grad_(True) for k, p in original.items()}
    tensors: dict[str, Tensor] = {**trainable, **{k: v.detach() for k, v in noise.items()}}
    opt = torch.optim.Adam(list(trainable.values()), lr=cfg.lr)
    ws = ws.detach()

    pseudo = config.use_pseudo
    yaw = float(yaw_pitch_roll(camera)[0, 0])
    do_warp = pseudo and cfg.warp
    do_mirror = pseudo and cfg.mirror and abs(yaw) >= cfg.mirror_yaw_threshold
    do_depth = pseudo and cfg.depth_reg
    warp_cams = views_around(camera, cross_offsets(cfg.warp_yaw, cfg.warp_pitch)) if do_warp else camera[:0]
    reg_cams = views_around(camera, cross_offsets(cfg.depth_reg_yaw, cfg.depth_reg_pitch)) if do_depth else camera[:0]
    shared = do_warp and do_depth and torch.equal(warp_cams, reg_cams)  # one render serves both terms
    extra = [warp_cams] + ([] if shared else [reg_cams]) + ([mirror_label(camera)] if do_mirror else [])
    pseudo_cams = torch.cat([camera, *extra])
    n_w, n_r = warp_cams.shape[0], reg_cams.shape[0]
    reg_off = 1 if shared else 1 + n_w

    frozen_depth = frozen_input_depth = warp_pivot_depth = None
    with torch.no_grad():  # the untuned generator's depths never change: render them once
        if do_depth or (do_warp and cfg.warp_depth == "pivot"):
            base = synthesize(G, ws.expand(pseudo_cams.shape[0], -1, -1), pseudo_cams,
                              tensors=dict(tensors), sampling=sampling, **speed).image_depth.float()
            frozen_input_depth = base[:1]
            frozen_depth = base[reg_off:reg_off + n_r]
            warp_pivot_depth = base[1:1 + n_w]
    res = min(cfg.lpips_resolution, image.shape[-1])
    target_small = area_resize(image, res)
    # the input-view target never changes: its LPIPS features are computed once (perf switch)
    input_view_loss = compile_with_fallback(
        fixed_target_loss(losses.perceptual, target_small, cache=perf.cache_target_features,
                          channels_last=perf.channels_last), perf.compile, "stage-2 LPIPS")
    history: list[dict[str, float]] = []
    pseudo_steps: list[int] = []
    stopped = False
    step = 0
    for step in range(cfg.steps):  # noqa: B007 - step is read after the loop
        is_pseudo = pseudo and step % cfg.pseudo_every == 0 and pseudo_cams.shape[0] > 1
        cams = pseudo_cams if is_pseudo else camera
        out = synthesize(G, ws.expand(cams.shape[0], -1, -1), cams, tensors=tensors, sampling=sampling, **speed)
        rec = out.image[:1]
        with autocast(perf):
            lp = input_view_loss(area_resize(rec, res)).float().mean()
        mse = F.mse_loss(rec, image)
        rec_stats = {"mse": float(mse.detach()), "lpips": float(lp.detach())}
        if float(lp.detach()) <= cfg.lpips_threshold:
            stopped = True
            history.append(rec_stats)
            if progress is not None:
                progress("stage2", step, cfg.steps, rec_stats)
            break
        loss = cfg.mse_weight * mse + cfg.lpips_weight * lp
        if is_pseudo:
            pseudo_steps.append(step)
            if do_warp:
                in_depth = frozen_input_depth if cfg.warp_depth == "pivot" else out.image_depth[:1]
                v_depth = warp_pivot_depth if cfg.warp_depth == "pivot" else out.image_depth[1:1 + n_w]
                assert in_depth is not None and v_depth is not None
                with autocast(perf):
                    per_view, valid = warp_pseudo_loss(out.image[1:1 + n_w], warp_cams, v_depth, image, camera,
                                                       in_depth, mask, losses.perceptual, cfg.visibility_tolerance)
                per_view = per_view.float()
                loss = loss + cfg.warp_weight * per_view.sum()
                rec_stats["warp"] = float(per_view.detach().mean())
                rec_stats["warp_valid"] = float(valid.float().mean())
            if do_mirror:
                with autocast(perf):
                    ml, kept = mirror_pseudo_loss(out.image[-1:], image, regions or FaceRegions(), losses.contextual,
                                                  cfg.asymmetry_threshold, cfg.region_size)
                ml = ml.float()
                loss = loss + cfg.mirror_weight * ml
                rec_stats["mirror"] = float(ml.detach())
                rec_stats["mirror_kept"] = float(kept)
            if do_depth:
                assert frozen_depth is not None
                dl = depth_reg_loss(out.image_depth[reg_off:reg_off + n_r], frozen_depth)
                loss = loss + cfg.depth_reg_weight * dl
                rec_stats["depth_reg"] = float(dl.detach())
        rec_stats["loss"] = float(loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(rec_stats)
        if progress is not None:
            progress("stage2", step, cfg.steps, rec_stats)
    state = G.state_dict(keep_vars=True)
    delta = {k: (trainable[k].detach() - original[k].detach()) for k in trainable}
    delta.update({k: (v.detach() - state[k].detach()) for k, v in noise.items()})
    return Stage2Result(delta=delta, history=tuple(history), steps_run=len(history), stopped_early=stopped,
                        pseudo_steps=tuple(pseudo_steps), seconds=time.perf_counter() - t0)
