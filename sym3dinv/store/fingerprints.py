"""Which generator made a store's results: the ``generator_fingerprint`` of its done rows, checked against the
generator in use (resume, ``dataset build``, ``edit apply``).

Only strings are compared here (the store never loads models); the fingerprint itself is
:func:`sym3dinv.generator.fingerprint.generator_fingerprint`. Rows written before fingerprints were recorded
hold None: nothing tells which generator made them, so they are accepted (with a log line), not refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from sym3dinv.errors import GeneratorMismatchError
from sym3dinv.store import query as _query
from sym3dinv.store.schema import IndexRow, Status

if TYPE_CHECKING:
    from sym3dinv.store.store import RunStore

log = logging.getLogger(__name__)
_COLUMNS = ("id", "status", "config_hash", "finished_at", "attempt", "generator_fingerprint")


def done_fingerprints(store: RunStore, config_hash: str) -> dict[str | None, int]:
    """Fingerprint -> number of items whose latest row under ``config_hash`` is done (None: rows written
    before fingerprints were recorded)."""
    table = store.read_index(list(_COLUMNS))
    if not table.num_rows:
        return {}
    last = _query.latest(table.filter(pc.equal(table["config_hash"], config_hash)))
    last = last.filter(pc.equal(last["status"], Status.DONE.value))
    counts: dict[str | None, int] = {}
    for fp in last["generator_fingerprint"].to_pylist():
        counts[fp] = counts.get(fp, 0) + 1
    return counts


def _others(found: Mapping[str | None, int], current: str) -> str:
    return ", ".join(f"{n} by generator {fp}" for fp, n in sorted(found.items(), key=lambda kv: str(kv[0]))
                     if fp is not None and fp != current)


def check_resume(store: RunStore, config_hash: str, current: str, source: str) -> None:
    """Refuse (:class:`GeneratorMismatchError`) to resume ``store`` under ``config_hash`` with the generator
    of fingerprint ``current`` when done rows of that config were made by another generator."""
    found = done_fingerprints(store, config_hash)
    others = _others(found, current)
    if others:
        raise GeneratorMismatchError(
            f"refusing to resume {store.url}: under config {config_hash} its done items were made {others}, but "
            f"the generator in use ({source}) has fingerprint {current}; resuming would mix two generators' results. "
            "Pass --new-generator (ExecutionConfig.new_generator) to invert them again under this generator "
            "(the old rows stay), or use another --out")
    if found.get(None):
        log.warning("%d done items of %s under config %s were written before generator fingerprints were "
                    "recorded; they are taken as made by this generator (%s)", found[None], store.url, config_hash,
                    current)


def check_rows(rows: Iterable[IndexRow], current: str, source: str, *, what: str, force: bool = False) -> None:
    """Refuse (unless ``force``: then log) to use done ``rows`` made by another generator than the one of
    fingerprint ``current`` (``what``: the command, for the message)."""
    found: dict[str | None, int] = {}
    for r in rows:
        found[r.generator_fingerprint] = found.get(r.generator_fingerprint, 0) + 1
    others = _others(found, current)
    if not others:
        return
    message = (f"{what}: the items were inverted {others}, but the generator given ({source}) has fingerprint "
               f"{current}; their latents and weight deltas belong to that other generator, so renders would be "
               "wrong")
    if not force:
        raise GeneratorMismatchError(message + ". Give the generator they were inverted with, or --force to use "
                                     "this one anyway")
    log.warning("%s (--force: going on)", message)
