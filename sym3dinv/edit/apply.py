"""Render edits of a run store's items: pivot ``ws + strength * direction`` with each item's tuned generator
(``G + delta``), at the views the item was rendered at, into an edit folder of the store.

Layout (``<store>/edits/<name>/``)::

    items/<id>/<direction>/s<strength>_<view>.png
    edit.json          # written last: format, directions, strengths, views, one record per render

The HTML report (``sym3dinv report``) finds every ``edits/*/edit.json`` and shows before/after strips.
Strength 0 (the unedited pivot) is always rendered, so each strip has its reference.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sym3dinv.edit.directions import Edit, apply_edit, check_direction
from sym3dinv.errors import ConfigError
from sym3dinv.store.ids import validate_name
from sym3dinv.store.layout import (
    DEFAULT_VIEWS,
    EDIT_FORMAT,
    EDIT_MANIFEST,
    EDITS_DIR,
    render_views,
    view_name,
)

if TYPE_CHECKING:
    import torch

    from sym3dinv.generator import TriPlaneGenerator
    from sym3dinv.store import IndexRow, RunStore

log = logging.getLogger(__name__)


def strength_tag(s: float) -> str:
    return f"s{s:+.2f}"


@dataclass(frozen=True)
class EditSummary:
    folder: str
    """Store-relative edit folder."""
    items: int
    renders: int
    failed: tuple[tuple[str, str], ...] = ()
    """(item id, reason) of items that could not be edited."""


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def render_edit(G: TriPlaneGenerator, ws: np.ndarray, direction: np.ndarray, strengths: Sequence[float],
                views: Sequence[tuple[float, float]], *, delta: dict[str, Any] | None = None) -> dict[float, np.ndarray]:
    """uint8 renders ``[V, H, W, 3]`` of ``ws + s * direction`` for each strength s, at (yaw, pitch) views."""
    import torch

    from sym3dinv.cameras import camera_label
    from sym3dinv.invert.render import render_views

    dev = next(G.parameters()).device
    cams = torch.stack([camera_label(y, p) for y, p in views]).reshape(-1, 25).float().to(dev)
    tensors_delta = {k: torch.as_tensor(v) for k, v in (delta or {}).items()} or None
    out = {}
    for s in strengths:
        w = torch.from_numpy(apply_edit(ws, direction, s)).reshape(1, G.num_ws, G.w_dim).to(dev)
        r = render_views(G, w, cams, delta=tensors_delta)
        out[float(s)] = np.stack([_to_uint8(img) for img in r.image])
    return out


def _load_delta(store: RunStore, rel: str | None) -> dict[str, np.ndarray] | None:
    if not rel:
        return None
    from safetensors.numpy import load

    return {k: v.astype(np.float32) for k, v in load(store.cat(rel)).items()}


def _item_views(outputs: dict[str, str]) -> list[tuple[float, float]]:
    return [yp for yp, _, _ in render_views(outputs)] or list(DEFAULT_VIEWS)


def done_items(store: RunStore, run_id: str | None, ids: Sequence[str] | None) -> list[IndexRow]:
    """The done items to edit (of ``run_id``; ``ids`` may be id prefixes), sorted by source."""
    rows = store.done_rows(run_id=run_id)
    if ids:
        want = set(ids)
        rows = [r for r in rows if r.id in want or any(r.id.startswith(i) for i in want)]
    return sorted(rows, key=lambda r: str(r.source_uri))


def store_generator_source(store: RunStore, row: IndexRow) -> str:
    """The ``generator`` a done item was inverted with (from its metrics.json config), or ``synthheads``."""
    rel = row.outputs.get("metrics")
    if rel:
        try:
            cfg = json.loads(store.cat(rel)).get("config") or {}
            if cfg.get("generator"):
                return str(cfg["generator"])
        except (OSError, ValueError, AttributeError):
            pass
    return "synthheads"


def apply_to_store(
    store: RunStore,
    edits: Sequence[Edit],
    *,
    name: str = "edit",
    generator: str | None = None,
    G: TriPlaneGenerator | None = None,
    views: Sequence[tuple[float, float]] | None = None,
    run_id: str | None = None,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
    sources: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> EditSummary:
    """Render every edit at its strengths (plus 0) for the done items; write ``edits/<name>/``.

    ``sources``: edit name -> a description of where its direction came from (shown in the report).
    Items inverted by another generator (fingerprint) than ``G`` are refused
    (:class:`~sym3dinv.errors.GeneratorMismatchError`) unless ``force``.
    """
    from sym3dinv.generator import load_generator
    from sym3dinv.generator.fingerprint import generator_fingerprint
    from sym3dinv.store.fingerprints import check_rows

    validate_name(name)
    if not edits:
        raise ConfigError("no edits given")
    names = [validate_name(ed.name) for ed in edits]
    if len(set(names)) != len(names):
        raise ConfigError(f"edit names must be unique, got {names}")
    rows = done_items(store, run_id, ids)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise ConfigError(f"no done items to edit in {store.url}" + (f" (run {run_id})" if run_id else ""))
    source = generator or store_generator_source(store, rows[0])
    if G is None:
        G = load_generator(source)
    check_rows(rows, generator_fingerprint(G), source, what="edit apply", force=force)
    checked = [Edit(ed.name, check_direction(ed.direction, G.w_dim, G.num_ws, ed.name),
                    tuple(sorted({0.0, *(float(s) for s in ed.strengths)}))) for ed in edits]
    folder = posixpath.join(EDITS_DIR, name)
    records, failed, n_renders = [], [], 0
    for k, row in enumerate(rows):
        try:
            ws = store.load_latents(row.item_dir or "")["ws"].astype(np.float32).reshape(G.num_ws, G.w_dim)
            delta = _load_delta(store, row.outputs.get("delta"))
            vs = list(views) if views else _item_views(dict(row.outputs))
            renders = []
            for ed in checked:
                imgs = render_edit(G, ws, ed.direction, ed.strengths, vs, delta=delta)
                for s, stack in imgs.items():
                    for (yaw, pitch), img in zip(vs, stack, strict=True):
                        rel = posixpath.join("items", row.id, ed.name, f"{strength_tag(s)}_{view_name(yaw, pitch)}.png")
                        store.write(posixpath.join(folder, rel), _png(img))
                        renders.append({"direction": ed.name, "strength": s, "view": view_name(yaw, pitch), "path": rel})
            n_renders += len(renders)
            records.append({"id": row.id, "source_uri": row.source_uri, "renders": renders,
                            "views": [view_name(y, p) for y, p in vs]})
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            log.warning("edit of item %s failed: %s", row.id, exc)
            failed.append((row.id, f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(k + 1, len(rows))
    all_views = sorted({tuple(v) for r in rows for v in (views or _item_views(dict(r.outputs)))})
    manifest = {
        "format": EDIT_FORMAT, "name": name, "generator": source,
        "views": [{"name": view_name(y, p), "yaw": y, "pitch": p} for y, p in all_views],
        "directions": [{"name": ed.name, "strengths": list(ed.strengths), "source": (sources or {}).get(ed.name, "")}
                       for ed in checked],
        "items": records, "failed": [{"id": i, "reason": r} for i, r in failed],
    }
    store.atomic_write(posixpath.join(folder, EDIT_MANIFEST), json.dumps(manifest, indent=1).encode())
    return EditSummary(folder=folder, items=len(records), renders=n_renders, failed=tuple(failed))
