"""Vectorised queries over the index (Arrow compute; no Python loop per row).

Everything starts from :func:`latest`: one row per id (or per id and config hash), the one with the
greatest (finished_at, attempt).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sym3dinv.store.schema import Status


def latest(table: pa.Table, keys: Sequence[str] = ("id",)) -> pa.Table:
    """Latest row per ``keys`` by (finished_at, attempt)."""
    if table.num_rows == 0:
        return table
    order = pc.sort_indices(
        table.select([*keys, "finished_at", "attempt"]),
        sort_keys=[
            *((k, "ascending") for k in keys),
            ("finished_at", "descending"),
            ("attempt", "descending"),
        ],
    )
    sorted_keys = [pc.take(table[k], order) for k in keys]
    n = table.num_rows
    first = np.zeros(n, dtype=bool)
    first[0] = True
    for col in sorted_keys:  # a group starts where any key changes
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        diff = pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, n - 1)), True)
        first[1:] |= diff.to_numpy(zero_copy_only=False)
    return table.take(pc.filter(order, pa.array(first)))


def done_ids(table: pa.Table, config_hash: str) -> pa.Array:
    """Ids whose latest row under ``config_hash`` is done (table needs id/status/config_hash/finished_at/attempt)."""
    sub = table.filter(pc.equal(table["config_hash"], config_hash))
    last = latest(sub)
    return last.filter(pc.equal(last["status"], Status.DONE.value))["id"].combine_chunks()


def settled_ids(table: pa.Table, config_hash: str, final_errors: Sequence[str] = ()) -> pa.Array:
    """Ids whose latest row under ``config_hash`` is done, or failed with an ``error_class`` in
    ``final_errors``: failures of the input itself (the same bytes under the same config fail again), so a
    rerun settles them instead of redoing them. ``table`` needs ``error_class`` when ``final_errors`` is given."""
    last = latest(table.filter(pc.equal(table["config_hash"], config_hash)))
    keep = pc.equal(last["status"], Status.DONE.value)
    if final_errors:
        final = pc.and_(pc.equal(last["status"], Status.FAILED.value),
                        pc.is_in(last["error_class"], value_set=pa.array(list(final_errors), pa.string())))
        keep = pc.or_(keep, pc.fill_null(final, False))
    return last.filter(keep)["id"].combine_chunks()


def pending_mask(input_ids: pa.Array, done: pa.Array) -> pa.Array:
    return pc.invert(pc.is_in(input_ids, value_set=done))


def summary(latest_rows: pa.Table) -> pa.Table:
    """Counts by status and error class (latest row per id)."""
    t = latest_rows.select(["status", "error_class"])
    out = t.group_by(["status", "error_class"], use_threads=True).aggregate([([], "count_all")])
    out = out.rename_columns(["status", "error_class", "count"])
    return out.sort_by([("count", "descending"), ("status", "ascending")])


def metric_column(table: pa.Table, name: str, column: str = "metrics") -> pa.Array:
    """One key of a map<string,double> column as a float64 array aligned with ``table`` (null if absent)."""
    m = table[column].combine_chunks()
    if isinstance(m, pa.ChunkedArray):
        m = m.combine_chunks()
    # parent row of each map entry from the offsets (pc.list_parent_indices aborts on MapArray)
    offsets = m.offsets.to_numpy()
    # .keys/.items ignore a slice of the parent; offsets do not
    keys = m.keys.slice(offsets[0], offsets[-1] - offsets[0])
    items = m.items.slice(offsets[0], offsets[-1] - offsets[0])
    parents = np.repeat(np.arange(len(m)), np.diff(offsets))
    hit = pc.equal(keys, name)
    rows = parents[pc.fill_null(hit, False).to_numpy(zero_copy_only=False)]
    vals = pc.filter(items, hit).to_numpy(zero_copy_only=False)
    out = np.full(table.num_rows, np.nan)
    out[rows] = vals
    return pa.array(out, mask=np.isnan(out))


def metric_names(table: pa.Table, column: str = "metrics") -> list[str]:
    m = table[column].combine_chunks()
    return sorted(str(k) for k in pc.unique(m.keys).to_pylist() if k is not None)


def metric_stats(latest_rows: pa.Table, column: str = "metrics") -> pa.Table:
    """count/mean/std/min/p05/p50/p95/max per metric over done rows."""
    done = latest_rows.filter(pc.equal(latest_rows["status"], Status.DONE.value))
    recs = []
    for name in metric_names(done, column):
        v = metric_column(done, name, column).drop_null().to_numpy()
        if v.size == 0:
            continue
        q = np.quantile(v, [0.05, 0.5, 0.95])
        recs.append(
            {
                "metric": name,
                "count": int(v.size),
                "mean": float(v.mean()),
                "std": float(v.std()),
                "min": float(v.min()),
                "p05": float(q[0]),
                "p50": float(q[1]),
                "p95": float(q[2]),
                "max": float(v.max()),
            }
        )
    return pa.Table.from_pylist(
        recs,
        schema=pa.schema(
            [("metric", pa.string()), ("count", pa.int64())]
            + [(k, pa.float64()) for k in ("mean", "std", "min", "p05", "p50", "p95", "max")]
        ),
    )


def failed(latest_rows: pa.Table) -> pa.Table:
    """Latest rows that are failed, with reasons, newest first."""
    f = latest_rows.filter(pc.equal(latest_rows["status"], Status.FAILED.value))
    cols = [
        "id",
        "source_uri",
        "error_class",
        "error_message",
        "attempt",
        "worker",
        "config_hash",
        "finished_at",
    ]
    return f.select(cols).sort_by([("finished_at", "descending")])
