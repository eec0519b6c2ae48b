"""Stage 2: tune the generator around the frozen pivot (PTI-like) with pseudo labels (METHOD.md).

Functional formulation: the caller's generator is never modified or copied as a module; its parameters
are cloned once into a trainable dict and every render goes through ``torch.func.functional_call``. The
result is the weight delta ``trainable - original`` (plus the stage-1 noise buffers' change).
All cameras of a step (input, nearby views, mirror) are rendered in batched passes of
``perf.views_per_pass`` cameras sharing one tri-plane computation; gradients accumulate over the passes.

Reading order: :func:`run_stage2` (the step loop) -> :class:`_Views` (which cameras a pseudo-label step
renders) -> :class:`_Step` (one step's loss and gradients: :meth:`_Step.forward_backward` renders the
passes, :meth:`_Step.pseudo_loss` adds the warp, mirror and depth terms of a pass's cameras).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import mirror_label, yaw_pitch_roll
from sym3dinv.config.invert import InversionConfig, Stage2Config
from sym3dinv.errors import ConfigError
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
from sym3dinv.perf import ResolvedPerf, autocast, compile_with_fallback, resolve

log = logging.getLogger(__name__)
DepthFn = Callable[[Tensor], Tensor]
"""Known geometry for ``warp_depth="given"``: camera labels [V, 25] -> true z-depth maps [V, 1, r, r]."""
_STAT_ORDER = ("warp", "warp_valid", "mirror", "mirror_kept", "depth_reg")  # history keys of a pseudo step


def _overlap(lo: int, hi: int, a: int, b: int) -> tuple[int, int] | None:
    """[lo, hi) and [a, b) intersected, or None."""
    s, e = max(lo, a), min(hi, b)
    return (s, e) if s < e else None


def _add(stats: dict[str, Tensor], key: str, value: Tensor) -> None:
    stats[key] = stats[key] + value if key in stats else value


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


@dataclass(frozen=True)
class _Views:
    """The cameras of a pseudo-label step, in render order: the input, the warp views, the depth-reg views
    (unless they are the warp views: one render then serves both terms), the mirror view."""

    cams: Tensor  # [V, 25]
    warp: Tensor  # [n_w, 25] (empty when off)
    reg: Tensor  # [n_r, 25] (empty when off)
    do_warp: bool
    do_mirror: bool
    do_depth: bool
    reg_off: int  # index of the first depth-reg camera in ``cams``

    @classmethod
    def around(cls, camera: Tensor, cfg: Stage2Config, pseudo: bool) -> _Views:
        yaw = float(yaw_pitch_roll(camera)[0, 0])
        do_warp = pseudo and cfg.warp
        do_mirror = pseudo and cfg.mirror and abs(yaw) >= cfg.mirror_yaw_threshold
        do_depth = pseudo and cfg.depth_reg
        warp = views_around(camera, cross_offsets(cfg.warp_yaw, cfg.warp_pitch)) if do_warp else camera[:0]
        reg = views_around(camera, cross_offsets(cfg.depth_reg_yaw, cfg.depth_reg_pitch)) if do_depth else camera[:0]
        shared = do_warp and do_depth and torch.equal(warp, reg)  # one render serves both terms
        extra = [warp] + ([] if shared else [reg]) + ([mirror_label(camera)] if do_mirror else [])
        return cls(torch.cat([camera, *extra]), warp, reg, do_warp, do_mirror, do_depth,
                   1 if shared else 1 + warp.shape[0])

    @property
    def n_w(self) -> int:
        return self.warp.shape[0]

    @property
    def n_r(self) -> int:
        return self.reg.shape[0]

    @property
    def mirror_index(self) -> int:
        """The mirror camera's index (the last), when there is one."""
        return self.cams.shape[0] - 1


