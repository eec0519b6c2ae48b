"""Index part files: buffered write-once parts, tolerant parallel reads, safe compaction.

Part names are ``part-<run>-<shard>-a<attempt>-<token>.parquet`` (token = random uuid hex) so
concurrent writers never collide. A part becomes visible in one step: a single PUT on object stores
(``pipe_file``), write-to-temp + rename on local disk; readers only list ``part-*.parquet``.
"""

from __future__ import annotations

import io
import logging
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sym3dinv.errors import SchemaVersionError, StoreError
from sym3dinv.store.ids import validate_name
from sym3dinv.store.items import CommittedItem, read_manifest
from sym3dinv.store.layout import INDEX_DIR
from sym3dinv.store.schema import (
    INDEX_SCHEMA,
    SCHEMA_VERSION_KEY,
    SUPPORTED_SCHEMA_VERSIONS,
    IndexRow,
    Status,
    new_token,
    rows_to_table,
)

if TYPE_CHECKING:
    from sym3dinv.store.root import StoreRoot

log = logging.getLogger(__name__)
READ_THREADS = 8
"""Parallel part reads: object-store latency dominates, pyarrow releases the GIL while decoding."""


def part_name(run_id: str, shard_id: str, attempt: int) -> str:
    return f"part-{validate_name(run_id)}-{validate_name(shard_id)}-a{int(attempt)}-{new_token()}.parquet"


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(INDEX_SCHEMA.metadata), buf, compression="zstd")
    return buf.getvalue()


@dataclass
class IndexWriter:
    """Buffers rows of one shard and writes them as ONE part file per :meth:`flush`.

    ``add_done`` takes the :class:`CommittedItem` from the item writer, so a done row can only be
    built after the item's files are committed.
    """

    store: StoreRoot
    run_id: str
    shard_id: str
    attempt: int = 0
    rows: list[IndexRow] = field(init=False, default_factory=list)
    parts_written: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        validate_name(self.run_id)
        validate_name(self.shard_id)

    def add(self, row: IndexRow) -> None:
        """Buffer a row; ``done`` rows must point at a committed item folder (manifest present)."""
        if row.status is Status.DONE and (
            not row.item_dir or read_manifest(self.store, row.item_dir) is None
        ):
            raise StoreError(f"done row for {row.id} points at uncommitted item folder {row.item_dir!r}")
        self.rows.append(_stamp(row, self.run_id, self.shard_id))

    def add_done(self, item: CommittedItem, row: IndexRow) -> None:
        """Buffer the done row of a committed item (item_dir/outputs/attempt filled from ``item``)."""
        from dataclasses import replace

        if row.id != item.item_id:
            raise StoreError(f"row id {row.id} does not match committed item {item.item_id}")
        self.rows.append(
            _stamp(
                replace(
                    row,
                    status=Status.DONE,
                    attempt=item.attempt,
                    item_dir=item.item_dir,
                    outputs=dict(item.outputs),
                ),
                self.run_id,
                self.shard_id,
            )
        )

    def flush(self) -> str | None:
        """Write buffered rows as one part file; returns its relative path (None if nothing buffered)."""
        if not self.rows:
            return None
        rel = posixpath.join(INDEX_DIR, part_name(self.run_id, self.shard_id, self.attempt))
        self.store.atomic_write(rel, table_to_parquet_bytes(rows_to_table(self.rows)))
        log.info("wrote %d index rows to %s", len(self.rows), rel)
        self.rows.clear()
        self.parts_written.append(rel)
        return rel

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # flush even on error: rows already buffered describe finished items and must not be lost
        self.flush()


def _stamp(row: IndexRow, run_id: str, shard_id: str) -> IndexRow:
    from dataclasses import replace

    return replace(row, run_id=row.run_id or run_id, shard_id=row.shard_id or shard_id)


@dataclass(frozen=True)
class IndexRead:
    """Rows of every readable part, plus the parts that could not be read and why."""

    table: pa.Table
    parts: tuple[str, ...]
    corrupt: tuple[tuple[str, str], ...] = ()
    """(part path, reason) of unreadable parts, skipped in non-strict mode."""
    unsupported: tuple[tuple[str, str], ...] = ()
    """(part path, reason) of parts with an unknown schema version, skipped with ``skip_unknown_versions``."""


def list_parts(store: StoreRoot) -> list[str]:
    """Absolute paths of all committed part files."""
    names = store.ls(INDEX_DIR)
    return sorted(p for p in names if posixpath.basename(p).startswith("part-") and p.endswith(".parquet"))


