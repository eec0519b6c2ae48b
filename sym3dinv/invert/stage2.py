"""Stage 2: tune the generator around the frozen pivot (PTI-like) with pseudo labels (METHOD.md).

Functional formulation: the caller's generator is never modified or copied as a module; its parameters
are cloned once into a trainable dict and every render goes through ``torch.func.functional_call``. The
result is the weight delta ``trainable - original`` (plus the stage-1 noise buffers' change).
All cameras of a step (input, nearby views, mirror) are rendered in batched passes of
``perf.views_per_pass`` cameras sharing one tri-plane computation; gradients accumulate over the passes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import mirror_label, yaw_pitch_roll
from sym3dinv.config.invert import InversionConfig
from sym3dinv.generator import SynthesisOutput, TriPlaneGenerator
from sym3dinv.invert.cuda_graphs import StepGraphs
from sym3dinv.invert.losses import LossFunctions, fixed_target_loss, set_loss_memory_format
from sym3dinv.invert.pseudo import FaceRegions, depth_reg_loss, mirror_pseudo_loss, warp_pseudo_loss
from sym3dinv.invert.render import (
    area_resize,
    cross_offsets,
    render_from_planes,
    synthesize,
    synthesize_planes,
    views_around,
)
from sym3dinv.invert.stage1 import Progress
from sym3dinv.perf import autocast, compile_with_fallback, resolve

log = logging.getLogger(__name__)
_STAT_ORDER = ("warp", "warp_valid", "mirror", "mirror_kept", "depth_reg")  # history keys of a pseudo step


def _overlap(lo: int, hi: int, a: int, b: int) -> tuple[int, int] | None:
    """[lo, hi) and [a, b) intersected, or None."""
    s, e = max(lo, a), min(hi, b)
    return (s, e) if s < e else None


@dataclass(frozen=True)
class Stage2Result:
    """Tuned generator of one image, as a delta on the original weights."""

    delta: dict[str, Tensor]  # name -> tuned - original (parameters and noise buffers), fp32
    history: tuple[dict[str, float], ...]  # per step
    steps_run: int
    stopped_early: bool
    pseudo_steps: tuple[int, ...]  # steps at which the pseudo-label terms ran
    seconds: float
    graphed_steps: int = 0  # steps replayed from CUDA graphs


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
    params = list(trainable.values())
    graphed = perf.cuda_graphs and image.device.type == "cuda"
    # capturable: Adam's step count lives on the device, so the update can be replayed inside a CUDA graph
    opt = torch.optim.Adam(params, lr=cfg.lr, capturable=graphed)
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
    set_loss_memory_format(losses, perf.channels_last)
    # the input-view target never changes: its LPIPS features are computed once (perf switch)
    input_view_loss = compile_with_fallback(
        fixed_target_loss(losses.perceptual, target_small, cache=perf.cache_target_features), perf.compile,
        "stage-2 LPIPS")
    history: list[dict[str, float]] = []
    pseudo_steps: list[int] = []
    stopped = False
    step = 0
    last = pseudo_cams.shape[0] - 1  # the mirror camera's index, when there is one
    input_depth: dict[str, Tensor] = {}  # the current input-view depth (warp_depth="current"), set by pass 0

    def add(stats: dict[str, Tensor], key: str, value: Tensor) -> None:
        stats[key] = stats[key] + value if key in stats else value

    def pass_loss(out: SynthesisOutput, lo: int, hi: int, stats: dict[str, Tensor]) -> Tensor:
        """The pseudo-label terms of cameras [lo, hi) of a step (each term is a sum over its cameras, so
        the passes' losses add up to the one-pass loss); running sums of the logged values in ``stats``
        (tensors: no host sync inside a step, which a CUDA graph needs)."""
        loss = out.image.new_zeros(())
        w = _overlap(lo, hi, 1, 1 + n_w) if do_warp else None
        if w is not None:
            a, b = w
            in_depth = frozen_input_depth if cfg.warp_depth == "pivot" else input_depth["input"]
            v_depth = warp_pivot_depth[a - 1:b - 1] if cfg.warp_depth == "pivot" else out.image_depth[a - lo:b - lo]
            assert in_depth is not None and v_depth is not None
            with autocast(perf):
                per_view, valid = warp_pseudo_loss(out.image[a - lo:b - lo], warp_cams[a - 1:b - 1], v_depth, image,
                                                   camera, in_depth, mask, losses.perceptual, cfg.visibility_tolerance)
            per_view = per_view.float()
            loss = loss + cfg.warp_weight * per_view.sum()
            add(stats, "warp", per_view.detach().sum() / n_w)
            add(stats, "warp_valid", valid.float().mean() * ((b - a) / n_w))
        if do_mirror and lo <= last < hi:
            with autocast(perf):
                ml, kept = mirror_pseudo_loss(out.image[last - lo:last - lo + 1], image, regions or FaceRegions(),
                                              losses.contextual, cfg.asymmetry_threshold, cfg.region_size)
            ml = ml.float()
            loss = loss + cfg.mirror_weight * ml
            stats["mirror"], stats["mirror_kept"] = ml.detach(), kept.detach().float()
        r = _overlap(lo, hi, reg_off, reg_off + n_r) if do_depth else None
        if r is not None:
            a, b = r
            assert frozen_depth is not None
            dl = depth_reg_loss(out.image_depth[a - lo:b - lo], frozen_depth[a - reg_off:b - reg_off]) * ((b - a) / n_r)
            loss = loss + cfg.depth_reg_weight * dl
            add(stats, "depth_reg", dl.detach())
        return loss

    def forward_backward(cams: Tensor, is_pseudo: bool, check_stop: bool) -> tuple[dict[str, Tensor], bool]:
        """Loss and gradients of one step, in passes of ``perf.views_per_pass`` cameras; returns the logged
        values and whether the early stop fired (checked after the input view, before any backward, when
        ``check_stop``: that check reads a value back from the device)."""
        n_cam = cams.shape[0]
        per_pass = n_cam if perf.views_per_pass <= 0 else min(perf.views_per_pass, n_cam)
        passes = [(lo, min(lo + per_pass, n_cam)) for lo in range(0, n_cam, per_pass)]
        planes = leaf = None
        if len(passes) > 1 and perf.share_planes:  # tri-planes once; each pass back-propagates into a leaf copy
            planes = synthesize_planes(G, ws, tensors=tensors, fused_modconv=perf.fused_modconv)
            leaf = planes.detach().requires_grad_(True)
        stats: dict[str, Tensor] = {}
        for lo, hi in passes:
            if leaf is not None:
                out = render_from_planes(G, leaf.expand(hi - lo, -1, -1, -1, -1), ws.expand(hi - lo, -1, -1),
                                         cams[lo:hi], tensors=tensors, sampling=sampling,
                                         fused_modconv=perf.fused_modconv, precision=perf.precision)
            else:
                out = synthesize(G, ws.expand(hi - lo, -1, -1), cams[lo:hi], tensors=tensors, sampling=sampling,
                                 **speed)
            loss = out.image.new_zeros(())
            if lo == 0:  # the input view: reconstruction terms and the early stop
                rec = out.image[:1]
                with autocast(perf):
                    lp = input_view_loss(area_resize(rec, res)).float().mean()
                mse = F.mse_loss(rec, image)
                stats["mse"], stats["lpips"] = mse.detach(), lp.detach()
                if check_stop and float(lp.detach()) <= cfg.lpips_threshold:
                    return stats, True
                loss = cfg.mse_weight * mse + cfg.lpips_weight * lp
                input_depth["input"] = out.image_depth[:1].detach()
            if is_pseudo:
                loss = loss + pass_loss(out, lo, hi, stats)
            add(stats, "loss", loss.detach())
            loss.backward()
        if planes is not None and leaf is not None and leaf.grad is not None:
            planes.backward(leaf.grad)
        return stats, False

    graphs = StepGraphs(params, opt) if graphed else None
    for step in range(cfg.steps):  # noqa: B007 - step is read after the loop
        is_pseudo = pseudo and step % cfg.pseudo_every == 0 and pseudo_cams.shape[0] > 1
        cams = pseudo_cams if is_pseudo else camera
        stats: dict[str, Tensor] | None = None
        if graphs is not None:
            stats = graphs.step(is_pseudo, lambda c=cams, p=is_pseudo: forward_backward(c, p, check_stop=False)[0])
            if stats is not None and float(stats["lpips"]) <= cfg.lpips_threshold:
                graphs.undo()  # the early stop keeps the weights before this step, as the eager loop does
                stopped = True
        if stats is None:  # eager (CPU, or while warming up for / falling back from the graphs)
            with graphs.eager() if graphs is not None else contextlib.nullcontext():
                opt.zero_grad(set_to_none=True)
                stats, stopped = forward_backward(cams, is_pseudo, check_stop=True)
                if not stopped:
                    opt.step()
        keys = ["mse", "lpips"] + ([*_STAT_ORDER, "loss"] if not stopped else [])
        keys = [k for k in keys if k in stats]
        rec_stats = dict(zip(keys, torch.stack([stats[k].float() for k in keys]).tolist(), strict=True))
        if not stopped and is_pseudo:
            pseudo_steps.append(step)
        history.append(rec_stats)
        if progress is not None:
            progress("stage2", step, cfg.steps, rec_stats)
        if stopped:
            break
    state = G.state_dict(keep_vars=True)
    delta = {k: (trainable[k].detach() - original[k].detach()) for k in trainable}
    delta.update({k: (v.detach() - state[k].detach()) for k, v in noise.items()})
    return Stage2Result(delta=delta, history=tuple(history), steps_run=len(history), stopped_early=stopped,
                        pseudo_steps=tuple(pseudo_steps), seconds=time.perf_counter() - t0,
                        graphed_steps=graphs.replays if graphs is not None else 0)
