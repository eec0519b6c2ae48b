"""RunStore: one root URL (``/path``, ``file://``, ``s3://bucket/prefix``, ``memory://``) over fsspec.

Layout::

    <root>/items/<id>/a<attempt>-<token>/{latents.safetensors, delta.safetensors, render-*.png,
                                          depth-*.npy|png, metrics.json, _MANIFEST.json}
    <root>/index/part-<run>-<shard>-a<attempt>-<token>.parquet
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from sym3dinv.config.store import RetryPolicy
from sym3dinv.errors import ConfigError, StoreNotFoundError, StoreWriteError
from sym3dinv.store import index as _index
from sym3dinv.store import query as _query
from sym3dinv.store.ids import safe_relpath
from sym3dinv.store.items import ItemWriter, committed_attempts, read_manifest
from sym3dinv.store.retry import with_retries
from sym3dinv.store.schema import new_token

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
_SECRET_HINTS = ("secret", "token", "password", "key", "credential", "session")
_PENDING_COLUMNS = ("id", "status", "config_hash", "finished_at", "attempt")
_SUMMARY_COLUMNS = ("id", "status", "error_class", "finished_at", "attempt")


def mask_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options with anything credential-like replaced by '***' (recursively): for logs, reprs and
    parameters that end up in a database (Prefect flow-run parameters)."""
    return _mask(options)


def _mask(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options with anything credential-like replaced by '***' (recursively), for repr and logs."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, Mapping):
            out[k] = _mask(v)
        elif any(h in k.lower() for h in _SECRET_HINTS):
            out[k] = "***"
        else:
            out[k] = v
    return out


class RunStore:
    """A run store rooted at ``url``; ``storage_options`` go to fsspec (for s3fs: key, secret, token,
    ``client_kwargs={"endpoint_url": ...}``, ``endpoint_url``, anon, ...). Credentials may also come from
    the usual AWS env vars / profiles, which s3fs reads itself.

    Every read, listing and write goes through :func:`sym3dinv.store.retry.with_retries`: transient
    object-store errors are retried with backoff (``retry``), permanent ones fail at once; a write that
    still fails raises :class:`StoreWriteError` naming the file and the reason. ``retries`` counts the
    retries this instance made (tests and reports read it)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None,
                 retry: RetryPolicy | None = None) -> None:
        if not url:
            raise ConfigError("run store URL is empty")
        self.url = url.rstrip("/") or "/"
        self._options = dict(storage_options or {})
        self.retry = retry or RetryPolicy()
        self.retries = 0
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **self._options)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"cannot open run store {self.url}: {exc}") from exc
        self.root = root.rstrip("/") if root not in ("/", "") else root
        self.is_local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

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
            if self.fs.isdir(self.abspath("index")):
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

    def __repr__(self) -> str:
        return f"RunStore({self.url!r}, storage_options={_mask(self._options)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable for Ray/multiprocessing: reopen from url + options on the other side
        return (RunStore, (self.url, self._options, self.retry))

    # --- paths and atomic writes ---------------------------------------------------------------------
    def abspath(self, rel: str) -> str:
        """Absolute fsspec path of a path relative to the root; refuses anything escaping the root."""
        return posixpath.join(self.root, safe_relpath(rel)) if self.root else safe_relpath(rel)

    def _count_retry(self, _exc: BaseException) -> None:
        self.retries += 1

    def retrying(self, fn: Any, what: str) -> Any:
        """``fn()`` with this store's retry policy for transient errors (reads and listings)."""
        return with_retries(fn, what, self.retry, self._count_retry)

    def _write_guarded(self, rel: str, fn: Any) -> None:
        try:
            with_retries(fn, f"write {rel}", self.retry, self._count_retry)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write {rel!r} to run store {self.url}: {type(exc).__name__}: {exc}") from exc

    def write(self, rel: str, data: bytes) -> None:
        """Write a whole file (parents created on local disk); object stores get a single PUT."""
        path = self.abspath(rel)

        def put() -> None:
            if self.is_local:
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self.fs.pipe_file(path, data)

        self._write_guarded(rel, put)

    def atomic_write(self, rel: str, data: bytes) -> None:
        """Make ``rel`` appear complete or not at all: temp + rename locally, one PUT elsewhere."""
        path = self.abspath(rel)

        def put() -> None:
            if self.is_local:
                tmp = posixpath.join(posixpath.dirname(path), f".tmp-{new_token()}-{posixpath.basename(path)}")
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
                try:
                    self.fs.pipe_file(tmp, data)
                    self.fs.mv(tmp, path)
                finally:
                    if self.fs.exists(tmp):  # a failed write (disk full) must not leave its temp behind
                        self.fs.rm_file(tmp)
            else:
                self.fs.pipe_file(path, data)

        self._write_guarded(rel, put)

    def cat(self, rel: str) -> bytes:
        """Bytes of a file relative to the root (transient errors retried)."""
        path = self.abspath(rel)
        return self.retrying(lambda: self.fs.cat_file(path), f"read {rel}")

    def check_writable(self) -> None:
        """Fail fast (ConfigError) when the root cannot be written, before any work starts."""
        rel = f"index/.probe-{new_token()}"
        try:
            self.atomic_write(rel, b"ok")
            self.fs.rm_file(self.abspath(rel))
        except Exception as exc:  # noqa: BLE001 - any failure here is a configuration problem
            raise ConfigError(f"run store {self!r} is not writable: {type(exc).__name__}: {exc}") from exc

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
    ) -> pa.Table:
        """Inputs (``id``, ``source_uri``) without a done row under ``config_hash``.

        ``verify_outputs`` also checks each done row's manifest (one request per input id that is done;
        meant for small reruns or audits) and treats a missing manifest as not done. ``final_errors``:
        error classes that settle an item too (its latest row failed for a reason of the input itself,
        :data:`sym3dinv.errors.FINAL_ERROR_CODES`), so it is not redone.
        """
        if type(inputs).__name__ == "DataFrame":
            inputs = pa.Table.from_pandas(inputs, preserve_index=False)
        if not isinstance(inputs, pa.Table):
            ids, uris = zip(*inputs, strict=True) if len(inputs) else ((), ())
            inputs = pa.table({"id": pa.array(ids, pa.string()), "source_uri": pa.array(uris, pa.string())})
        cols = list(_PENDING_COLUMNS) + (["item_dir"] if verify_outputs else []) + (
            ["error_class"] if final_errors else [])
        table = self.read_index(cols, strict=strict)
        done = _query.done_ids(table, config_hash)
        if verify_outputs and len(done):
            sub = _query.latest(table.filter(pc.equal(table["config_hash"], config_hash)))
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

    def compact(self, *, min_parts: int = 2) -> _index.CompactResult:
        """Merge small part files; safe with concurrent readers and writers (see index.compact)."""
        return _index.compact(self, min_parts=min_parts)

    def load_latents(self, item_dir: str) -> dict[str, Any]:
        """Tensors (numpy) of a committed attempt's ``latents.safetensors``."""
        from safetensors.numpy import load

        return load(self.cat(safe_relpath(item_dir, "latents.safetensors")))