@dataclass
class _Step:
    """What every step of one image's tuning shares: the generator's tensors, targets, cameras, the frozen
    depths of the untuned generator, and the loss functions. :meth:`forward_backward` is one step."""

    G: TriPlaneGenerator
    image: Tensor
    camera: Tensor
    ws: Tensor
    tensors: dict[str, Tensor]  # trainable parameters and the (fixed) stage-1 noise buffers
    cfg: Stage2Config
    perf: ResolvedPerf
    sampling: str
    losses: LossFunctions
    views: _Views
    mask: Tensor | None
    regions: FaceRegions | None
    input_view_loss: Any  # LPIPS against the input view at ``res``, features cached (perf switch)
    res: int
    frozen_input_depth: Tensor | None = None
    frozen_depth: Tensor | None = None  # depth-reg views
    warp_pivot_depth: Tensor | None = None  # warp views (warp_depth="pivot"; "given": true z-depths)
    warp_depth_fn: DepthFn | None = None  # the caller's known geometry (warp_depth="given")
    input_depth: dict[str, Tensor] = field(default_factory=dict)  # the current input-view depth, set by pass 0

    @property
    def speed(self) -> dict[str, Any]:
        # all cameras of a step render the one pivot: its tri-planes once per step with share_planes
        return {"fused_modconv": self.perf.fused_modconv, "precision": self.perf.precision,
                "planes_batch": 1 if self.perf.share_planes else None}

    def freeze_depths(self) -> None:
        """The untuned generator's depths never change: render them once."""
        v, cfg = self.views, self.cfg
        if v.do_warp and cfg.warp_depth == "given":
            self._given_depths()
        if not (v.do_depth or (v.do_warp and cfg.warp_depth == "pivot")):
            return
        with torch.no_grad():
            base = synthesize(self.G, self.ws.expand(v.cams.shape[0], -1, -1), v.cams, tensors=dict(self.tensors),
                              sampling=self.sampling, **self.speed).image_depth.float()
        self.frozen_depth = base[v.reg_off:v.reg_off + v.n_r]
        if cfg.warp_depth == "pivot":
            self.frozen_input_depth = base[:1]
            self.warp_pivot_depth = base[1:1 + v.n_w]

    def _given_depths(self) -> None:
        """The caller's true z-depths at the input and warp cameras, asked for once."""
        if self.warp_depth_fn is None:
            raise ConfigError("stage2.warp_depth='given' needs warp_depth_fn (true z-depths at given cameras)")
        cams = self.views.cams[:1 + self.views.n_w]
        with torch.no_grad():
            z = torch.as_tensor(self.warp_depth_fn(cams.detach().cpu())).float().to(self.image.device)
        if z.ndim != 4 or z.shape[:2] != (cams.shape[0], 1) or not bool(torch.isfinite(z).all()):
            raise ConfigError(f"warp_depth_fn must return finite [{cams.shape[0]}, 1, H, W] z-depths, "
                              f"got {tuple(z.shape)}")
        self.frozen_input_depth, self.warp_pivot_depth = z[:1], z[1:]

    def forward_backward(self, cams: Tensor, is_pseudo: bool, check_stop: bool) -> tuple[dict[str, Tensor], bool]:
        """Loss and gradients of one step, in passes of ``perf.views_per_pass`` cameras; returns the logged
        values (tensors: no host sync inside a step, which a CUDA graph needs) and whether the early stop
        fired (checked after the input view, before any backward, when ``check_stop``: that check reads a
        value back from the device)."""
        n_cam = cams.shape[0]
        per_pass = n_cam if self.perf.views_per_pass <= 0 else min(self.perf.views_per_pass, n_cam)
        planes = leaf = None
        if per_pass < n_cam and self.perf.share_planes:  # tri-planes once; each pass back-propagates into a leaf
            planes = synthesize_planes(self.G, self.ws, tensors=self.tensors, fused_modconv=self.perf.fused_modconv)
            leaf = planes.detach().requires_grad_(True)
        stats: dict[str, Tensor] = {}
        for lo in range(0, n_cam, per_pass):
            hi = min(lo + per_pass, n_cam)
            out = self._render(cams[lo:hi], leaf)
            loss = out.image.new_zeros(())
            if lo == 0:  # the input view: reconstruction terms and the early stop
                loss, stop = self._input_terms(out, stats, check_stop)
                if stop:
                    return stats, True
            if is_pseudo:
                loss = loss + self.pseudo_loss(out, lo, hi, stats)
            _add(stats, "loss", loss.detach())
            loss.backward()
        if planes is not None and leaf is not None and leaf.grad is not None:
            planes.backward(leaf.grad)
        return stats, False

    def _render(self, cams: Tensor, leaf: Tensor | None) -> SynthesisOutput:
        k = cams.shape[0]
        if leaf is not None:
            return render_from_planes(self.G, leaf.expand(k, -1, -1, -1, -1), self.ws.expand(k, -1, -1), cams,
                                      tensors=self.tensors, sampling=self.sampling,
                                      fused_modconv=self.perf.fused_modconv, precision=self.perf.precision)
        return synthesize(self.G, self.ws.expand(k, -1, -1), cams, tensors=self.tensors, sampling=self.sampling,
                          **self.speed)

    def _input_terms(self, out: SynthesisOutput, stats: dict[str, Tensor], check_stop: bool) -> tuple[Tensor, bool]:
        """MSE + LPIPS of the input view (camera 0 of the first pass), and whether the early stop fires."""
        rec = out.image[:1]
        with autocast(self.perf):
            lp = self.input_view_loss(area_resize(rec, self.res)).float().mean()
        mse = F.mse_loss(rec, self.image)
        stats["mse"], stats["lpips"] = mse.detach(), lp.detach()
        if check_stop and float(lp.detach()) <= self.cfg.lpips_threshold:
            return lp, True
        self.input_depth["input"] = out.image_depth[:1].detach()
        return self.cfg.mse_weight * mse + self.cfg.lpips_weight * lp, False

    def pseudo_loss(self, out: SynthesisOutput, lo: int, hi: int, stats: dict[str, Tensor]) -> Tensor:
        """The pseudo-label terms of cameras [lo, hi) of a step (each term is a sum over its cameras, so
        the passes' losses add up to the one-pass loss); running sums of the logged values in ``stats``."""
        v = self.views
        loss = out.image.new_zeros(())
        w = _overlap(lo, hi, 1, 1 + v.n_w) if v.do_warp else None
        if w is not None:
            loss = loss + self._warp_term(out, lo, *w, stats)
        if v.do_mirror and lo <= v.mirror_index < hi:
            loss = loss + self._mirror_term(out, v.mirror_index - lo, stats)
        r = _overlap(lo, hi, v.reg_off, v.reg_off + v.n_r) if v.do_depth else None
        if r is not None:
            loss = loss + self._depth_term(out, lo, *r, stats)
        return loss

    def _warp_term(self, out: SynthesisOutput, lo: int, a: int, b: int, stats: dict[str, Tensor]) -> Tensor:
        """Warp views [a, b) of ``cams``: the input warped into each by depth, LPIPS on the visible pixels."""
        cfg, n_w = self.cfg, self.views.n_w
        if cfg.warp_depth in ("pivot", "given"):  # the untuned generator's depths (or true ones), once
            in_depth, v_depth = self.frozen_input_depth, self.warp_pivot_depth
            assert v_depth is not None
            v_depth = v_depth[a - 1:b - 1]
        else:  # the tuned generator's at this step (the authors' loop)
            in_depth, v_depth = self.input_depth["input"], out.image_depth[a - lo:b - lo]
        assert in_depth is not None
        with autocast(self.perf):
            per_view, valid = warp_pseudo_loss(out.image[a - lo:b - lo], self.views.warp[a - 1:b - 1], v_depth,
                                               self.image, self.camera, in_depth, self.mask, self.losses.perceptual,
                                               cfg.visibility_tolerance, z_depth=cfg.warp_depth == "given")
        per_view = per_view.float()
        _add(stats, "warp", per_view.detach().sum() / n_w)
        _add(stats, "warp_valid", valid.float().mean() * ((b - a) / n_w))
        return cfg.warp_weight * per_view.sum()

    def _mirror_term(self, out: SynthesisOutput, i: int, stats: dict[str, Tensor]) -> Tensor:
        """The mirror view (index ``i`` of this pass) against the flipped input on eye/mouth regions."""
        with autocast(self.perf):
            ml, kept = mirror_pseudo_loss(out.image[i:i + 1], self.image, self.regions or FaceRegions(),
                                          self.losses.contextual, self.cfg.asymmetry_threshold, self.cfg.region_size)
        ml = ml.float()
        stats["mirror"], stats["mirror_kept"] = ml.detach(), kept.detach().float()
        return self.cfg.mirror_weight * ml

    def _depth_term(self, out: SynthesisOutput, lo: int, a: int, b: int, stats: dict[str, Tensor]) -> Tensor:
        """Depth-reg views [a, b): MSE to the untuned generator's depths there."""
        v = self.views
        assert self.frozen_depth is not None
        dl = depth_reg_loss(out.image_depth[a - lo:b - lo], self.frozen_depth[a - v.reg_off:b - v.reg_off]) \
            * ((b - a) / v.n_r)
        _add(stats, "depth_reg", dl.detach())
        return self.cfg.depth_reg_weight * dl


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
    warp_depth_fn: DepthFn | None = None,
) -> Stage2Result:
    """Tune all of G's parameters for one image; ``noise`` are its stage-1 noise buffers ([r, r] each).
    ``warp_depth_fn``: the known geometry ``stage2.warp_depth="given"`` warps with (benchmarks only)."""
    cfg = config.stage2
    if warp_depth_fn is not None and cfg.warp_depth != "given":
        raise ConfigError(f"warp_depth_fn is only used with stage2.warp_depth='given' (got {cfg.warp_depth!r})")
    t0 = time.perf_counter()
    perf = resolve(config.perf, image.device)
    original = dict(G.named_parameters())
    trainable = {k: p.detach().clone().requires_grad_(True) for k, p in original.items()}
    params = list(trainable.values())
    graphed = perf.cuda_graphs and image.device.type == "cuda"
    # capturable: Adam's step count lives on the device, so the update can be replayed inside a CUDA graph
    opt = torch.optim.Adam(params, lr=cfg.lr, capturable=graphed)
    step = _prepare(G, image, camera, ws.detach(), {**trainable, **{k: v.detach() for k, v in noise.items()}},
                    config, perf, losses, mask, regions, warp_depth_fn)
    graphs = StepGraphs(params, opt) if graphed else None
    history: list[dict[str, float]] = []
    pseudo_steps: list[int] = []
    stopped = False
    pseudo_cams = step.views.cams
    for i in range(cfg.steps):
        is_pseudo = config.use_pseudo and i % cfg.pseudo_every == 0 and pseudo_cams.shape[0] > 1
        stats, stopped = _one_step(step, opt, graphs, pseudo_cams if is_pseudo else camera, is_pseudo)
        keys = ["mse", "lpips"] + ([*_STAT_ORDER, "loss"] if not stopped else [])
        keys = [k for k in keys if k in stats]
        rec_stats = dict(zip(keys, torch.stack([stats[k].float() for k in keys]).tolist(), strict=True))
        if not stopped and is_pseudo:
            pseudo_steps.append(i)
        history.append(rec_stats)
        if progress is not None:
            progress("stage2", i, cfg.steps, rec_stats)
        if stopped:
            break
    return Stage2Result(delta=weight_delta(G, trainable, original, noise), history=tuple(history),
                        steps_run=len(history), stopped_early=stopped, pseudo_steps=tuple(pseudo_steps),
                        seconds=time.perf_counter() - t0, graphed_steps=graphs.replays if graphs is not None else 0)


