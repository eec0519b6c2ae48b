"""``invert_group``: several photos of one person -> one 3D head (one pivot, one tuned generator).

Single-image inversion, SPI included, inverts each photo alone, so two photos of a person give two heads
that disagree about the shape. Here the photos share one W+ pivot (with small per-photo offsets on the
last, texture-only ws for expression and lighting, under a prior) and one tuned generator:

- stage 1 sums every photo's input and mirror terms (N photos give 2N constraints; :mod:`.latents`);
- stage 2 fits every photo at its camera, with each photo's own pseudo labels plus the other photos warped
  into its nearby views, conflicting pixels filtered (:mod:`.group_stage2`).

The modes switch as for one image (``w+``: no mirror, no stage 2; ``pti``: input views only; ``spi``).
A group of one photo is exactly :func:`sym3dinv.invert.invert` of that photo.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from sym3dinv.config.invert import InversionConfig
from sym3dinv.encoder.model import TrainedEncoder, encode
from sym3dinv.errors import ConfigError
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.invert.api import ViewMetrics, _prep_image, _prep_mask, check_encoder, input_view_metrics
from sym3dinv.invert.group_stage2 import run_group_stage2
from sym3dinv.invert.losses import LossFunctions, default_losses
from sym3dinv.invert.pseudo import FaceRegions
from sym3dinv.invert.render import synthesize, tuned_tensors
from sym3dinv.invert.stage1 import Progress, run_stage1
from sym3dinv.invert.stage2 import DepthFn
from sym3dinv.perf import device_settings, no_grad_render, resolve


@dataclass(frozen=True)
class GroupInversionResult:
    """One head for a group of photos; the tuned generator is ``G + delta``. Render the head with ``ws``
    (the shared pivot); each photo's reconstruction uses its ``member_ws`` at its ``cameras`` row."""

    ws: Float[Tensor, "1 k w"]  # the shared pivot
    member_ws: Float[Tensor, "n k w"]  # per photo: the pivot plus its offset
    delta: dict[str, Tensor]  # name -> tuned - original (parameters and the group's noise buffers), fp32
    history: Mapping[str, tuple[dict[str, float], ...]]  # "stage1" / "stage2" -> per-step losses
    metrics: ViewMetrics  # the mean over the photos of their input-view metrics
    member_metrics: tuple[ViewMetrics, ...]
    timings: Mapping[str, float]  # seconds: "stage1", "stage2", "total" (and "encoder" when used)
    stage2_steps: int
    stopped_early: bool
    config: InversionConfig
    cameras: Float[Tensor, "n 25"]  # the cameras inverted at (the inputs', or stage 1's corrections)

    @property
    def camera(self) -> Float[Tensor, "1 25"]:
        """The first photo's camera: the reference view of the group's head."""
        return self.cameras[:1]

    def delta_as(self, dtype: torch.dtype = torch.float16) -> dict[str, Tensor]:
        """The delta in a storage dtype (as :meth:`InversionResult.delta_as`)."""
        return {k: v.to(dtype) for k, v in self.delta.items()}

    def tensors(self, G: TriPlaneGenerator) -> dict[str, Tensor]:
        """G's tuned tensors for :func:`sym3dinv.invert.render.synthesize` / ``functional_call``."""
        return tuned_tensors(G, self.delta)


def mean_metrics(members: Sequence[ViewMetrics]) -> ViewMetrics:
    """The mean of each metric over the photos (None where any photo lacks it)."""
    def mean(name: str) -> float | None:
        vals = [getattr(m, name) for m in members]
        return None if any(v is None for v in vals) else sum(vals) / len(vals)

    return ViewMetrics(**{name: mean(name) for name in ViewMetrics.__dataclass_fields__})  # type: ignore[arg-type]


