"""The index schema: one row per item and attempt, versioned in every Parquet file's metadata.

Metrics and per-stage seconds are ``map<string, double>``: keys differ between runs (stage 1 only,
stage 2, identity backends) so a struct would force a schema change per metric. DuckDB reads maps as
``metrics['lpips']``; :mod:`sym3dinv.store.query` pulls one key out with vectorised Arrow ops.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import pyarrow as pa

from sym3dinv.errors import error_code

SCHEMA_VERSION = 1
"""Bump on any incompatible change; readers refuse versions they do not know."""
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
SCHEMA_VERSION_KEY = b"sym3dinv.schema_version"
CAMERA_LABEL_SIZE = 25
"""EG3D label: 16 cam2world + 9 intrinsics."""
MAX_MESSAGE_CHARS = 2000
"""Error messages are cut so one bad item cannot bloat a part file."""


class Status(str, Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


_TS = pa.timestamp("us", tz="UTC")

INDEX_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_class", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("camera_label", pa.list_(pa.float32(), CAMERA_LABEL_SIZE)),
        pa.field("yaw", pa.float32()),
        pa.field("pitch", pa.float32()),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
        pa.field("stage_seconds", pa.map_(pa.string(), pa.float64())),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("worker", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("shard_id", pa.string()),
        pa.field("config_hash", pa.string(), nullable=False),
        pa.field("code_version", pa.string()),
        pa.field("item_dir", pa.string()),
        pa.field("outputs", pa.map_(pa.string(), pa.string())),
        pa.field("started_at", _TS),
        pa.field("finished_at", _TS, nullable=False),
    ],
    metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()},
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class IndexRow:
    """One index row (all schema fields). ``item_dir``/``outputs`` are relative to the store root."""

    id: str
    status: Status
    config_hash: str
    attempt: int = 0
    source_uri: str | None = None
    bytes: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    camera_label: tuple[float, ...] | None = None
    yaw: float | None = None
    pitch: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    worker: str | None = None
    run_id: str | None = None
    shard_id: str | None = None
    code_version: str | None = None
    item_dir: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        from sym3dinv.store.ids import validate_item_id

        validate_item_id(self.id)
        object.__setattr__(self, "status", Status(self.status))
        if self.camera_label is not None and len(self.camera_label) != CAMERA_LABEL_SIZE:
            raise ValueError(
                f"camera_label must have {CAMERA_LABEL_SIZE} values, got {len(self.camera_label)}"
            )
        if self.finished_at.tzinfo is None:
            raise ValueError("finished_at must be timezone-aware (UTC)")

    def as_record(self) -> dict[str, object]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "source_uri": self.source_uri,
            "bytes": self.bytes,
            "status": self.status.value,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "camera_label": list(self.camera_label) if self.camera_label is not None else None,
            "yaw": self.yaw,
            "pitch": self.pitch,
            "metrics": list(self.metrics.items()),
            "stage_seconds": list(self.stage_seconds.items()),
            "attempt": self.attempt,
            "worker": self.worker,
            "run_id": self.run_id,
            "shard_id": self.shard_id,
            "config_hash": self.config_hash,
            "code_version": self.code_version,
            "item_dir": self.item_dir,
            "outputs": list(self.outputs.items()),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def failure_row(
    item_id: str,
    exc: BaseException,
    *,
    config_hash: str,
    attempt: int = 0,
    source_uri: str | None = None,
    size: int | None = None,
    worker: str | None = None,
    code_version: str | None = None,
    stage_seconds: Mapping[str, float] | None = None,
    started_at: dt.datetime | None = None,
) -> IndexRow:
    """A ``failed`` row from an exception: class via :func:`sym3dinv.errors.error_code`, readable message."""
    message = str(exc) or type(exc).__name__
    if error_code(exc) == "internal_error":
        message = f"{type(exc).__name__}: {message}"
    return IndexRow(
        id=item_id,
        status=Status.FAILED,
        config_hash=config_hash,
        attempt=attempt,
        source_uri=source_uri,
        bytes=size,
        error_class=error_code(exc),
        error_message=message[:MAX_MESSAGE_CHARS],
        stage_seconds=dict(stage_seconds or {}),
        worker=worker,
        code_version=code_version,
        started_at=started_at,
    )


def rows_to_table(rows: Sequence[IndexRow]) -> pa.Table:
    """Arrow table in :data:`INDEX_SCHEMA` (with the version metadata)."""
    return pa.Table.from_pylist([r.as_record() for r in rows], schema=INDEX_SCHEMA)


def new_token() -> str:
    return uuid.uuid4().hex[:12]
