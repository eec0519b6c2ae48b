"""Per-item leases (``sym3dinv.store.leases``) on local disk, memory:// and a real S3 API (moto server):
conditional create, skip of a live lease, takeover of an expired one, heartbeat renewal, release."""

from __future__ import annotations

import threading
import time

import pytest

from sym3dinv.config.store import LeaseConfig
from sym3dinv.errors import ConfigError
from sym3dinv.store import RunStore
from sym3dinv.store.leases import (
    LeaseKeeper,
    acquire,
    current_lease,
    generations,
    lease_path,
    read_lease,
    release,
    renew,
)

ITEM = "ab" * 16
CFG = LeaseConfig(duration_s=60.0, heartbeat_s=10.0)


class Clock:
    """A wall clock the test moves by hand (expiry without waiting)."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_create_exclusive_creates_once(store: RunStore) -> None:
    assert store.create_exclusive("leases/x/g00000000.json", b"first") is True
    assert store.create_exclusive("leases/x/g00000000.json", b"second") is False
    assert store.cat("leases/x/g00000000.json") == b"first"
    assert not [p for p in store.find("leases") if ".tmp-" in p]  # the local temp file is gone


def test_live_lease_of_another_run_is_skipped(store: RunStore) -> None:
    clock = Clock()
    a = acquire(store, ITEM, "run-a", "w1", CFG, clock=clock)
    assert a.lease is not None and a.lease.generation == 0 and a.holder is None
    clock.t += 59
    b = acquire(store, ITEM, "run-b", "w2", CFG, clock=clock)
    assert b.lease is None and b.holder == a.lease
    assert "run run-a" in b.holder.describe(clock.t)
    assert generations(store, ITEM) == [0]


def test_expired_lease_is_taken_over_and_the_old_holder_loses_it(store: RunStore) -> None:
    clock = Clock()
    a = acquire(store, ITEM, "run-a", "w1", CFG, clock=clock).lease
    assert a is not None
    clock.t += 61  # run-a was killed: no heartbeat
    b = acquire(store, ITEM, "run-b", "w2", CFG, clock=clock).lease
    assert b is not None and b.generation == 1 and b.owner == "run-b"
    assert generations(store, ITEM) == [1]  # the superseded generation is removed
    assert renew(store, a, CFG, clock=clock) is None  # a stalled holder finds out at its next heartbeat
    release(store, a)  # and its release leaves the new holder's lease alone
    assert current_lease(store, ITEM)[1] == b


def test_own_run_takes_over_at_once(store: RunStore) -> None:
    """A retry of the same run (its worker died) must not wait for its own lease to expire."""
    clock = Clock()
    a = acquire(store, ITEM, "run-a", "w1", CFG, clock=clock).lease
    again = acquire(store, ITEM, "run-a", "w2", CFG, clock=clock).lease
    assert a is not None and again is not None and again.generation == a.generation + 1 and again.worker == "w2"


def test_renew_and_release(store: RunStore) -> None:
    clock = Clock()
    a = acquire(store, ITEM, "run-a", "w1", CFG, clock=clock).lease
    assert a is not None
    clock.t += 50
    renewed = renew(store, a, CFG, clock=clock)
    assert renewed is not None and renewed.expires_at == clock.t + 60
    assert read_lease(store, ITEM, 0) == renewed
    clock.t += 50  # past the first expiry, within the renewed one
    assert acquire(store, ITEM, "run-b", "w2", CFG, clock=clock).lease is None
    release(store, renewed)
    assert generations(store, ITEM) == []
    b = acquire(store, ITEM, "run-b", "w2", CFG, clock=clock).lease
    assert b is not None and b.generation == 0


def test_unreadable_lease_counts_as_expired(store: RunStore) -> None:
    store.write(lease_path(ITEM, 3), b"{not json")
    got = acquire(store, ITEM, "run-a", "w1", CFG).lease
    assert got is not None and got.generation == 4 and generations(store, ITEM) == [4]


def test_keeper_heartbeat_keeps_the_lease_live_and_releases_on_close(store: RunStore) -> None:
    cfg = LeaseConfig(duration_s=1.0, heartbeat_s=0.25)
    with LeaseKeeper(store, "run-a", "w1", cfg) as keeper:
        first = keeper.acquire(ITEM).lease
        assert first is not None
        time.sleep(2.0)  # twice the duration: alive only through renewals
        assert keeper.renewals >= 3
        stored = read_lease(store, ITEM, first.generation)
        assert stored is not None and stored.expires_at > first.expires_at + 0.5
        assert acquire(store, ITEM, "run-b", "w2", cfg).lease is None  # still live for others
        assert keeper.lost == []
    assert generations(store, ITEM) == []  # close() released it
    assert keeper.held() == {}


def test_keeper_notices_a_takeover(store: RunStore) -> None:
    clock = Clock()
    keeper = LeaseKeeper(store, "run-a", "w1", CFG, clock=clock)
    assert keeper.acquire(ITEM).lease is not None
    clock.t += 61
    b = acquire(store, ITEM, "run-b", "w2", CFG, clock=clock).lease
    keeper.renew_all()
    assert keeper.lost == [ITEM] and keeper.held() == {}
    keeper.close()
    assert current_lease(store, ITEM)[1] == b  # closing did not release the other run's lease


def test_racing_runs_one_wins(store: RunStore) -> None:
    """Eight runs take one free item at the same moment: exactly one gets it."""
    if store.url.startswith("memory://"):
        pytest.skip("memory:// has no conditional create across threads (one-process scratch store)")
    barrier = threading.Barrier(8)
    won: list[str] = []

    def take(owner: str) -> None:
        barrier.wait()
        if acquire(store, ITEM, owner, "w", CFG).lease is not None:
            won.append(owner)

    threads = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1, won


def test_lease_config_is_checked() -> None:
    assert LeaseConfig().duration_s == 900.0 and LeaseConfig().heartbeat_s == 60.0
    with pytest.raises(ConfigError, match="renewed at least twice"):
        LeaseConfig(duration_s=10, heartbeat_s=6)