def invert_group(
    G: TriPlaneGenerator,
    images: Float[Tensor, "n 3 h w"],
    cameras: Float[Tensor, "n 25"],
    *,
    masks: Bool[Tensor, "n h w"] | Float[Tensor, "n h w"] | None = None,
    regions: Sequence[FaceRegions | None] | None = None,
    config: InversionConfig | None = None,
    progress: Progress | None = None,
    losses: LossFunctions | None = None,
    encoder: TrainedEncoder | None = None,
    warp_depth_fns: Sequence[DepthFn | None] | None = None,
) -> GroupInversionResult:
    """Invert ``n`` photos of one person ([-1, 1] RGB, each seen from its 25-d camera) into one head.

    ``masks`` / ``regions`` / ``warp_depth_fns``: per photo, as :func:`sym3dinv.invert.invert_batch` takes
    them. ``config.group`` holds the group's own settings (offsets, cross-photo warps); everything else
    is the single-image config. With ``stage1.init="encoder"`` the shared pivot starts at the mean of the
    encoder's answers for the photos. Returns one result with every photo's input-view metrics.
    """
    config = config or InversionConfig()
    check_encoder(config, encoder, G)
    dev = next(G.parameters()).device
    perf = resolve(config.perf, dev)
    x = _prep_image(images, G.img_resolution).to(dev)
    n = x.shape[0]
    if cameras.shape != (n, 25):
        raise ConfigError(f"cameras must be [{n}, 25], got {tuple(cameras.shape)}")
    for name, per in (("regions", regions), ("warp_depth_fns", warp_depth_fns)):
        if per is not None and len(per) != n:
            raise ConfigError(f"{name} has {len(per)} entries for {n} photos")
    with device_settings(perf):
        return _invert_group(G, x, cameras.to(dev, torch.float32), _prep_mask(masks, n, G.img_resolution, dev),
                             regions, config, progress, losses or default_losses(config.lpips_net, dev),
                             encoder if config.stage1.init == "encoder" else None, warp_depth_fns)


def _invert_group(G: TriPlaneGenerator, x: Tensor, cams: Tensor, m: Tensor | None,
                  regions: Sequence[FaceRegions | None] | None, config: InversionConfig, progress: Progress | None,
                  losses: LossFunctions, encoder: TrainedEncoder | None,
                  warp_depth_fns: Sequence[DepthFn | None] | None) -> GroupInversionResult:
    perf = resolve(config.perf, x.device)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)  # what a lone photo would draw
    init, t_enc = None, 0.0
    if encoder is not None:
        t_e = time.perf_counter()
        with torch.no_grad():
            init, _ = encode(encoder.net.to(x.device), G, x, cams)
        t_enc = time.perf_counter() - t_e
    s1 = run_stage1(G, x, cams, config, losses, gen, progress, init_ws=init, shared=True)
    c1 = s1.cameras if s1.cameras is not None else cams
    t0 = time.perf_counter()
    noise = {k: v[0] for k, v in s1.noise.items()}  # the group's one set of noise buffers
    state = G.state_dict(keep_vars=True)
    delta = {k: (v - state[k].detach()) for k, v in noise.items()}
    history: dict[str, tuple[dict[str, float], ...]] = {"stage1": s1.history, "stage2": ()}
    steps, early = 0, False
    if config.run_stage2:
        s2 = run_group_stage2(G, x, c1, s1.ws, noise, config, losses, masks=m, regions=regions, progress=progress,
                              warp_depth_fns=warp_depth_fns)
        delta, steps, early, history["stage2"] = s2.delta, s2.steps_run, s2.stopped_early, s2.history
    members = []
    with no_grad_render(perf):
        tensors = tuned_tensors(G, delta)
        for j in range(x.shape[0]):
            render = synthesize(G, s1.ws[j:j + 1], c1[j:j + 1], tensors=tensors, sampling=config.sampling,
                                fused_modconv=perf.fused_modconv).image
            members.append(input_view_metrics(render, x[j:j + 1], losses))
    t2 = time.perf_counter() - t0
    pivot = s1.pivot if s1.pivot is not None else s1.ws[:1]
    s1_seconds = s1.seconds + t_enc
    return GroupInversionResult(
        ws=pivot[:1], member_ws=s1.ws, delta=delta, history=history, metrics=mean_metrics(members),
        member_metrics=tuple(members),
        timings={"stage1": s1_seconds, "stage2": t2, "total": s1_seconds + t2,
                 **({"encoder": t_enc} if encoder is not None else {})},
        stage2_steps=steps, stopped_early=early, config=config, cameras=c1.cpu())
