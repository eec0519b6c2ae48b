"""One PNG per run that shows at a glance what the run did: a row per item with
``input | reconstruction | novel views | depth``.

Written by the bulk flow next to the HTML report (``<store>/reports/<run>/contact-sheet.png``) and printed
by ``sym3dinv demo`` and ``sym3dinv invert``: a newcomer opens one image instead of a folder tree. The
reconstruction is ``render-input.png`` (the render at the input camera); stores written before it existed
show the stored view nearest the input camera instead (:func:`sym3dinv.store.input_outputs`). Depth is
the input camera's (else the first stored view's), near = bright, scaled per item.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sym3dinv.store.layout import DEPTH_PREFIX, INPUT_DEPTH, input_outputs, render_views

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from sym3dinv.store import RunStore
    from sym3dinv.store.schema import IndexRow

log = logging.getLogger(__name__)
TILE = 128
"""Tile edge in pixels (the embedded generator's resolution; larger renders are scaled down)."""
LABEL_H = 16
MAX_ITEMS = 64
"""Rows at most (a sheet of a large run stays a readable image; the HTML report has everything)."""


def sheet_path(run_id: str) -> str:
    """Store-relative path of a run's contact sheet."""
    return f"reports/{run_id}/contact-sheet.png"


@dataclass(frozen=True)
class _Row:
    label: str
    tiles: list[PILImage.Image | None]
    """input, reconstruction, novel views..., depth (None: missing or unreadable file)."""


def write_contact_sheet(store: RunStore, run_id: str, config_hash: str | None = None,
                        max_items: int = MAX_ITEMS) -> str | None:
    """Build and write the sheet of the store's done items (under ``config_hash`` when given: the run's
    results, this run's and earlier ones'); returns its store-relative path, or None with no done item."""
    rows = sorted(store.done_rows(config_hash=config_hash), key=lambda r: str(r.source_uri or r.id))[:max_items]
    if not rows:
        return None
    sheet = render_sheet([_item(store, r) for r in rows])
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    rel = sheet_path(run_id)
    store.atomic_write(rel, buf.getvalue())
    return rel


def render_sheet(rows: Sequence[_Row]) -> PILImage.Image:
    """The grid: a header, then one row per item; a missing tile is left grey."""
    from PIL import Image, ImageDraw

    n_novel = max(len(r.tiles) - 3 for r in rows)
    heads = ["input", "reconstruction", *(["novel views"] + [""] * (n_novel - 1) if n_novel else []), "depth"]
    width, row_h = TILE * len(heads), TILE + LABEL_H
    img = Image.new("RGB", (width, LABEL_H + row_h * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for j, h in enumerate(heads):
        draw.text((j * TILE + 3, 2), h, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        y = LABEL_H + i * row_h
        draw.text((3, y + 2), row.label[:60], fill=(60, 60, 60))
        novel = row.tiles[2:-1]
        tiles = [row.tiles[0], row.tiles[1], *novel, *([None] * (n_novel - len(novel))), row.tiles[-1]]
        for j, tile in enumerate(tiles):
            box = (j * TILE, y + LABEL_H)
            if tile is None:
                draw.rectangle((*box, box[0] + TILE - 1, box[1] + TILE - 1), fill=(225, 225, 225))
            else:
                img.paste(tile, box)
    return img


def _item(store: RunStore, r: IndexRow) -> _Row:
    outs = dict(r.outputs)
    input_rel, recon_rel = input_outputs(outs)
    views = [(yp, rel) for yp, _, rel in render_views(outs)]
    if recon_rel is None and views:  # older store: the stored view nearest the input camera
        yaw, pitch = float(r.yaw or 0.0), float(r.pitch or 0.0)
        nearest = min(views, key=lambda v: (v[0][0] - yaw) ** 2 + (v[0][1] - pitch) ** 2)
        views.remove(nearest)
        recon_rel = nearest[1]
    depth_key = INPUT_DEPTH if INPUT_DEPTH in outs else next((k for k in sorted(outs) if k.startswith(DEPTH_PREFIX)),
                                                             None)
    tiles = [_picture(store, input_rel), _picture(store, recon_rel), *(_picture(store, rel) for _, rel in views),
             _depth(store, outs.get(depth_key) if depth_key else None)]
    name = str(r.source_uri or r.id).rstrip("/").rsplit("/", 1)[-1]
    return _Row(label=f"{name}  {r.id[:8]}", tiles=tiles)


def _picture(store: RunStore, rel: str | None) -> PILImage.Image | None:
    from PIL import Image

    if not rel:
        return None
    try:
        im = Image.open(io.BytesIO(store.cat(rel)))
        im.load()
    except Exception as exc:  # noqa: BLE001 - a broken file is a grey tile, not a failed run
        log.warning("contact sheet: %s unreadable: %s", rel, exc)
        return None
    return _fit(im.convert("RGB"))


def _depth(store: RunStore, rel: str | None) -> PILImage.Image | None:
    """A depth map (``.npy`` metres or 16-bit ``.png``) as grey, near = bright, min-max over finite pixels."""
    from PIL import Image

    if not rel:
        return None
    try:
        data = store.cat(rel)
        z = np.load(io.BytesIO(data)) if rel.endswith(".npy") else np.asarray(Image.open(io.BytesIO(data)), np.float32)
        z = np.asarray(z, np.float32).squeeze()
        if z.ndim != 2:
            raise ValueError(f"depth of shape {z.shape}")
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("contact sheet: depth %s unreadable: %s", rel, exc)
        return None
    ok = np.isfinite(z)
    lo, hi = (float(z[ok].min()), float(z[ok].max())) if ok.any() else (0.0, 1.0)
    g = np.where(ok, 1.0 - (z - lo) / max(hi - lo, 1e-6), 0.0)
    return _fit(Image.fromarray(np.round(g * 255).astype(np.uint8)).convert("RGB"))


def _fit(im: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    return im if im.size == (TILE, TILE) else im.resize((TILE, TILE), Image.Resampling.BILINEAR)
