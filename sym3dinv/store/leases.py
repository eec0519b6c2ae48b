"""Per-item leases: at most one run works on an item at a time, on local disk and on S3.

A lease is a small JSON object ``leases/<item id>/g<generation>.json`` (owner run id, worker, token,
expiry); the highest generation of an item is its current lease. Only one conditional write is needed,
the store's exclusive create (:meth:`StoreRoot.create_exclusive`: a hard link locally, ``If-None-Match: *``
on S3), and it serves both cases:

* **take** (no lease, or an expired one, or this run's own from a worker that died): create generation
  ``current + 1``. Of several runs racing for it exactly one create succeeds; the winner re-reads its
  object (a retried create that had landed, a store that ignores the condition) and removes the older
  generations. Taking over an expired lease is the same create, so it is as safe as the first take.
* **skip**: the current lease is live and another owner's; the caller leaves the item for a later run.
* **renew** (heartbeat, :class:`LeaseKeeper`): rewrite the own generation with a new expiry, unless a higher
  generation exists or the object no longer holds our token: then the lease was taken over ("lost").
* **release**: delete the own generation, after the item's commit or failure.

A lease says only that nobody else works on the item now: the previous holder may have committed and
released it a moment ago, so after taking a lease the caller looks for a committed attempt first (the
pipeline's adoption) and inverts only when there is none. Expiry compares wall clocks of different
machines: they must agree to well within the lease duration (NTP does). docs/store.md "Leases".
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sym3dinv.config.store import LeaseConfig
from sym3dinv.errors import StoreError
from sym3dinv.store.ids import safe_relpath, validate_item_id
from sym3dinv.store.layout import LEASES_DIR
from sym3dinv.store.schema import IndexRow, Status, new_token

if TYPE_CHECKING:
    from sym3dinv.store.root import StoreRoot

log = logging.getLogger(__name__)
Clock = Callable[[], float]
LEASE_FORMAT = "sym3dinv-lease/1"
LEASED = "leased"
"""Error class of the ``skipped`` row of an item another run holds."""


@dataclass(frozen=True)
class Lease:
    """One generation of an item's lease; times are seconds since the epoch (UTC wall clock)."""

    item_id: str
    generation: int
    owner: str
    """The run that holds it (the flow's run id)."""
    worker: str
    """The process that holds it (``host:pid:device``)."""
    token: str
    """Random; tells this holder's object from another's at the same generation."""
    acquired_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        return now < self.expires_at

    def to_json(self) -> bytes:
        doc = {"format": LEASE_FORMAT, **vars(self), "expires": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))}  # for people reading the store
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Lease:
        """Raises ValueError/KeyError/TypeError on anything that is not a lease."""
        doc = json.loads(data)
        return cls(item_id=str(doc["item_id"]), generation=int(doc["generation"]), owner=str(doc["owner"]),
                   worker=str(doc["worker"]), token=str(doc["token"]), acquired_at=float(doc["acquired_at"]),
                   expires_at=float(doc["expires_at"]))

    def describe(self, now: float) -> str:
        return f"run {self.owner} (worker {self.worker}) for {self.expires_at - now:.0f} s more"


@dataclass(frozen=True)
class Acquired:
    """What :func:`acquire` found: ``lease`` when this caller took it, else ``holder``, the live lease of
    another run."""

    lease: Lease | None
    holder: Lease | None = None


def lease_dir(item_id: str) -> str:
    return safe_relpath(LEASES_DIR, validate_item_id(item_id))


def lease_path(item_id: str, generation: int) -> str:
    return safe_relpath(lease_dir(item_id), f"g{generation:08d}.json")


def generations(root: StoreRoot, item_id: str) -> list[int]:
    """The lease generations stored for ``item_id``, ascending (one listing)."""
    out = []
    for name in root.names(lease_dir(item_id), ".json"):
        stem = name[:-len(".json")]
        if stem.startswith("g") and stem[1:].isdigit():
            out.append(int(stem[1:]))
    return sorted(out)


