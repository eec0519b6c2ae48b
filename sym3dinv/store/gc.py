"""Garbage collection of a run store (``sym3dinv store gc``): what no reader will ever need.

An attempt folder ``items/<id>/a<n>-<token>/`` is garbage when all of these hold:

* it has no ``_MANIFEST.json``: never committed (a killed worker, a failed write). Committed folders are
  kept even when no index row refers to them: a later run adopts them instead of inverting again;
* no index row refers to it (``item_dir`` or an output path, rows of every run and attempt);
* its item has no live lease: nobody may be writing it now;
* its newest file is older than ``min_age_s`` (default: the lease duration), for writers that take no
  lease (``ItemProcessor`` used without one) and for clocks that disagree a little.

Lease objects that have expired are garbage too (a killed run's), and so are local temp files
(``.tmp-*``, ``.probe-*``) of the index folder older than ``min_age_s``. The index is read whole and
strictly first: a corrupt part, or one of a newer schema, might refer to a folder, so gc refuses then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import posixpath
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sym3dinv.config.store import LeaseConfig
from sym3dinv.store.index import read_index
from sym3dinv.store.layout import INDEX_DIR, ITEMS_DIR, MANIFEST
from sym3dinv.store.leases import Lease, lease_files

if TYPE_CHECKING:
    from sym3dinv.store.root import StoreRoot

log = logging.getLogger(__name__)
Kind = Literal["attempt", "lease", "temp"]


@dataclass(frozen=True)
class Garbage:
    """One thing :func:`collect` removes: an attempt folder, a lease object or a temp file."""

    path: str
    """Relative to the store root."""
    kind: Kind
    files: int
    bytes: int
    reason: str


@dataclass(frozen=True)
class GcPlan:
    """What :func:`plan_gc` found: the garbage, and how many attempt folders it kept, by reason."""

    remove: tuple[Garbage, ...]
    kept: Mapping[str, int]
    """``committed``, ``referenced``, ``leased``, ``recent``: attempt folders kept for that reason."""

    @property
    def bytes(self) -> int:
        return sum(g.bytes for g in self.remove)

    def count(self, kind: Kind) -> int:
        return sum(g.kind == kind for g in self.remove)


def plan_gc(store: StoreRoot, *, min_age_s: float | None = None, now: float | None = None) -> GcPlan:
    """The garbage of ``store`` (module doc); reads only: listings, the index, the lease objects."""
    min_age = LeaseConfig().duration_s if min_age_s is None else float(min_age_s)
    now = time.time() if now is None else now
    referenced = _referenced(store)
    remove: list[Garbage] = []
    leased: set[str] = set()
    for rel, info in sorted(lease_files(store).items()):
        lease = _lease(store, rel)
        if lease is not None and lease.live(now):
            leased.add(lease.item_id)
        elif lease is not None or now - _mtime(info, now) >= min_age:
            why = f"expired {now - lease.expires_at:.0f} s ago (run {lease.owner})" if lease else "unreadable"
            remove.append(Garbage(rel, "lease", 1, int(info.get("size") or 0), why))
    kept: dict[str, int] = defaultdict(int)
    for folder, files in sorted(_attempt_folders(store).items()):
        item_id = folder.split("/")[1]
        if posixpath.join(folder, MANIFEST) in files:
            kept["committed"] += 1
        elif folder in referenced:
            kept["referenced"] += 1
        elif item_id in leased:
            kept["leased"] += 1
        elif now - max(_mtime(i, now) for i in files.values()) < min_age:
            kept["recent"] += 1
        else:
            size = sum(int(i.get("size") or 0) for i in files.values())
            remove.append(Garbage(folder, "attempt", len(files), size, "uncommitted, no index row, no live lease"))
    for rel, info in sorted(store.find(INDEX_DIR).items()):
        name = posixpath.basename(rel)
        if name.startswith((".tmp-", ".probe-")) and now - _mtime(info, now) >= min_age:
            remove.append(Garbage(rel, "temp", 1, int(info.get("size") or 0), "left by an interrupted write"))
    return GcPlan(tuple(remove), dict(kept))


def collect(store: StoreRoot, plan: GcPlan) -> int:
    """Remove what ``plan`` lists (folders recursively); returns how many entries were removed."""
    for g in plan.remove:
        store.remove(g.path, recursive=g.kind == "attempt")
        log.info("gc removed %s (%s: %s)", g.path, g.kind, g.reason)
        if store.is_local:  # object stores have no empty folders; local ones would pile up
            _prune_empty(store, posixpath.dirname(g.path))
    return len(plan.remove)


def _referenced(store: StoreRoot) -> set[str]:
    """Attempt folders that index rows refer to (strict read: raises when a part cannot be read)."""
    table = read_index(store, ["item_dir", "outputs"], strict=True).table
    out = {d for d in table["item_dir"].to_pylist() if d}
    for outputs in table["outputs"].to_pylist():
        for _key, path in outputs or ():
            if path:
                out.add(posixpath.dirname(path))
    return out


def _attempt_folders(store: StoreRoot) -> dict[str, dict[str, dict[str, Any]]]:
    """``items/<id>/<attempt>`` -> its files (path -> info), from one recursive listing of ``items/``."""
    folders: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for rel, info in store.find(ITEMS_DIR).items():
        parts = rel.split("/")
        if len(parts) >= 4 and parts[0] == ITEMS_DIR:
            folders["/".join(parts[:3])][rel] = info
    return folders


def _lease(store: StoreRoot, rel: str) -> Lease | None:
    try:
        return Lease.from_json(store.cat(rel))
    except (FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        return None


def _mtime(info: Mapping[str, Any], default: float) -> float:
    """Modification time (epoch s) from fsspec info: local ``mtime``, S3 ``LastModified``, memory ``created``;
    ``default`` (now: counts as recent) when the filesystem gives none."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
        if isinstance(value, int | float):
            return float(value)
    return default


def _prune_empty(store: StoreRoot, rel: str) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone
        os.rmdir(store.abspath(rel))