def weight_delta(G: TriPlaneGenerator, trainable: dict[str, Tensor], original: dict[str, Tensor],
                 noise: dict[str, Tensor]) -> dict[str, Tensor]:
    """The result of a tuning as a delta: tuned - original parameters, and the stage-1 noise buffers'
    change against G's own buffers."""
    state = G.state_dict(keep_vars=True)
    delta = {k: (trainable[k].detach() - original[k].detach()) for k in trainable}
    delta.update({k: (v.detach() - state[k].detach()) for k, v in noise.items()})
    return delta


def _prepare(G: TriPlaneGenerator, image: Tensor, camera: Tensor, ws: Tensor, tensors: dict[str, Tensor],
             config: InversionConfig, perf: ResolvedPerf, losses: LossFunctions, mask: Tensor | None,
             regions: FaceRegions | None, warp_depth_fn: DepthFn | None = None,
             step_cls: type[_Step] | None = None) -> _Step:
    """The shared state of one image's tuning: cameras, loss on the input view, the frozen depths.
    ``step_cls``: a subclass of :class:`_Step` (a group's member, :mod:`.group_stage2`)."""
    cfg = config.stage2
    views = _Views.around(camera, cfg, config.use_pseudo)
    res = min(cfg.lpips_resolution, image.shape[-1])
    step = (step_cls or _Step)(G, image, camera, ws, tensors, cfg, perf, config.sampling, losses, views, mask,
                               regions, input_view_loss=None, res=res, warp_depth_fn=warp_depth_fn)
    step.freeze_depths()
    set_loss_memory_format(losses, perf.channels_last)
    # the input-view target never changes: its LPIPS features are computed once (perf switch)
    step.input_view_loss = compile_with_fallback(
        fixed_target_loss(losses.perceptual, area_resize(image, res), cache=perf.cache_target_features), perf.compile,
        "stage-2 LPIPS")
    return step


def _one_step(step: _Step, opt: torch.optim.Optimizer, graphs: StepGraphs | None, cams: Tensor,
              is_pseudo: bool) -> tuple[dict[str, Tensor], bool]:
    """One optimiser step (replayed from a CUDA graph when there is one); its logged values and whether the
    early stop fired (then the weights are those from before this step, as in the eager loop)."""
    stats: dict[str, Tensor] | None = None
    stopped = False
    if graphs is not None:
        stats = graphs.step(is_pseudo, lambda: step.forward_backward(cams, is_pseudo, check_stop=False)[0])
        if stats is not None and float(stats["lpips"]) <= step.cfg.lpips_threshold:
            graphs.undo()  # the early stop keeps the weights before this step, as the eager loop does
            stopped = True
    if stats is None:  # eager (CPU, or while warming up for / falling back from the graphs)
        with graphs.eager() if graphs is not None else contextlib.nullcontext():
            opt.zero_grad(set_to_none=True)
            stats, stopped = step.forward_backward(cams, is_pseudo, check_stop=True)
            if not stopped:
                opt.step()
    return stats, stopped
