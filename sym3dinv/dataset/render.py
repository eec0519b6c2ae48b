"""One identity of a finished run store -> views (RGB, depth, alpha) with its tuned generator.

The tuned generator is ``G + delta`` (the store's ``delta.safetensors``) applied through
``torch.func.functional_call`` (``sym3dinv.invert.render``'s formulation), so the caller's G is never
modified and one loaded G serves every identity. The tri-planes are computed once per latent and reused
for every camera. Depth and alpha are the RGB pass's own volume-rendered depth and opacity (at the
neural rendering resolution, no extra cost), or, for another depth resolution, come from a second,
geometry-only pass (rays through that grid's pixel centres) in ray chunks, so a 512 px depth map never
needs the whole ray batch in memory.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from sym3dinv.errors import StoreError
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.generator.volume import render_planes, sample_rays
from sym3dinv.invert.render import tuned_tensors

if TYPE_CHECKING:
    from sym3dinv.store import IndexRow, RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """What the store holds for one done item: pivot latent, generator delta and provenance."""

    id: str
    item_dir: str
    ws: np.ndarray  # [num_ws, w_dim] float32
    delta: Mapping[str, np.ndarray] = field(default_factory=dict)  # state-dict name -> tuned - original
    source_uri: str = ""
    generator: str | None = None  # the generator source recorded by the inversion (metrics.json)
    metrics: Mapping[str, float] = field(default_factory=dict)
    camera_label: tuple[float, ...] | None = None


def load_identity(store: RunStore, row: IndexRow) -> Identity:
    """Read a done index row's latents, delta and recorded config; a :class:`StoreError` when unreadable."""
    from safetensors.numpy import load

    if not row.item_dir:
        raise StoreError(f"item {row.id}: done row without item_dir")
    item_dir, outputs = row.item_dir, dict(row.outputs)

    def read(rel: str) -> bytes:
        try:
            return store.cat(rel)
        except (FileNotFoundError, OSError, StoreError) as exc:
            raise StoreError(f"item {row.id}: cannot read {rel}: {exc}") from exc

    lat = load(read(outputs.get("latents", posixpath.join(item_dir, "latents.safetensors"))))
    if "ws" not in lat:
        raise StoreError(f"item {row.id}: latents.safetensors has no 'ws' (keys {sorted(lat)})")
    ws = np.asarray(lat["ws"], np.float32)
    ws = ws[0] if ws.ndim == 3 else ws
    delta = {k: np.asarray(v, np.float32) for k, v in load(read(outputs["delta"])).items()} if "delta" in outputs else {}
    generator = None
    if "metrics" in outputs:
        try:
            generator = json.loads(read(outputs["metrics"])).get("config", {}).get("generator")
        except ValueError:
            log.warning("item %s: metrics.json unreadable; generator must come from the dataset config", row.id)
    metrics = {str(k): float(v) for k, v in row.metrics.items() if v is not None}
    return Identity(id=row.id, item_dir=item_dir, ws=ws, delta=delta, source_uri=row.source_uri or "",
                    generator=generator, metrics=metrics, camera_label=row.camera_label)


class _Call(nn.Module):
    """``forward(fn, *args) = fn(G, *args)``: lets ``functional_call`` substitute G's tensors for any G method."""

    def __init__(self, G: TriPlaneGenerator) -> None:
        super().__init__()
        self.G = G

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self.G, *args)