def read_lease(root: StoreRoot, item_id: str, generation: int) -> Lease | None:
    """The lease object of one generation; None when it is gone or unreadable (counted as expired)."""
    try:
        lease = Lease.from_json(root.cat(lease_path(item_id, generation)))
    except (FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        return None
    return lease if lease.item_id == item_id and lease.generation == generation else None


def current_lease(root: StoreRoot, item_id: str) -> tuple[int, Lease | None]:
    """(highest generation or -1, its lease or None when unreadable/absent)."""
    gens = generations(root, item_id)
    if not gens:
        return -1, None
    return gens[-1], read_lease(root, item_id, gens[-1])


def acquire(root: StoreRoot, item_id: str, owner: str, worker: str, config: LeaseConfig, *,
            clock: Clock = time.time, tries: int = 3) -> Acquired:
    """Take the lease of ``item_id`` for ``owner`` unless another owner holds a live one (module doc)."""
    for _ in range(tries):
        gens = generations(root, item_id)
        top_gen = gens[-1] if gens else -1
        top = read_lease(root, item_id, top_gen) if gens else None
        now = clock()
        if top is not None and top.live(now) and top.owner != owner:
            return Acquired(None, top)
        if top is not None and top.owner != owner:
            log.info("item %s: lease of run %s expired %.0f s ago; taking it over", item_id, top.owner,
                     now - top.expires_at)
        mine = Lease(item_id, top_gen + 1, owner, worker, new_token(), now, now + config.duration_s)
        root.create_exclusive(lease_path(item_id, mine.generation), mine.to_json())
        got = read_lease(root, item_id, mine.generation)
        if got is not None and got.token == mine.token:
            for g in gens:  # superseded generations
                _remove_quietly(root, lease_path(item_id, g))
            return Acquired(mine)
        # another run created this generation first: look again (it is live, or it was released)
    top_gen, top = current_lease(root, item_id)
    return Acquired(None, top if top is not None and top.live(clock()) else None)


def renew(root: StoreRoot, lease: Lease, config: LeaseConfig, *, clock: Clock = time.time) -> Lease | None:
    """``lease`` with a new expiry, written; None when it was lost (taken over or removed)."""
    if any(g > lease.generation for g in generations(root, lease.item_id)):
        return None
    stored = read_lease(root, lease.item_id, lease.generation)
    if stored is None or stored.token != lease.token:
        return None
    new = replace(lease, expires_at=clock() + config.duration_s)
    root.atomic_write(lease_path(lease.item_id, lease.generation), new.to_json())
    return new


def release(root: StoreRoot, lease: Lease) -> None:
    """Delete ``lease`` if it is still ours (a taken-over generation is left to its new holder)."""
    stored = read_lease(root, lease.item_id, lease.generation)
    if stored is not None and stored.token == lease.token:
        root.remove(lease_path(lease.item_id, lease.generation))


def _remove_quietly(root: StoreRoot, rel: str) -> None:
    try:
        root.remove(rel)
    except StoreError as exc:  # litter only: `store gc` removes expired leases too
        log.warning("could not remove superseded lease %s: %s", rel, exc)


class LeaseKeeper:
    """The leases one worker holds, renewed by a daemon thread every ``heartbeat_s`` until released.

    Use as ``with LeaseKeeper(store, run_id, worker, config) as keeper:``; leaving the block releases
    whatever is still held. Store errors of a renewal are logged and retried at the next beat (the lease
    has ``duration_s / heartbeat_s`` beats of slack); a lease found taken over is dropped and listed in
    :attr:`lost`. ``renewals`` counts the renewals written (tests read it)."""

    def __init__(self, root: StoreRoot, owner: str, worker: str, config: LeaseConfig, *,
                 clock: Clock = time.time) -> None:
        self.root, self.owner, self.worker, self.config, self.clock = root, owner, worker, config, clock
        self.renewals = 0
        self.lost: list[str] = []
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()  # guards _held
        self._io = threading.Lock()  # a renewal and a release of one lease never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, item_id: str) -> Acquired:
        got = acquire(self.root, item_id, self.owner, self.worker, self.config, clock=self.clock)
        if got.lease is not None:
            with self._lock:
                self._held[item_id] = got.lease
                if self._thread is None:
                    self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
                    self._thread.start()
        return got

    def held(self) -> dict[str, Lease]:
        with self._lock:
            return dict(self._held)

    def release(self, item_id: str) -> None:
        """Release the lease of ``item_id`` if held; a store error is logged (the lease then expires)."""
        with self._io:
            with self._lock:
                lease = self._held.pop(item_id, None)
            if lease is None:
                return
            try:
                release(self.root, lease)
            except StoreError as exc:
                log.warning("item %s: could not release its lease (%s); it expires in %.0f s", item_id, exc,
                            lease.expires_at - self.clock())

    def renew_all(self) -> None:
        """One heartbeat: renew every held lease (what the thread does every ``heartbeat_s``)."""
        for item_id in list(self.held()):
            with self._io:
                lease = self.held().get(item_id)
                if lease is None:  # released since the snapshot
                    continue
                try:
                    new = renew(self.root, lease, self.config, clock=self.clock)
                except (StoreError, OSError) as exc:
                    log.warning("item %s: lease renewal failed (%s); retrying at the next heartbeat", item_id, exc)
                    continue
                with self._lock:
                    if new is None:
                        self._held.pop(item_id, None)
                        self.lost.append(item_id)
                    else:
                        self._held[item_id] = new
                        self.renewals += 1
            if new is None:
                log.warning("item %s: its lease was taken over by another run (this worker stalled longer than "
                            "%.0f s); that run may redo the item", item_id, self.config.duration_s)

    def _beat(self) -> None:
        while not self._stop.wait(self.config.heartbeat_s):
            self.renew_all()

    def close(self) -> None:
        """Stop the heartbeat and release every lease still held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for item_id in list(self.held()):
            self.release(item_id)

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def leased_row(item_id: str, holder: Lease | None, **fields: Any) -> IndexRow:
    """The ``skipped`` row (error class ``leased``) of an item another run holds. Never indexed: the
    holder's own row must stay the item's latest (``tasks/shards.py`` drops these before writing a part)."""
    who = holder.describe(time.time()) if holder is not None else "another run"
    log.info("item %s is leased by %s; leaving it to that run", item_id, who)
    return IndexRow(id=item_id, status=Status.SKIPPED, error_class=LEASED, error_message=f"leased by {who}",
                    **fields)


def lease_files(root: StoreRoot) -> dict[str, dict[str, Any]]:
    """Every lease object of the store (root-relative path -> fsspec info), for ``store gc``."""
    return {p: i for p, i in root.find(LEASES_DIR).items() if posixpath.basename(p).endswith(".json")}
