"""Rendering a generator with substituted weights (functional formulation) and weight deltas.

Inversion never mutates nor deep-copies the caller's generator: trainable copies of parameters (and the
per-image noise buffers) are passed to ``torch.func.functional_call``; the tuned generator is then just
``original + delta``. Camera helpers for the views around an input pose also live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from torch.func import functional_call

from sym3dinv.cameras import PIVOT, camera_label, decode_label, yaw_pitch_roll
from sym3dinv.config.invert import Sampling
from sym3dinv.generator import SynthesisOutput, TriPlaneGenerator

WeightDelta = Mapping[str, Tensor]  # state-dict name -> (tuned - original), any float dtype (fp16 ok)


class _Synthesis(nn.Module):
    """Wraps ``G.synthesis`` as a ``forward`` so ``functional_call`` can substitute G's tensors."""

    def __init__(self, G: TriPlaneGenerator) -> None:
        super().__init__()
        self.G = G

    def forward(self, ws: Tensor, c: Tensor, sampling: Sampling, resolution: int | None,
                fused_modconv: bool | None = None, precision: str = "fp32",
                planes_batch: int | None = None) -> SynthesisOutput:
        return _synthesis(self.G, ws, c, sampling, resolution, fused_modconv, precision, planes_batch)


def _synthesis(G: TriPlaneGenerator, ws: Tensor, c: Tensor, sampling: Sampling, resolution: int | None,
               fused_modconv: bool | None, precision: str, planes_batch: int | None) -> SynthesisOutput:
    """G.synthesis, or (``planes_batch`` = p) tri-planes of the first p latents only, tiled over the batch."""
    if planes_batch is None or planes_batch == ws.shape[0]:
        return G.synthesis(ws, c, neural_rendering_resolution=resolution, noise_mode="const", sampling=sampling,
                           fused_modconv=fused_modconv, precision=precision)  # type: ignore[arg-type]
    if ws.shape[0] % planes_batch:
        raise ValueError(f"batch {ws.shape[0]} is not a multiple of planes_batch={planes_batch}")
    planes = G.planes(ws[:planes_batch], noise_mode="const", fused_modconv=fused_modconv)
    planes = planes.repeat(ws.shape[0] // planes_batch, 1, 1, 1, 1)  # same order as torch.cat of copies
    return G.render(planes, ws, c, neural_rendering_resolution=resolution, sampling=sampling,
                    precision=precision, fused_modconv=fused_modconv)  # type: ignore[arg-type]


def synthesize(
    G: TriPlaneGenerator,
    ws: Float[Tensor, "n k w"],
    c: Float[Tensor, "n 25"],
    *,
    tensors: Mapping[str, Tensor] | None = None,
    sampling: Sampling = "deterministic",
    neural_rendering_resolution: int | None = None,
    fused_modconv: bool | None = None,
    precision: str = "fp32",
    planes_batch: int | None = None,
) -> SynthesisOutput:
    """``G.synthesis(ws, c)`` with some of G's parameters/buffers replaced by ``tensors`` (state-dict names).

    ``noise_const`` buffers may be given as ``[N, 1, r, r]`` (one noise image per batch item).
    ``fused_modconv`` / ``precision`` are the generator's speed arguments (see :mod:`sym3dinv.perf`).
    ``planes_batch`` = p: the batch is copies of its first p latents (one latent seen from several
    cameras), so the tri-planes - the backbone, a third of a render - are computed for those p only and
    tiled; per-item noise buffers are then given for the p latents. Same values and gradients.
    """
    if not tensors:
        return _synthesis(G, ws, c, sampling, neural_rendering_resolution, fused_modconv, precision, planes_batch)
    wrapped = {f"G.{k}": v for k, v in tensors.items()}
    return functional_call(_Synthesis(G), wrapped,
                           (ws, c, sampling, neural_rendering_resolution, fused_modconv, precision, planes_batch),
                           strict=False)


class _Method(nn.Module):
    """Wraps one of G's methods as a ``forward`` so ``functional_call`` can substitute G's tensors."""

    def __init__(self, G: TriPlaneGenerator, method: str) -> None:
        super().__init__()
        self.G, self.method = G, method

    def forward(self, *args: object, **kwargs: object) -> object:
        return getattr(self.G, self.method)(*args, **kwargs)


def _call(G: TriPlaneGenerator, method: str, tensors: Mapping[str, Tensor] | None, *args: object,
          **kwargs: object) -> object:
    if not tensors:
        return getattr(G, method)(*args, **kwargs)
    return functional_call(_Method(G, method), {f"G.{k}": v for k, v in tensors.items()}, args, kwargs, strict=False)


def synthesize_planes(G: TriPlaneGenerator, ws: Float[Tensor, "n k w"], *, tensors: Mapping[str, Tensor] | None = None,
                      fused_modconv: bool | None = None) -> Float[Tensor, "n 3 c p p"]:
    """The tri-planes of :func:`synthesize` alone (with substituted tensors), to render in several passes."""
    return _call(G, "planes", tensors, ws, noise_mode="const", fused_modconv=fused_modconv)  # type: ignore[return-value]


def render_from_planes(G: TriPlaneGenerator, planes: Float[Tensor, "n 3 c p p"], ws: Float[Tensor, "n k w"],
                       c: Float[Tensor, "n 25"], *, tensors: Mapping[str, Tensor] | None = None,
                       sampling: Sampling = "deterministic", fused_modconv: bool | None = None,
                       precision: str = "fp32") -> SynthesisOutput:
    """The rest of :func:`synthesize` (volume rendering + super-resolution) from given tri-planes."""
    return _call(G, "render", tensors, planes, ws, c, sampling=sampling, precision=precision,  # type: ignore[return-value]
                 fused_modconv=fused_modconv)


def tuned_tensors(G: TriPlaneGenerator, delta: WeightDelta) -> dict[str, Tensor]:
    """original + delta for the entries of ``delta`` (in G's dtype/device), ready for :func:`synthesize`."""
    state = G.state_dict(keep_vars=True)
    unknown = set(delta) - set(state)
    if unknown:
        raise KeyError(f"weight delta names not in the generator: {sorted(unknown)[:5]}")
    return {k: state[k].detach() + d.to(state[k].device, state[k].dtype) for k, d in delta.items()}


@torch.no_grad()
def apply_delta_(G: TriPlaneGenerator, delta: WeightDelta) -> TriPlaneGenerator:
    """Add ``delta`` to G's weights in place (for callers that want a plain tuned module); returns G."""
    state = G.state_dict(keep_vars=True)
    for k, d in delta.items():
        state[k].add_(d.to(state[k].device, state[k].dtype))
    return G


@dataclass(frozen=True)
class RenderedViews:
    """Renders of one latent at several cameras."""

    image: Float[Tensor, "v 3 H W"]  # super-resolved, [-1, 1] nominal
    image_raw: Float[Tensor, "v 3 r r"]
    depth: Float[Tensor, "v 1 r r"]  # expected ray distance (EG3D's image_depth)
    depth_z: Float[Tensor, "v 1 r r"]  # true z-depth along each camera's optical axis


def render_views(
    G: TriPlaneGenerator,
    ws: Float[Tensor, "1 k w"],
    cameras: Float[Tensor, "v 25"],
    *,
    delta: WeightDelta | None = None,
    sampling: Sampling = "deterministic",
    chunk: int = 4,
    inference_mode: bool = True,
    fused_modconv: bool | None = None,
    share_planes: bool = True,
) -> RenderedViews:
    """Render one inverted latent (with its generator delta, if any) at every camera, ``chunk`` at a time.

    Pure render: runs under ``torch.inference_mode`` (``inference_mode=False``: ``no_grad``); the returned
    tensors are ordinary ones (cloned out of inference mode), so callers may modify them in place.
    """
    with torch.inference_mode() if inference_mode else torch.no_grad():
        views = _render_views(G, ws, cameras, delta, sampling, chunk, fused_modconv, share_planes)
    if inference_mode:
        views = RenderedViews(*(t.clone() for t in (views.image, views.image_raw, views.depth, views.depth_z)))
    return views


def _render_views(G: TriPlaneGenerator, ws: Tensor, cameras: Tensor, delta: WeightDelta | None, sampling: Sampling,
                  chunk: int, fused_modconv: bool | None, share_planes: bool) -> RenderedViews:
    from sym3dinv.cameras import ray_distance_to_z

    if ws.ndim == 2:
        ws = ws[None]
    if ws.shape[0] != 1:
        raise ValueError(f"render_views takes one latent [1, K, W], got {tuple(ws.shape)}")
    tensors = tuned_tensors(G, delta) if delta else None
    outs = []
    for i in range(0, cameras.shape[0], chunk):
        c = cameras[i:i + chunk].to(ws.device, ws.dtype)
        o = synthesize(G, ws.expand(c.shape[0], -1, -1), c, tensors=tensors, sampling=sampling,
                       fused_modconv=fused_modconv, planes_batch=1 if share_planes else None)
        outs.append((o.image, o.image_raw, o.image_depth, ray_distance_to_z(o.image_depth, c)))
    img, raw, d, dz = (torch.cat(x) for x in zip(*outs, strict=True))
    return RenderedViews(image=img, image_raw=raw, depth=d, depth_z=dz)


def views_around(
    c: Float[Tensor, "1 25"], offsets: list[tuple[float, float]]
) -> Float[Tensor, "v 25"]:
    """Look-at cameras at (yaw + dy, pitch + dp) of the input pose, same radius, roll and intrinsics."""
    m, K = decode_label(c)
    ypr = yaw_pitch_roll(c)[0]
    radius = float(m[0, :3, 3].norm())
    yaw = torch.tensor([float(ypr[0]) + dy for dy, _ in offsets], dtype=c.dtype)
    pitch = torch.tensor([float(ypr[1]) + dp for _, dp in offsets], dtype=c.dtype)
    out = camera_label(yaw, pitch, radius=radius, focal=float(K[0, 0, 0]), lookat=PIVOT, roll=float(ypr[2]))
    return out.to(c.device)


def cross_offsets(dyaw: float, dpitch: float) -> list[tuple[float, float]]:
    """The 4 views (yaw +-dyaw) and (pitch +-dpitch) around an input pose."""
    return [(dyaw, 0.0), (-dyaw, 0.0), (0.0, dpitch), (0.0, -dpitch)]


def area_resize(x: Float[Tensor, "n c h w"], size: int) -> Float[Tensor, "n c s s"]:
    """Downsample larger images by area averaging (projector: LPIPS at 256); upsample bilinearly."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] > size:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