def call_tuned(G: TriPlaneGenerator, tensors: Mapping[str, Tensor] | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(G, *args)`` with G's parameters/buffers named in ``tensors`` replaced (G itself untouched)."""
    if not tensors:
        return fn(G, *args)
    return functional_call(_Call(G), {f"G.{k}": v for k, v in tensors.items()}, (fn, *args), strict=False)


def delta_tensors(G: TriPlaneGenerator, delta: Mapping[str, np.ndarray] | None) -> dict[str, Tensor] | None:
    """``original + delta`` tensors for :func:`call_tuned` (None when there is no delta)."""
    if not delta:
        return None
    return tuned_tensors(G, {k: torch.from_numpy(np.asarray(v)) for k, v in delta.items()})


def _fused(G: TriPlaneGenerator) -> bool | None:
    """``fused_modconv=False`` on CPU (same function, faster: docs/generator.md); the checkpoint's choice on GPU."""
    return False if next(G.parameters()).device.type == "cpu" else None


def as_ws(G: TriPlaneGenerator, ws: np.ndarray | Tensor) -> Tensor:
    """``[num_ws, w_dim]`` or ``[1, num_ws, w_dim]`` -> float32 ``[1, num_ws, w_dim]`` on G's device."""
    dev = next(G.parameters()).device
    w = torch.as_tensor(np.asarray(ws) if not isinstance(ws, Tensor) else ws, dtype=torch.float32, device=dev)
    return w[None] if w.ndim == 2 else w


def compute_planes(G: TriPlaneGenerator, ws: np.ndarray | Tensor, tensors: Mapping[str, Tensor] | None = None) -> Tensor:
    """Tri-planes ``[1, 3, C, P, P]`` of one latent with the tuned generator (reuse them for renders and meshes)."""
    w = as_ws(G, ws)
    with torch.inference_mode():
        return call_tuned(G, tensors, lambda G_: G_.planes(w, noise_mode="const", fused_modconv=_fused(G_)))


@dataclass(frozen=True)
class Views:
    """Renders of one latent at V cameras (numpy, ready to write)."""

    rgb: np.ndarray  # [V, H, W, 3] uint8
    depth: np.ndarray  # [V, h, w] float32 z-depth along each camera's optical axis (world units)
    ray_depth: np.ndarray  # [V, h, w] float32 expected distance along each unit ray (EG3D's image_depth)
    alpha: np.ndarray  # [V, h, w] float32 accumulated opacity in [0, 1] (the head mask)


def _resize(x: Tensor, size: int, mode: str) -> Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] > size and mode != "nearest":
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def geometry_pass(G: TriPlaneGenerator, planes: Tensor, labels: Tensor, resolution: int, *,
                  ray_chunk: int = 1 << 16) -> tuple[Tensor, Tensor]:
    """Deterministic volume rendering of depth (ray distance) and opacity at ``resolution`` px.

    Same rays (``sample_rays``) and renderer (``render_planes``) as ``G.render``, only without the
    features' super-resolution, in chunks of ``ray_chunk`` rays; planes ``[1, 3, C, P, P]`` of one latent.
    """
    rk = G.rendering_kwargs
    depths, alphas = [], []
    for c in labels:
        origins, dirs = sample_rays(c[:16].view(1, 4, 4), c[16:25].view(1, 3, 3), resolution)
        d_parts, a_parts = [], []
        for s in range(0, origins.shape[1], ray_chunk):
            out = render_planes(planes, G.decoder, origins[:, s:s + ray_chunk], dirs[:, s:s + ray_chunk],
                                ray_start=rk["ray_start"], ray_end=rk["ray_end"], depth_resolution=rk["depth_resolution"],
                                depth_resolution_importance=rk["depth_resolution_importance"], box_warp=rk["box_warp"],
                                sampling="deterministic")
            d_parts.append(out.depth[0, :, 0])
            a_parts.append(out.weight_sum[0, :, 0])
        depths.append(torch.cat(d_parts).view(resolution, resolution))
        alphas.append(torch.cat(a_parts).view(resolution, resolution))
    return torch.stack(depths)[:, None], torch.stack(alphas)[:, None]


def render_identity(
    G: TriPlaneGenerator,
    ws: np.ndarray | Tensor,
    labels: np.ndarray | Tensor,
    *,
    tensors: Mapping[str, Tensor] | None = None,
    resolution: int | None = None,
    depth_resolution: int | None = None,
    chunk: int = 4,
    planes: Tensor | None = None,
) -> Views:
    """Render one latent ``ws`` ``[num_ws, w_dim]`` with the tuned generator at every label ``[V, 25]``.

    RGB: ``G.render`` (deterministic sampling, constant noise) at the generator's resolution, resized
    (area down, bilinear up) to ``resolution``. Depth/alpha: the same pass's volume-rendered depth and
    opacity at the neural rendering resolution (the default, free), or :func:`geometry_pass` at another
    ``depth_resolution``. ``tensors`` = :func:`delta_tensors` (None renders the plain G); ``planes`` =
    :func:`compute_planes` of the same latent and tensors, if already computed.
    """
    from sym3dinv.cameras import ray_distance_to_z

    dev = next(G.parameters()).device
    w = as_ws(G, ws)
    cams = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels, dtype=torch.float32, device=dev)
    res = int(resolution or G.img_resolution)
    dres = int(depth_resolution or G.neural_rendering_resolution)
    separate = dres != G.neural_rendering_resolution

    def run(G_: TriPlaneGenerator) -> tuple[Tensor, Tensor, Tensor]:
        p = planes if planes is not None else G_.planes(w, noise_mode="const", fused_modconv=_fused(G_))
        rgbs, depths, alphas = [], [], []
        for i in range(0, cams.shape[0], chunk):
            c = cams[i:i + chunk]
            n = c.shape[0]
            o = G_.render(p.expand(n, -1, -1, -1, -1), w.expand(n, -1, -1), c, sampling="deterministic",
                          fused_modconv=_fused(G_))
            rgbs.append(_resize(o.image.float(), res, "area"))
            depths.append(o.image_depth)
            alphas.append(o.weight_sum)
        if separate:
            depth, alpha = geometry_pass(G_, p, cams, dres)
        else:
            depth, alpha = torch.cat(depths), torch.cat(alphas)
        return torch.cat(rgbs), depth, alpha

    with torch.inference_mode():
        rgb, ray_depth, alpha = call_tuned(G, tensors, run)
        z = ray_distance_to_z(ray_depth, cams)
    rgb_u8 = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return Views(rgb=rgb_u8, depth=z[:, 0].float().cpu().numpy(), ray_depth=ray_depth[:, 0].float().cpu().numpy(),
                 alpha=alpha[:, 0].clamp(0, 1).float().cpu().numpy())
