"""Stage 2 for a group of photos of one person: one tuned generator fitted to every photo at its camera.

Each photo keeps the single-image step of :mod:`.stage2` (:class:`~sym3dinv.invert.stage2._Step`: its
input view, its own warps, mirror branch and depth regularisation), all sharing one set of trainable
weights; one optimiser step follows the gradients of every photo. On top, each photo's nearby views also
take the *other* photos warped into them (:func:`~sym3dinv.invert.pseudo.cross_warp_loss`), with the pixels
where photos conflict dropped as asymmetric ones are. The source depths of those cross warps are the
other photos' input-view depths of the previous step (the untuned or true ones for ``warp_depth``
``pivot`` / ``given``), so the photos' order does not matter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sym3dinv.config.invert import GroupConfig, InversionConfig
from sym3dinv.generator import SynthesisOutput, TriPlaneGenerator
from sym3dinv.invert.losses import LossFunctions
from sym3dinv.invert.pseudo import FaceRegions, WarpSource, cross_warp_loss
from sym3dinv.invert.render import synthesize
from sym3dinv.invert.stage1 import Progress
from sym3dinv.invert.stage2 import DepthFn, Stage2Result, _add, _overlap, _prepare, _Step, weight_delta
from sym3dinv.perf import autocast, resolve


@dataclass
class _MemberStep(_Step):
    """One photo's step in a group, with the cross-photo warps into its nearby views."""

    group: GroupConfig = field(default_factory=GroupConfig)
    peers: list[_MemberStep] = field(default_factory=list)  # the other photos
    peer_depths: list[Tensor] = field(default_factory=list)  # their source depths for this step's cross warps
    start_depth: Tensor | None = None  # this photo's input-view depth before tuning

    def source_depth(self) -> Tensor:
        """This photo's depth at its own camera for the others' cross warps (see the module docstring)."""
        if self.cfg.warp_depth in ("pivot", "given") and self.frozen_input_depth is not None:
            return self.frozen_input_depth
        got = self.input_depth.get("input", self.start_depth)
        assert got is not None
        return got

    def pseudo_loss(self, out: SynthesisOutput, lo: int, hi: int, stats: dict[str, Tensor]) -> Tensor:
        loss = super().pseudo_loss(out, lo, hi, stats)
        v = self.views
        w = _overlap(lo, hi, 1, 1 + v.n_w) if v.do_warp and self.group.cross_warp and self.peers else None
        if w is not None:
            loss = loss + self._cross_term(out, lo, *w, stats)
        return loss

    def _cross_term(self, out: SynthesisOutput, lo: int, a: int, b: int, stats: dict[str, Tensor]) -> Tensor:
        """Warp views [a, b) of ``cams``: the other photos warped into each, conflicts dropped, one label per view."""
        cfg, n_w = self.cfg, self.views.n_w
        if cfg.warp_depth in ("pivot", "given"):
            assert self.warp_pivot_depth is not None
            v_depth = self.warp_pivot_depth[a - 1:b - 1]
        else:
            v_depth = out.image_depth[a - lo:b - lo]
        sources = [WarpSource(p.image, p.camera, d, p.mask) for p, d in zip(self.peers, self.peer_depths, strict=True)]
        with autocast(self.perf):
            per_view, kept = cross_warp_loss(out.image[a - lo:b - lo], self.views.warp[a - 1:b - 1], v_depth, sources,
                                             self.losses.perceptual, cfg.visibility_tolerance,
                                             self.group.conflict_threshold, z_depth=cfg.warp_depth == "given")
        total = per_view.float().sum()
        _add(stats, "cross_warp", per_view.detach().float().sum() / n_w)
        _add(stats, "cross_kept", kept.float().mean() * ((b - a) / n_w))
        return self.group.cross_warp_weight * total


