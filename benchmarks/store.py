"""Run-store index at scale: write and read 1,000,000 synthetic rows, time resume and summary.

    .venv/bin/python benchmarks/store.py [--rows 1000000] [--parts 200] [--root /tmp/x]

Prints one JSON object with machine info; goal: pending and summary under 5 s each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv.store import INDEX_SCHEMA, RunStore
from sym3dinv.store.index import INDEX_DIR, part_name, table_to_parquet_bytes


def synthetic_part(rng: np.random.Generator, start: int, n: int, attempt: int = 0) -> pa.Table:
    """n rows built column-wise (no Python loop per row): 65% done, 10% failed, 25% done under another
    config; ``attempt`` > 0 makes retry rows (later timestamp) for ids already written."""
    ids = pa.array([f"{i:032x}" for i in range(start, start + n)], pa.string())
    u = rng.random(n)
    status = np.where(u < 0.65, "done", np.where(u < 0.75, "failed", "done"))
    cfg = np.where(u < 0.75, "cfgA", "cfgB")
    err = np.where(
        status == "failed", np.array(["no_face", "decode_error", "too_small"])[rng.integers(0, 3, n)], None
    )
    offsets = pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32))
    keys = pa.array(np.tile(["lpips", "psnr", "id_sim"], n))
    metrics = pa.MapArray.from_arrays(offsets, keys, pa.array(rng.random(3 * n)))
    st_off = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    stage = pa.MapArray.from_arrays(
        st_off, pa.array(np.tile(["stage1", "stage2"], n)), pa.array(rng.random(2 * n) * 30)
    )
    labels = pa.FixedSizeListArray.from_arrays(pa.array(rng.random(25 * n).astype(np.float32)), 25)
    now = dt.datetime.now(dt.timezone.utc)
    ts = pa.array(np.full(n, int(now.timestamp() * 1e6) + attempt), pa.timestamp("us", tz="UTC"))
    out_off = pa.array(np.arange(0, n + 1, dtype=np.int32))
    outputs = pa.MapArray.from_arrays(
        out_off,
        pa.array(["latents"] * n),
        pa.array([f"items/{i}/a0/latents.safetensors" for i in ids.to_pylist()]),
    )
    cols = {
        "schema_version": pa.array(np.ones(n, np.int16)),
        "id": ids,
        "source_uri": pa.array([f"s3://in/{i}.jpg" for i in range(start, start + n)]),
        "bytes": pa.array(rng.integers(10_000, 500_000, n)),
        "status": pa.array(status),
        "error_class": pa.array(err, pa.string()),
        "error_message": pa.array(np.where(status == "failed", "synthetic failure", None), pa.string()),
        "camera_label": labels,
        "yaw": pa.array(rng.normal(0, 0.3, n).astype(np.float32)),
        "pitch": pa.array(rng.normal(0, 0.1, n).astype(np.float32)),
        "metrics": metrics,
        "stage_seconds": stage,
        "attempt": pa.array(np.full(n, attempt, np.int32)),
        "worker": pa.array(["w0"] * n),
        "run_id": pa.array(["bench"] * n),
        "shard_id": pa.array([f"s{start // n}"] * n),
        "config_hash": pa.array(cfg),
        "code_version": pa.array(["0.1.0"] * n),
        "item_dir": pa.array([f"items/{i}/a0" for i in ids.to_pylist()]),
        "outputs": outputs,
        "started_at": ts,
        "finished_at": ts,
    }
    return pa.table(cols, schema=INDEX_SCHEMA)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=200)
    ap.add_argument(
        "--retry-parts", type=int, default=10, help="of --parts, how many hold retries of earlier ids"
    )
    ap.add_argument("--root", default=None, help="store root (default: a fresh temp dir, removed after)")
    args = ap.parse_args()
    root = args.root or tempfile.mkdtemp(prefix="sym3dinv-store-bench-")
    store = RunStore(root)
    rng = np.random.default_rng(0)
    per = args.rows // args.parts
    first = args.parts - args.retry_parts
    res: dict[str, object] = {
        "rows": per * args.parts,
        "parts": args.parts,
        "unique_ids": per * first,
        "retry_rows": per * args.retry_parts,
    }
    t0 = time.perf_counter()
    for p in range(args.parts):
        # retry parts re-process ids of the first parts (attempt 1): latest-row-wins does real work
        table = (
            synthetic_part(rng, p * per, per) if p < first else synthetic_part(rng, (p - first) * per, per, 1)
        )
        store.atomic_write(f"{INDEX_DIR}/{part_name('bench', f's{p}', 0)}", table_to_parquet_bytes(table))
    res["write_s"] = time.perf_counter() - t0
    res["index_mb"] = sum(store.fs.size(p) for p in store.fs.ls(store.abspath(INDEX_DIR), detail=False)) / 1e6
    t0 = time.perf_counter()
    full = store.read_index()
    res["read_all_columns_s"] = time.perf_counter() - t0
    assert full.num_rows == res["rows"]
    n_in = per * first
    inputs = pa.table(
        {"id": [f"{i:032x}" for i in range(n_in)], "source_uri": [f"s3://in/{i}.jpg" for i in range(n_in)]}
    )
    del full
    t0 = time.perf_counter()
    pend = store.pending(inputs, "cfgA")
    res["pending_s"] = time.perf_counter() - t0
    res["pending_rows"] = pend.num_rows
    t0 = time.perf_counter()
    summ = store.summary()
    res["summary_s"] = time.perf_counter() - t0
    res["summary"] = summ.to_pylist()
    t0 = time.perf_counter()
    stats = store.metric_stats()
    res["metric_stats_s"] = time.perf_counter() - t0
    res["metrics"] = [r["metric"] for r in stats.to_pylist()]
    t0 = time.perf_counter()
    store.compact()
    res["compact_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.summary()
    res["summary_after_compact_s"] = time.perf_counter() - t0
    res["machine"] = {
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
    }
    print(json.dumps(res, indent=1, default=str))
    if args.root is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
