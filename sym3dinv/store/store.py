"""RunStore: one root URL (``/path``, ``file://``, ``s3://bucket/prefix``, ``memory://``) over fsspec.

Layout::

    <root>/items/<id>/a<attempt>-<token>/{latents.safetensors, delta.safetensors, render-*.png,
                                          depth-*.npy|png, metrics.json, _MANIFEST.json}
    <root>/index/part-<run>-<shard>-a<attempt>-<token>.parquet
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sym3dinv.errors import ConfigError, StoreNotFoundError
from sym3dinv.store import index as _index
from sym3dinv.store import query as _query
from sym3dinv.store.ids import safe_relpath
from sym3dinv.store.items import ItemWriter, committed_attempts, read_manifest
from sym3dinv.store.layout import INDEX_DIR
from sym3dinv.store.root import StoreRoot, mask_secrets
from sym3dinv.store.schema import IndexRow, Status

__all__ = ["RunStore", "mask_secrets"]

if TYPE_CHECKING:
    import pandas as pd

    from sym3dinv.config.store import RetryPolicy

log = logging.getLogger(__name__)
_PENDING_COLUMNS = ("id", "status", "config_hash", "finished_at", "attempt")
_SUMMARY_COLUMNS = ("id", "status", "error_class", "finished_at", "attempt")


class RunStore(StoreRoot):
    """A run store rooted at ``url``; ``storage_options`` go to fsspec (for s3fs: key, secret, token,
    ``client_kwargs={"endpoint_url": ...}``, ``endpoint_url``, anon, ...). Credentials may also come from
    the usual AWS env vars / profiles, which s3fs reads itself.

    The file operations (paths, atomic writes, reads, listings, one retry policy, masked repr) are the
    root layer's (:class:`~sym3dinv.store.root.StoreRoot`); a write that still fails after the retries
    raises :class:`StoreWriteError` naming the file and the reason. This class adds the run store's own
    parts: item writers, index writers, and the index queries (latest rows, pending, summaries)."""

    kind = "run store"

    @classmethod
    def open_existing(cls, url: str, storage_options: Mapping[str, Any] | None = None,
                      retry: RetryPolicy | None = None) -> RunStore:
        """The run store at ``url``, which must exist: commands that only read a store (report, store
        summary, dataset build, edit apply) call this, so a mistyped URL is an error naming it instead of
        an empty result and new folders (``reports/``, ``edits/``) created where no store was.

        A run store is a root with an ``index/`` folder (every flow run creates it before any work).
        Raises :class:`StoreNotFoundError` (a :class:`ConfigError`)."""
        store = cls(url, storage_options, retry)
        store.require_existing()
        return store

    def require_existing(self) -> None:
        """Raise :class:`StoreNotFoundError` unless a run store (its ``index/`` folder) is at this root."""
        def probe() -> tuple[bool, bool]:
            if self.fs.isdir(self.abspath(INDEX_DIR)):
                return True, True
            return False, bool(self.root) and self.fs.exists(self.root)

        try:
            is_store, root_exists = self.retrying(probe, f"look for a run store at {self.url}")
        except (OSError, ValueError) as exc:  # a bucket that is not there, denied, endpoint down
            raise StoreNotFoundError(f"cannot read run store {self.url}: {type(exc).__name__}: {exc}") from exc
        if not is_store:
            why = "it has no index/ folder, so it is not a run store" if root_exists else "nothing is there"
            raise StoreNotFoundError(f"no run store at {self.url}: {why} (give the --out of a "
                                     "`sym3dinv invert` or `sym3dinv demo` run)")

    def check_writable(self, probe_dir: str = INDEX_DIR) -> None:
        """Fail fast (ConfigError) when the index folder cannot be written, before any work starts."""
        super().check_writable(probe_dir)

    # --- writers -------------------------------------------------------------------------------------
    def item_writer(self, item_id: str, attempt: int = 0, meta: Mapping[str, Any] | None = None) -> ItemWriter:
        """Context manager for one attempt's files; commits (manifest, with ``meta``) on normal exit."""
        return ItemWriter(self, item_id, attempt, dict(meta or {}))

    def committed_attempts(self, item_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(item_dir, manifest) of every committed attempt of an item, oldest first."""
        return committed_attempts(self, item_id)

    def index_writer(self, run_id: str, shard_id: str, attempt: int = 0) -> _index.IndexWriter:
        """Buffers index rows of one shard; ``flush()`` writes one part file."""
        return _index.IndexWriter(self, run_id, shard_id, attempt)

    # --- reads ---------------------------------------------------------------------------------------
    def read_index(self, columns: Sequence[str] | None = None, *, strict: bool = False,
                   skip_unknown_versions: bool = False) -> pa.Table:
        """All index rows (every attempt) as Arrow (see :func:`sym3dinv.store.index.read_index`)."""
        return _index.read_index(self, columns, strict=strict, skip_unknown_versions=skip_unknown_versions).table

    def latest(self, columns: Sequence[str] | None = None, *, strict: bool = False,
               skip_unknown_versions: bool = False) -> pa.Table:
        """Latest row per id."""
        cols = None if columns is None else list(dict.fromkeys([*columns, "id", "finished_at", "attempt"]))
        return _query.latest(self.read_index(cols, strict=strict, skip_unknown_versions=skip_unknown_versions))

    def runs(self) -> list[str]:
        """Run ids that wrote rows into the index, sorted."""
        return sorted({r for r in self.read_index(["run_id"])["run_id"].to_pylist() if r})

    def latest_rows(self, *, run_id: str | None = None, config_hash: str | None = None,
                    status: Status | str | None = None, strict: bool = False) -> list[IndexRow]:
        """The latest row per id as typed :class:`IndexRow` s, sorted by id.

        ``run_id`` / ``config_hash``: the latest among that run's (that config's) rows, as resume reads
        them; ``status``: keep only rows whose latest status it is."""
        table = self.read_index(strict=strict)
        for column, value in (("run_id", run_id), ("config_hash", config_hash)):
            if value is not None and table.num_rows:
                table = table.filter(pc.equal(table[column], value))
        rows = [IndexRow.from_record(r) for r in _query.latest(table).to_pylist()]
        if status is not None:
            rows = [r for r in rows if r.status is Status(status)]
        return sorted(rows, key=lambda r: r.id)

    def done_rows(self, ids: Sequence[str] | None = None, *, run_id: str | None = None,
                  config_hash: str | None = None) -> list[IndexRow]:
        """The latest done row per id (what the dataset builder, the edits and the report read).

        ``ids``: exactly these (duplicates dropped, order kept); one without a done row is a ConfigError."""
        rows = {r.id: r for r in self.latest_rows(run_id=run_id, config_hash=config_hash, status=Status.DONE)}
        if ids is None:
            return list(rows.values())
        missing = [i for i in ids if i not in rows]
        if missing:
            raise ConfigError(f"{len(missing)} requested identities are not done in {self.url}: {missing[:5]}")
        return [rows[i] for i in dict.fromkeys(ids)]

    def is_committed(self, item_dir: str) -> bool:
        return read_manifest(self, item_dir) is not None

    def pending(
        self,
        inputs: pa.Table | pd.DataFrame | Sequence[tuple[str, str]],
        config_hash: str,
        *,
        verify_outputs: bool = False,
        strict: bool = False,
        final_errors: Sequence[str] = (),
        generator_fingerprint: str | None = None,
    ) -> pa.Table:
        """Inputs (``id``, ``source_uri``) without a done row under ``config_hash``.

        ``verify_outputs`` also checks each done row's manifest (one request per input id that is done;
        meant for small reruns or audits) and treats a missing manifest as not done. ``final_errors``:
        error classes that settle an item too (its latest row failed for a reason of the input itself,
        :data:`sym3dinv.errors.FINAL_ERROR_CODES`), so it is not redone. ``generator_fingerprint``: only
        done rows made by that generator count (a resume with ``--new-generator``: the others are redone).
        """
        if type(inputs).__name__ == "DataFrame":
            inputs = pa.Table.from_pandas(inputs, preserve_index=False)
        if not isinstance(inputs, pa.Table):
            ids, uris = zip(*inputs, strict=True) if len(inputs) else ((), ())
            inputs = pa.table({"id": pa.array(ids, pa.string()), "source_uri": pa.array(uris, pa.string())})
        cols = list(_PENDING_COLUMNS) + (["item_dir"] if verify_outputs else []) + (
            ["error_class"] if final_errors else []) + (["generator_fingerprint"] if generator_fingerprint else [])
        table = self.read_index(cols, strict=strict)
        mine = table
        if generator_fingerprint and table.num_rows:
            mine = table.filter(pc.fill_null(pc.equal(table["generator_fingerprint"], generator_fingerprint), False))
        done = _query.done_ids(mine, config_hash)
        if verify_outputs and len(done):
            sub = _query.latest(mine.filter(pc.equal(mine["config_hash"], config_hash)))
            sub = sub.filter(pc.is_in(sub["id"], value_set=done))
            ok = [
                i
                for i, d in zip(sub["id"].to_pylist(), sub["item_dir"].to_pylist(), strict=True)
                if d and self.is_committed(d)
            ]
            if len(ok) != len(done):
                log.warning(
                    "%d done rows point at missing manifests; treating them as pending", len(done) - len(ok)
                )
            done = pa.array(ok, pa.string())
        if final_errors:
            settled = _query.settled_ids(table, config_hash, final_errors)
            if mine is not table:  # failures of the input itself stay settled; another generator's done rows do not
                settled = pc.filter(settled, pc.invert(pc.is_in(settled, value_set=_query.done_ids(table, config_hash))))
            done = pa.concat_arrays([done, pc.filter(settled, pc.invert(pc.is_in(settled, value_set=done)))])
        return inputs.filter(_query.pending_mask(inputs["id"], done))

    def summary(self, *, strict: bool = False, skip_unknown_versions: bool = False) -> pa.Table:
        """Counts by (status, error_class) of the latest row per id."""
        return _query.summary(self.latest(_SUMMARY_COLUMNS, strict=strict, skip_unknown_versions=skip_unknown_versions))

    def metric_stats(self, *, strict: bool = False) -> pa.Table:
        """Distribution (count/mean/std/min/p05/p50/p95/max) per metric over latest done rows."""
        return _query.metric_stats(self.latest(("status", "metrics"), strict=strict))

    def failed(self, *, strict: bool = False, skip_unknown_versions: bool = False) -> pa.Table:
        """Latest rows that failed, with error class and message."""
        cols = ("status", "source_uri", "error_class", "error_message", "worker", "config_hash")
        return _query.failed(self.latest(cols, strict=strict, skip_unknown_versions=skip_unknown_versions))

    def poor_fits(self) -> list[IndexRow]:
        """Latest done rows flagged ``poor_fit`` (their ``quality_reason`` says why), worst input LPIPS first."""
        rows = [r for r in self.done_rows() if r.quality == "poor_fit"]
        return sorted(rows, key=lambda r: -(r.metrics.get("lpips_alex") or 0.0))

    def compact(self, *, min_parts: int = 2) -> _index.CompactResult:
        """Merge small part files; safe with concurrent readers and writers (see index.compact)."""
        return _index.compact(self, min_parts=min_parts)

    def load_latents(self, item_dir: str) -> dict[str, Any]:
        """Tensors (numpy) of a committed attempt's ``latents.safetensors``."""
        from safetensors.numpy import load

        return load(self.cat(safe_relpath(item_dir, "latents.safetensors")))
