"""A tiny run store written directly with the store API: done items with small PNG renders (input + three
views, like the pipeline writes), failed rows with hostile names/messages, and an edit folder."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace

import numpy as np
from PIL import Image

from sym3dinv.store import IndexRow, RunStore, Status, failure_row, item_id_from_bytes
from sym3dinv.store.layout import view_name

CFG = "cfgreport0123456"
RUN = "run-a"
VIEWS = ((0.0, 0.0), (-0.5, 0.0), (0.5, 0.0))
HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def picture(seed: int, size: int = 32) -> np.ndarray:
    """A small RGB picture: a coloured disc on a dark background (distinct per seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2
    img = np.zeros((size, size, 3), np.uint8)
    img[disc] = rng.integers(60, 255, 3)
    return img


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_store(store: RunStore, n_done: int = 3, run_id: str = RUN, hostile: bool = True,
               new_layout: bool = False) -> dict[str, list[str]]:
    """Write ``n_done`` done items and two failed ones; returns their ids by status.

    ``new_layout=False`` writes items as stores did before issue 20 (the input itself as
    ``render-input.png``, no render at the input camera): every older store looks like this.
    ``new_layout=True`` writes ``input.png`` (:func:`picture` ``100 + i``), the reconstruction at the input
    camera as ``render-input.png`` (``300 + i``) and its depth ``depth-input.npy`` (a left-right ramp)."""
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    ids: dict[str, list[str]] = {"done": [], "failed": []}
    with store.index_writer(run_id, "00000") as writer:
        for i in range(n_done):
            payload = f"{run_id}-item-{i}".encode()
            item_id = item_id_from_bytes(payload)
            with store.item_writer(item_id) as w:
                w.write_latents({"ws": np.full((4, 8), i, np.float32)})
                if new_layout:
                    w.write_input(picture(100 + i))
                    w.write_render("input", picture(300 + i))
                    w.write_depth("input", np.tile(np.linspace(2.5, 3.0, 32, dtype=np.float32), (32, 1)))
                else:
                    w.write_render("input", picture(100 + i))
                for k, (yaw, pitch) in enumerate(VIEWS):
                    w.write_render(view_name(yaw, pitch), picture(200 + 10 * i + k))
                w.write_metrics({"psnr": 20.0 + i, "config": {"generator": "synthheads", "preset": "cpu",
                                                               "mode": "spi", "note": HOSTILE if hostile else ""}})
            name = f"{HOSTILE}face{i}.png" if hostile and i == 0 else f"face{i}.png"
            writer.add_done(w.committed, IndexRow(
                id=item_id, status=Status.DONE, config_hash=CFG, source_uri=f"/data/in/{name}", bytes=10,
                camera_label=tuple(0.0 for _ in range(25)), yaw=0.05 * i, pitch=0.0,
                metrics={"psnr": 20.0 + 2 * i, "lpips_alex": 0.3 - 0.05 * i, "mse": 0.01},
                stage_seconds={"decode": 0.1, "invert_stage1": 5.0 + i, "total": 10.0 + i},
                worker="actor-0", started_at=t0 + dt.timedelta(seconds=20 * i),
                finished_at=t0 + dt.timedelta(seconds=20 * i + 10 + i)))
            ids["done"].append(item_id)
        for j, (exc, uri) in enumerate([
                (ValueError(f"cannot decode {HOSTILE if hostile else 'x'}"), f"/data/in/{HOSTILE if hostile else 'bad'}.jpg"),
                (MemoryError("out of memory"), "/data/in/huge.png")]):
            item_id = item_id_from_bytes(f"{run_id}-bad-{j}".encode())
            row = failure_row(item_id, exc, config_hash=CFG, source_uri=uri, worker="actor-1",
                              stage_seconds={"total": 0.5}, started_at=t0 + dt.timedelta(seconds=5 * j))
            writer.add(replace(row, finished_at=t0 + dt.timedelta(seconds=5 * j + 1)))
            ids["failed"].append(item_id)
    return ids


def make_edit(store: RunStore, item_ids: list[str], name: str = "hair") -> str:
    """An edit folder as `sym3dinv edit apply` writes it (two strengths and 0, two views)."""
    folder = f"edits/{name}"
    views = [{"name": view_name(0.0, 0.0), "yaw": 0.0, "pitch": 0.0},
             {"name": view_name(0.5, 0.0), "yaw": 0.5, "pitch": 0.0}]
    items = []
    for n, item_id in enumerate(item_ids):
        renders = []
        for s in (-2.0, 0.0, 2.0):
            for v in views:
                rel = f"items/{item_id}/hair_lightness/s{s:+.2f}_{v['name']}.png"
                store.write(f"{folder}/{rel}", png(picture(300 + n * 7 + int(s * 3))))
                renders.append({"direction": "hair_lightness", "strength": s, "view": v["name"], "path": rel})
        items.append({"id": item_id, "source_uri": f"/data/in/face{n}.png", "renders": renders})
    manifest = {"format": "sym3dinv-edit/1", "name": name, "generator": "synthheads", "views": views,
                "directions": [{"name": "hair_lightness", "source": f"learned {HOSTILE}", "strengths": [-2, 0, 2]}],
                "items": items}
    store.write(f"{folder}/edit.json", json.dumps(manifest).encode())
    return folder
