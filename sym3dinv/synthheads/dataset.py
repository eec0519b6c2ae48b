"""SynthHeads data: per-identity rendering for training streams, and on-disk datasets.

Streaming (no disk): ``render_identity(seed, labels, resolution)`` matches ``train.RenderFn``;
``render_views(seed, labels, resolution)`` returns the full :class:`HeadRender`. Heads are cheap to build
(tens of ms), so trainers can draw fresh identities on the fly.

On disk (``make_dataset``): ``images/`` (uint8 PNG), ``masks/`` (uint8 PNG of :class:`Part` ids),
``depth/`` (float32 .npy: ``*_z.npy`` z-depth, ``*_dist.npy`` ray distance), EG3D-style
``dataset.json`` ({"labels": [[image path, 25 floats], ...]}) and ``index.parquet`` (one row per image).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Bool, Float
from PIL import Image
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.synthheads.head import LANDMARKS, Head
from sym3dinv.synthheads.params import HeadParams, sample_head_params
from sym3dinv.synthheads.tracer import HeadRender, render_head

log = logging.getLogger(__name__)

DEFAULT_YAW_RANGE = math.radians(70)  # covers the eval split's +-60 deg inputs with margin
DEFAULT_PITCH_RANGE = math.radians(20)


def render_views(seed: int, labels: Float[Tensor, "v 25"], resolution: int, *, asymmetry_rate: float = 0.5,
                 background: tuple[float, float, float] = (0.5, 0.5, 0.5), antialias: int = 1) -> HeadRender:
    """Everything about identity ``seed`` seen from V cameras."""
    return render_head(Head(sample_head_params(seed, asymmetry_rate)), labels, resolution, background=background,
                       antialias=antialias)


def render_identity(seed: int, labels: Float[Tensor, "v 25"], resolution: int) -> tuple[
        Float[Tensor, "v 3 r r"], Float[Tensor, "v 1 r r"], Bool[Tensor, "v 1 r r"]]:
    """(rgb in [0, 1], z-depth, head mask): the ``RenderFn`` the generator trainer consumes."""
    r = render_views(seed, labels, resolution)
    return r.rgb, r.z_depth, r.mask


def sample_views(seed: int, views: int, yaw_range: float = DEFAULT_YAW_RANGE,
                 pitch_range: float = DEFAULT_PITCH_RANGE) -> Float[Tensor, "v 25"]:
    """Per-identity cameras: stratified yaws (both sides always seen), uniform pitches; from ``seed``."""
    g = torch.Generator().manual_seed(seed * 7919 + 17)
    strata = (torch.arange(views) + torch.rand(views, generator=g)) / views
    yaw = (2 * strata - 1) * yaw_range
    pitch = (2 * torch.rand(views, generator=g) - 1) * pitch_range
    return cameras.camera_label(yaw, pitch)


@dataclass(frozen=True)
class DatasetSummary:
    root: Path
    images: int
    identities: int
    resolution: int
    index: Path
    labels_json: Path


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=False, compress_level=1)


def to_uint8(rgb: Float[Tensor, "3 r r"]) -> np.ndarray:
    """[0, 1] float CHW -> uint8 HWC (round to nearest)."""
    return (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def write_views(root: Path, params: HeadParams, render: HeadRender, view_ids: list[str],
                extra: list[dict[str, object]] | None = None) -> list[dict[str, object]]:
    """Write one identity's renders; returns the index rows (paths relative to ``root``)."""
    rows = []
    ypr = cameras.yaw_pitch_roll(render.labels)
    attrs = params.attributes()
    for v, vid in enumerate(view_ids):
        stem = f"{params.seed:07d}_{vid}"
        paths = {"image_path": f"images/{stem}.png", "mask_path": f"masks/{stem}.png",
                 "depth_z_path": f"depth/{stem}_z.npy", "depth_dist_path": f"depth/{stem}_dist.npy"}
        _save_png(root / paths["image_path"], to_uint8(render.rgb[v]))
        _save_png(root / paths["mask_path"], render.parts[v].numpy().astype(np.uint8))
        (root / "depth").mkdir(parents=True, exist_ok=True)
        np.save(root / paths["depth_z_path"], render.z_depth[v, 0].numpy().astype(np.float32))
        np.save(root / paths["depth_dist_path"], render.distance[v, 0].numpy().astype(np.float32))
        row: dict[str, object] = {
            "identity": params.seed, "view": vid, "yaw": float(ypr[v, 0]), "pitch": float(ypr[v, 1]),
            "label": render.labels[v].tolist(), "resolution": render.rgb.shape[-1], **paths,
            "landmarks": render.landmarks[v].reshape(-1).tolist(),
            "landmarks_visible": render.landmarks_visible[v].tolist(),
            **{f"attr_{k}": v_ for k, v_ in attrs.items()},
        }
        if extra is not None:
            row.update(extra[v])
        rows.append(row)
    return rows


