"""The index schema: one row per item and attempt, versioned in every Parquet file's metadata.

Metrics and per-stage seconds are ``map<string, double>``: keys differ between runs (stage 1 only,
stage 2, identity backends) so a struct would force a schema change per metric. DuckDB reads maps as
``metrics['lpips']``; :mod:`sym3dinv.store.query` pulls one key out with vectorised Arrow ops.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

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
        pa.field("generator_fingerprint", pa.string()),
        pa.field("quality", pa.string()),
        pa.field("quality_reason", pa.string()),
        pa.field("group_name", pa.string()),
        pa.field("members", pa.list_(pa.string())),
        pa.field("members_used", pa.list_(pa.string())),
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
    generator_fingerprint: str | None = None
    """The generator's weights and kwargs (:func:`sym3dinv.generator.fingerprint.generator_fingerprint`);
    None in rows written before fingerprints were recorded. Resume, the dataset builder and the edits check it."""
    quality: str | None = None
    """Done rows: ``ok`` or ``poor_fit`` (:func:`sym3dinv.pipeline.quality.assess`); None for failures and
    for rows written before the flag existed."""
    quality_reason: str | None = None
    """Why a ``poor_fit`` row was flagged (every threshold it crossed)."""
    group_name: str | None = None
    """A group's row (several photos of one person, ``sym3dinv.pipeline.grouping``): the group's name (its
    folder, or its value in the mapping file); a member's failure row: the group it was dropped from. None
    for single photos and for rows written before groups existed."""
    members: tuple[str, ...] | None = None
    """A group's row: the content ids of all its members, sorted (the group's id hashes exactly these).
    None for every other row."""
    members_used: tuple[str, ...] | None = None
    """A group's row: the members its inversion used, in the order of its ``input-<k>`` files; the others
    were dropped (each has a failure row of its own). Empty in the failed row of a group none was left of;
    None when not known (a group's ``worker_lost`` row) and for every row that is not a group's."""

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
        for name in _LIST_FIELDS:  # Arrow and JSON give lists; a row holds tuples (frozen, hashable)
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(str(v) for v in value))

    @property
    def members_dropped(self) -> tuple[str, ...]:
        """A group's members its inversion did not use (their failure rows say why); () for other rows."""
        used = set(self.members_used or ())
        return tuple(m for m in self.members or () if m not in used)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IndexRow:
        """The row of an Arrow record (``table.to_pylist()``; maps arrive as key/value pairs). Columns a
        projected read left out take their defaults; unknown columns are ignored."""
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in record.items() if k in known and v is not None}
        for k in _MAP_FIELDS:
            if k in kw:
                kw[k] = _as_map(kw[k])
        if "camera_label" in kw:
            kw["camera_label"] = tuple(float(x) for x in kw["camera_label"])
        return cls(**kw)

    def manifest_meta(self) -> dict[str, Any]:
        """The JSON-able row fields an attempt's manifest keeps (``meta["row"]``), so a later run can adopt
        the committed attempt with the very row the writer indexed (:meth:`from_manifest`)."""
        return {"config_hash": self.config_hash, "source_uri": self.source_uri, "bytes": self.bytes,
                "camera_label": None if self.camera_label is None else [float(v) for v in self.camera_label],
                "yaw": self.yaw, "pitch": self.pitch, "metrics": dict(self.metrics),
                "stage_seconds": dict(self.stage_seconds), "worker": self.worker, "code_version": self.code_version,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "generator_fingerprint": self.generator_fingerprint, "quality": self.quality,
                "quality_reason": self.quality_reason, "group_name": self.group_name,
                **{k: None if getattr(self, k) is None else list(getattr(self, k)) for k in _LIST_FIELDS}}

    @classmethod
    def from_manifest(cls, item_id: str, item_dir: str, manifest: Mapping[str, Any]) -> IndexRow:
        """The done row of a committed attempt from its manifest (files, attempt, ``meta["row"]``).

        Raises KeyError/TypeError/ValueError when the manifest lacks what a row needs."""
        row = manifest["meta"]["row"]
        if not isinstance(row, Mapping):
            raise TypeError(f"manifest row is {type(row).__name__}, not a mapping")
        started = row.get("started_at")
        label = row.get("camera_label")
        return cls(id=item_id, status=Status.DONE, config_hash=str(row["config_hash"]),
                   attempt=int(manifest["attempt"]), source_uri=row.get("source_uri"), bytes=row.get("bytes"),
                   camera_label=tuple(label) if label else None, yaw=row.get("yaw"), pitch=row.get("pitch"),
                   metrics=dict(row.get("metrics") or {}), stage_seconds=dict(row.get("stage_seconds") or {}),
                   worker=row.get("worker"), code_version=row.get("code_version"), item_dir=item_dir,
                   outputs={k: v["path"] for k, v in manifest["files"].items()},
                   started_at=dt.datetime.fromisoformat(started) if started else None,
                   generator_fingerprint=row.get("generator_fingerprint"), quality=row.get("quality"),
                   quality_reason=row.get("quality_reason"), group_name=row.get("group_name"),
                   members=row.get("members"), members_used=row.get("members_used"))

    def as_record(self) -> dict[str, object]:
        """The row as an Arrow record of :data:`INDEX_SCHEMA` (maps as key/value pairs), field by field, so a
        new column needs only its field here and its entry in the schema."""
        rec: dict[str, object] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in _MAP_FIELDS:
                v = list(v.items())
            elif isinstance(v, Status):
                v = v.value
            elif (f.name == "camera_label" or f.name in _LIST_FIELDS) and v is not None:
                v = list(v)
            rec[f.name] = v
        return rec


_MAP_FIELDS = ("metrics", "stage_seconds", "outputs")
_LIST_FIELDS = ("members", "members_used")


def _as_map(value: Any) -> dict[str, Any]:
    """A map column's value as a dict (Arrow gives a list of (key, value) pairs)."""
    return dict(value.items() if isinstance(value, Mapping) else value)


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
    generator_fingerprint: str | None = None,
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
        generator_fingerprint=generator_fingerprint,
    )


def rows_to_table(rows: Sequence[IndexRow]) -> pa.Table:
    """Arrow table in :data:`INDEX_SCHEMA` (with the version metadata)."""
    return pa.Table.from_pylist([r.as_record() for r in rows], schema=INDEX_SCHEMA)


def new_token() -> str:
    return uuid.uuid4().hex[:12]
