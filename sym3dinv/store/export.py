"""Export latents + labels of all done items into one bundle for dataset building."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sym3dinv.errors import StoreError
from sym3dinv.store.schema import Status
from sym3dinv.store.store import RunStore

log = logging.getLogger(__name__)


def export_bundle(store: RunStore, out: str, *, key: str = "ws") -> int:
    """Write ``out`` (``.parquet``: one row per item with flattened latent + shape; ``.safetensors``:
    stacked ``latents`` [N, ...] and ``camera_labels`` [N, 25], ids in the metadata). Returns N."""
    import fsspec

    last = store.latest(("status", "source_uri", "camera_label", "item_dir", "metrics"))
    done = last.filter(pc.equal(last["status"], Status.DONE.value)).sort_by("id")
    lat = [store.load_latents(d)[key] for d in done["item_dir"].to_pylist()]
    shapes = {a.shape for a in lat}
    if len(shapes) > 1:
        raise StoreError(f"latents {key!r} have different shapes across items: {sorted(shapes)}")
    labels = done["camera_label"].to_pylist()
    lab = np.array([x if x is not None else [np.nan] * 25 for x in labels], dtype=np.float32).reshape(-1, 25)
    with fsspec.open(out, "wb") as f:
        if out.endswith(".safetensors"):
            from safetensors.numpy import save

            stacked = np.stack(lat) if lat else np.zeros((0,), np.float32)
            meta = {"ids": json.dumps(done["id"].to_pylist()), "key": key}
            f.write(save({"latents": stacked, "camera_labels": lab}, metadata=meta))
        elif out.endswith(".parquet"):
            flat = pa.array([a.astype(np.float32).ravel() for a in lat], pa.list_(pa.float32()))
            shape = json.dumps(list(next(iter(shapes)))) if shapes else "[]"
            table = pa.table(
                {
                    "id": done["id"],
                    "source_uri": done["source_uri"],
                    "camera_label": done["camera_label"],
                    "latent": flat,
                    "metrics": done["metrics"],
                }
            )
            pq.write_table(table.replace_schema_metadata({"latent_key": key, "latent_shape": shape}), f)
        else:
            raise StoreError(f"export target {out!r} must end in .parquet or .safetensors")
    log.info("exported %d items to %s", done.num_rows, out)
    return done.num_rows