def write_index(root: Path, rows: list[dict[str, object]]) -> tuple[Path, Path]:
    """``index.parquet`` (one row per image) and EG3D's ``dataset.json``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({"landmark_names": json.dumps(list(LANDMARKS)),
                                           "landmark_layout": "x0,y0,x1,y1,... in pixels (x right, y down)"})
    index = root / "index.parquet"
    pq.write_table(table, index)
    labels = root / "dataset.json"
    labels.write_text(json.dumps({"labels": [[r["image_path"], r["label"]] for r in rows]}))
    return index, labels


def _write_identities(root: Path, seeds: list[int], views: int, resolution: int, asymmetry_rate: float,
                      yaw_range: float, pitch_range: float,
                      background: tuple[float, float, float], antialias: int) -> list[dict[str, object]]:
    torch.set_flush_denormal(True)
    rows: list[dict[str, object]] = []
    for seed in seeds:
        params = sample_head_params(seed, asymmetry_rate)
        labels = sample_views(seed, views, yaw_range, pitch_range)
        render = render_head(Head(params), labels, resolution, background=background, antialias=antialias)
        rows += write_views(root, params, render, [f"{v:02d}" for v in range(views)])
    return rows


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)  # worker processes are ours: small ops run best single-threaded


def make_dataset(root: Path, identities: int, views: int, resolution: int, *, first_seed: int = 0,
                 asymmetry_rate: float = 0.5, yaw_range: float = DEFAULT_YAW_RANGE,
                 pitch_range: float = DEFAULT_PITCH_RANGE,
                 background: tuple[float, float, float] = (0.5, 0.5, 0.5), workers: int = 1,
                 antialias: int = 1) -> DatasetSummary:
    """Render identities ``first_seed .. first_seed + identities - 1`` with ``views`` random cameras each.

    ``workers > 1`` renders in that many single-threaded processes (outputs are identical either way).
    """
    if identities < 1 or views < 1 or resolution < 8:
        raise ValueError("identities and views must be >= 1 and resolution >= 8")
    root.mkdir(parents=True, exist_ok=True)
    seeds = list(range(first_seed, first_seed + identities))
    args = (views, resolution, asymmetry_rate, yaw_range, pitch_range, background, antialias)
    if workers <= 1:
        rows = _write_identities(root, seeds, *args)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = [seeds[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(1,)) as ex:
            parts = list(ex.map(_write_identities, [root] * workers, chunks, *[[a] * workers for a in args]))
        rows = sorted((r for p in parts for r in p), key=lambda r: (r["identity"], r["view"]))
    log.info("rendered %d identities x %d views at %d px into %s", identities, views, resolution, root)
    index, labels_json = write_index(root, rows)
    return DatasetSummary(root, len(rows), identities, resolution, index, labels_json)


def load_index(root: Path) -> list[dict[str, object]]:
    """Rows of ``index.parquet`` as dicts (small datasets; use pyarrow/duckdb directly for big ones)."""
    import pyarrow.parquet as pq

    return pq.read_table(root / "index.parquet").to_pylist()