def _members(G: TriPlaneGenerator, images: Tensor, cameras: Tensor, ws: Tensor, tensors: dict[str, Tensor],
             config: InversionConfig, losses: LossFunctions, masks: Tensor | None,
             regions: Sequence[FaceRegions | None], depth_fns: Sequence[DepthFn | None]) -> list[_MemberStep]:
    """Every photo's step, sharing ``tensors``; each knows the others and its own untuned input depth."""
    perf = resolve(config.perf, images.device)
    steps: list[_MemberStep] = []
    for i in range(images.shape[0]):
        s = _prepare(G, images[i:i + 1], cameras[i:i + 1], ws[i:i + 1], tensors, config, perf, losses,
                     None if masks is None else masks[i:i + 1], regions[i], depth_fns[i], step_cls=_MemberStep)
        assert isinstance(s, _MemberStep)
        s.group = config.group
        steps.append(s)
    if len(steps) > 1 and config.use_pseudo and config.stage2.warp and config.group.cross_warp:
        with torch.no_grad():  # "pivot" / "given" warp from the frozen depths instead (source_depth)
            for s in steps if config.stage2.warp_depth == "current" else ():
                s.start_depth = synthesize(G, s.ws, s.camera, tensors=dict(tensors), sampling=s.sampling,
                                           **s.speed).image_depth.float()
        for s in steps:
            s.peers = [p for p in steps if p is not s]
    return steps


def run_group_stage2(
    G: TriPlaneGenerator,
    images: Tensor,
    cameras: Tensor,
    ws: Tensor,
    noise: dict[str, Tensor],
    config: InversionConfig,
    losses: LossFunctions,
    *,
    masks: Tensor | None = None,
    regions: Sequence[FaceRegions | None] | None = None,
    progress: Progress | None = None,
    warp_depth_fns: Sequence[DepthFn | None] | None = None,
) -> Stage2Result:
    """Tune G's parameters for all ``n`` photos at once: ``images`` [n, 3, h, w], ``cameras`` [n, 25], each
    photo's pivot ``ws`` [n, k, w], the group's stage-1 noise buffers ([r, r] each).

    One Adam step per step over the summed gradients of every photo (each as :func:`run_stage2` computes
    them). The early stop fires when every photo's input-view LPIPS is at the threshold; the weights are
    then those from before that step, as for one photo. Eager only (no CUDA graphs).
    """
    cfg, n = config.stage2, images.shape[0]
    t0 = time.perf_counter()
    original = dict(G.named_parameters())
    trainable = {k: p.detach().clone().requires_grad_(True) for k, p in original.items()}
    opt = torch.optim.Adam(list(trainable.values()), lr=cfg.lr)
    tensors = {**trainable, **{k: v.detach() for k, v in noise.items()}}
    steps = _members(G, images, cameras, ws.detach(), tensors, config, losses, masks,
                     list(regions) if regions is not None else [None] * n,
                     list(warp_depth_fns) if warp_depth_fns is not None else [None] * n)
    history: list[dict[str, float]] = []
    pseudo_steps: list[int] = []
    stopped = False
    for i in range(cfg.steps):
        is_pseudo = config.use_pseudo and i % cfg.pseudo_every == 0
        if is_pseudo:
            for s in steps:  # the others' depths as they are now: the same whatever the photos' order
                s.peer_depths = [p.source_depth() for p in s.peers]
        opt.zero_grad(set_to_none=True)
        per_photo = []
        for s in steps:
            pseudo_here = is_pseudo and s.views.cams.shape[0] > 1
            stats, _ = s.forward_backward(s.views.cams if pseudo_here else s.camera, pseudo_here, check_stop=False)
            per_photo.append({k: float(v) for k, v in stats.items()})
        stopped = max(p["lpips"] for p in per_photo) <= cfg.lpips_threshold
        if not stopped:
            opt.step()
            if is_pseudo and any(s.views.cams.shape[0] > 1 for s in steps):
                pseudo_steps.append(i)
        keys = dict.fromkeys(k for p in per_photo for k in p)  # a photo without a term (mirror) is left out
        rec = {k: sum(p[k] for p in per_photo if k in p) / sum(k in p for p in per_photo) for k in keys}
        rec["lpips_max"] = max(p["lpips"] for p in per_photo)
        history.append(rec)
        if progress is not None:
            progress("stage2", i, cfg.steps, rec)
        if stopped:
            break
    return Stage2Result(delta=weight_delta(G, trainable, original, noise), history=tuple(history),
                        steps_run=len(history), stopped_early=stopped, pseudo_steps=tuple(pseudo_steps),
                        seconds=time.perf_counter() - t0)
