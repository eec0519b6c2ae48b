"""Training ground truth for the embedded generator: SynthHeads renders cached in one safetensors file.

Rendering is sphere tracing on CPU, one thread per process, so the cache is built by ``workers``
spawned processes over contiguous identity chunks and stitched in identity order: the cache is the
same whatever the worker count.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.synthheads.train_config import TrainConfig

log = logging.getLogger(__name__)

RenderFn = Callable[[int, Tensor, int], tuple[Tensor, Tensor, Tensor]]
"""(identity seed, labels [V, 25], resolution) -> (rgb [V,3,R,R] in [0,1], z-depth [V,1,R,R], mask [V,1,R,R])."""


@dataclass(frozen=True)
class TrainingCache:
    """Pre-rendered ground truth: images in [-1, 1], z-depth and head masks at neural resolution."""

    images: Tensor  # [I, V, 3, R, R] float16
    depth: Tensor  # [I, V, 1, r, r] float16 z-depth
    mask: Tensor  # [I, V, 1, r, r] bool, head (not background)
    labels: Tensor  # [I, V, 25] float32


def sample_training_labels(cfg: TrainConfig, identity: int) -> Tensor:
    """Deterministic per-identity views: stratified yaws so both sides are always seen."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + identity)
    strata = (torch.arange(cfg.views) + torch.rand(cfg.views, generator=g)) / cfg.views
    yaw = (2 * strata - 1) * cfg.yaw_range
    pitch = (2 * torch.rand(cfg.views, generator=g) - 1) * cfg.pitch_range
    return cameras.camera_label(yaw, pitch)


def render_synthheads(identity: int, labels: Tensor, resolution: int) -> tuple[Tensor, Tensor, Tensor]:
    """Training ground truth from the SynthHeads world: black background (the volume's empty colour)."""
    from sym3dinv.synthheads.head import Head
    from sym3dinv.synthheads.params import sample_head_params
    from sym3dinv.synthheads.tracer import render_head

    r = render_head(Head(sample_head_params(identity)), labels, resolution, background=(0.0, 0.0, 0.0))
    return r.rgb, r.z_depth, r.mask


def _render_chunk(cfg: TrainConfig, render: RenderFn, ids: range) -> tuple[Tensor, ...]:
    """Render identities ``ids``: (images, depth, mask, labels) stacked over identities."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    r = cfg.neural_rendering_resolution
    imgs, depths, masks, labels = [], [], [], []
    t0 = time.perf_counter()
    for n, i in enumerate(ids):
        lab = sample_training_labels(cfg, i)
        rgb, z, m = render(i, lab, cfg.resolution)
        imgs.append((rgb * 2 - 1).half())
        zr = F.interpolate(z, size=(r, r), mode="area")
        mr = F.interpolate(m.float(), size=(r, r), mode="area") > 0.99
        depths.append(torch.where(mr, zr, torch.zeros_like(zr)).half())
        masks.append(mr)
        labels.append(lab)
        if (n + 1) % 32 == 0:
            log.info("identities %d..%d: %d rendered (%.0f s)", ids.start, ids.stop - 1, n + 1,
                     time.perf_counter() - t0)
    return torch.stack(imgs), torch.stack(depths), torch.stack(masks), torch.stack(labels)


def _chunks(n: int, parts: int) -> list[range]:
    step = -(-n // parts)
    return [range(a, min(n, a + step)) for a in range(0, n, step)]


def cache_path(cfg: TrainConfig, out: Path) -> Path:
    """Where ``build_cache`` keeps the ground truth of ``cfg`` under a run directory."""
    return out / (f"cache-{cfg.identities}x{cfg.views}-{cfg.resolution}-{cfg.neural_rendering_resolution}"
                  f"-s{cfg.seed}.safetensors")


def build_cache(cfg: TrainConfig, render: RenderFn, path: Path | None = None, workers: int = 1) -> TrainingCache:
    """Render (or load) the training ground truth; cached as one safetensors file."""
    from safetensors.torch import load_file, save_file

    if path is not None and path.is_file():
        d = load_file(str(path))
        return TrainingCache(d["images"], d["depth"], d["mask"].bool(), d["labels"])
    t0 = time.perf_counter()
    chunks = _chunks(cfg.identities, max(1, workers))
    if len(chunks) == 1:
        parts = [_render_chunk(cfg, render, chunks[0])]
    else:
        with mp.get_context("spawn").Pool(len(chunks)) as pool:
            parts = pool.starmap(_render_chunk, [(cfg, render, c) for c in chunks])
    images, depth, mask, labels = (torch.cat(t) for t in zip(*parts, strict=True))
    log.info("rendered %d identities x %d views in %.0f s", cfg.identities, cfg.views, time.perf_counter() - t0)
    cache = TrainingCache(images, depth, mask, labels)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        save_file({"images": images.contiguous(), "depth": depth.contiguous(),
                   "mask": mask.to(torch.uint8).contiguous(), "labels": labels.contiguous()}, str(tmp))
        tmp.replace(path)
    return cache