def _read_part(store: StoreRoot, path: str, columns: Sequence[str] | None) -> pa.Table:
    with store.fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        meta = pf.schema_arrow.metadata or {}
        raw = meta.get(SCHEMA_VERSION_KEY)
        version = int(raw) if raw is not None and raw.isdigit() else None
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise SchemaVersionError(
                f"index part {path} has schema version {raw.decode() if raw else 'missing'}; this sym3dinv "
                f"reads versions {sorted(SUPPORTED_SCHEMA_VERSIONS)}. Upgrade sym3dinv or move the file away."
            )
        wanted = list(columns) if columns is not None else INDEX_SCHEMA.names
        present = set(pf.schema_arrow.names)
        table = pf.read(columns=[c for c in wanted if c in present])
    for name in (c for c in wanted if c not in present):  # a column added after this part was written: null
        fld = INDEX_SCHEMA.field(name)
        if not fld.nullable:
            raise StoreError(f"index part {path} lacks the required column {name!r}")
        table = table.append_column(fld, pa.nulls(table.num_rows, fld.type))
    return table.select(wanted)


def read_index(
    store: StoreRoot, columns: Sequence[str] | None = None, *, strict: bool = False, retries: int = 3,
    skip_unknown_versions: bool = False,
) -> IndexRead:
    """All rows of all parts (``columns`` projects for speed).

    Unknown schema versions raise :class:`SchemaVersionError` naming the part, unless
    ``skip_unknown_versions`` (read-only reports: summary, failed, export), which logs them and lists them
    in ``unsupported`` while the rest stays readable. Resume never skips them: treating a newer
    writer's done rows as absent would redo that work. A corrupt part raises in
    ``strict`` mode, else it is logged, reported in ``corrupt`` and skipped. A part deleted while we
    read (a concurrent :func:`compact`) triggers a re-list: compaction writes the merged part first,
    so the re-list sees every row.
    """
    schema = INDEX_SCHEMA if columns is None else pa.schema([INDEX_SCHEMA.field(c) for c in columns])
    for _ in range(retries + 1):
        parts = list_parts(store)
        tables: list[pa.Table] = []
        corrupt: list[tuple[str, str]] = []
        unsupported: list[tuple[str, str]] = []
        vanished = False

        def one(path: str) -> pa.Table | BaseException:
            try:
                return store.retrying(lambda: _read_part(store, path, columns), f"read {path}")
            except SchemaVersionError as exc:
                if not skip_unknown_versions:
                    raise
                return exc
            except FileNotFoundError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - any decode failure means a corrupt part
                return StoreError(f"corrupt index part {path}: {type(exc).__name__}: {exc}")

        with ThreadPoolExecutor(max_workers=min(READ_THREADS, max(1, len(parts)))) as pool:
            results = list(pool.map(one, parts))
        for path, res in zip(parts, results, strict=True):
            if isinstance(res, FileNotFoundError):
                vanished = True
            elif isinstance(res, SchemaVersionError):
                log.warning("%s (skipped)", res)
                unsupported.append((path, str(res)))
            elif isinstance(res, StoreError):
                if strict:
                    raise res
                log.warning("%s (skipped; pass strict=True to fail instead)", res)
                corrupt.append((path, str(res)))
            else:
                tables.append(res.cast(schema) if res.schema != schema else res)
        if not vanished:
            table = pa.concat_tables(tables) if tables else schema.empty_table()
            return IndexRead(table, tuple(parts), tuple(corrupt), tuple(unsupported))
        log.info("an index part vanished while reading (concurrent compaction); re-listing")
    raise StoreError(f"index parts kept vanishing while reading {store.url}; is a compaction looping?")


@dataclass(frozen=True)
class CompactResult:
    merged_part: str | None
    removed_parts: tuple[str, ...]
    rows: int


def compact(store: StoreRoot, *, min_parts: int = 2, max_rows_per_part: int = 5_000_000) -> CompactResult:
    """Merge all readable parts into one (or a few) large parts, then delete the small ones.

    Writes before deleting, so a concurrent reader sees each row at least once; the duplicates it may
    see are identical rows, harmless under latest-row-wins. Corrupt parts are left alone.
    Parts written by other writers during compaction are not touched.
    """
    read = read_index(store)
    merged_from = [p for p in read.parts if p not in {c for c, _ in read.corrupt}]
    if len(merged_from) < min_parts:
        return CompactResult(None, (), read.table.num_rows)
    table = read.table
    written: list[str] = []
    for start in range(0, max(table.num_rows, 1), max_rows_per_part):
        rel = posixpath.join(INDEX_DIR, part_name("compact", "all", 0))
        store.atomic_write(rel, table_to_parquet_bytes(table.slice(start, max_rows_per_part)))
        written.append(rel)
    for path in merged_from:
        try:
            store.fs.rm_file(path)
        except FileNotFoundError:  # a concurrent compaction got there first; its merged part has the rows
            log.info("part %s already removed", path)
    log.info("compacted %d parts (%d rows) into %s", len(merged_from), table.num_rows, written)
    return CompactResult(
        written[0] if len(written) == 1 else ",".join(written), tuple(merged_from), table.num_rows
    )
