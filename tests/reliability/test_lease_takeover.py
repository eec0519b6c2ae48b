"""A run killed mid-item: its lease keeps other runs off the item until it expires, then a later run takes
the item over. Nothing is lost and nothing is inverted twice.

The first run (its own process, the real flow) inverts with losses that hang in its worker on the first
item: the item is leased, and the worker's heartbeat thread renews the lease while the inversion hangs.
The test SIGKILLs the run (flow process, its Ray, the hung worker), starts a second run at once (the lease
is still live: the item is left alone), waits for the expiry, and starts a third, which takes it over."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.config.store import LeaseConfig
from sym3dinv.store import RunStore
from sym3dinv.store.leases import Lease
from tests.plugin import FAST, HANG_MARKER_ENV, HANGING_LOSSES, make_folder, tiny_pipeline, wait_for_pid
from tests.reliability.test_concurrent_runs import committed_attempts
from tests.reliability.test_flow_kill import REPO, RUNNER, _env

LEASE = LeaseConfig(duration_s=20.0, heartbeat_s=5.0)
STEPS = 4


def _leases(store: RunStore) -> list[Lease]:
    return [Lease.from_json(store.cat(p)) for p in sorted(store.find("leases"))]


def _run(src: Path, out: Path, ckpt: str) -> object:
    # HANGING_LOSSES as in the killed run (same config hash); this test's Ray workers lack the marker
    # variable, so they do not hang
    config = tiny_pipeline(ckpt, {**FAST, "stage1.steps": STEPS}, render=RenderSpec(((0.0, 0.0),)),
                           losses=HANGING_LOSSES)
    return bulk_invert(input=str(src), out=str(out), config=config,
                       execution=ExecutionConfig(shard_size=8, num_actors=1, lease=LEASE))


def test_killed_run_lease_expires_and_a_later_run_takes_over(tmp_path: Path, tiny_checkpoint: str, ray_local: None,
                                                             figures: dict[str, object]) -> None:
    src = make_folder(tmp_path / "in", n_good=3)  # 3 renders + 3 bad files
    out = tmp_path / "store"
    marker = tmp_path / "hang.pid"
    env = {**_env(), HANG_MARKER_ENV: str(marker)}
    log = tmp_path / "run1.log"
    first = subprocess.Popen([sys.executable, str(RUNNER), str(src), str(out), tiny_checkpoint, "8", str(STEPS),
                              str(LEASE.duration_s), HANGING_LOSSES], cwd=REPO, env=env, stdout=log.open("wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        hung = wait_for_pid(marker, timeout=240)
        store = RunStore(str(out))
        (held,) = _leases(store)  # the hung item, leased by the first run
        time.sleep(LEASE.heartbeat_s * 2 + 1)
        (renewed,) = _leases(store)
        assert renewed.token == held.token and renewed.expires_at >= held.expires_at + LEASE.heartbeat_s  # heartbeat
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)  # flow process and its Ray
        with contextlib.suppress(ProcessLookupError, NameError):
            os.kill(hung, signal.SIGKILL)
        first.wait(30)
    killed_at = time.time()
    assert committed_attempts(store) == {}  # the killed run committed nothing

    second = _run(src, out, tiny_checkpoint)  # at once: the killed run's lease is still live
    assert time.time() < renewed.expires_at, "the second run took longer than the lease; raise LEASE.duration_s"
    latest = {r["id"]: r["status"] for r in store.latest().to_pylist()}
    assert held.item_id not in latest  # left alone: no row, not inverted
    assert collections.Counter(latest.values()) == {"done": 2, "failed": 3}
    assert [lease.item_id for lease in _leases(store)] == [held.item_id]
    assert second.leased == 1  # type: ignore[attr-defined]

    time.sleep(max(0.0, renewed.expires_at - time.time()) + 0.5)
    third = _run(src, out, tiny_checkpoint)
    latest_rows = store.latest().to_pylist()
    assert len(latest_rows) == 6 and collections.Counter(r["status"] for r in latest_rows) == {"done": 3, "failed": 3}
    taken = next(r for r in latest_rows if r["id"] == held.item_id)
    assert taken["status"] == "done" and taken["run_id"] == third.run_id  # type: ignore[attr-defined]
    attempts = committed_attempts(store)
    assert len(attempts) == 3 and set(attempts.values()) == {1}  # nothing lost, nothing inverted twice
    assert store.find("leases") == {}
    figures.update(inputs=6, lease_duration_s=LEASE.duration_s, lease_left_at_kill_s=round(renewed.expires_at - killed_at, 1),
                   heartbeat_extension_s=round(renewed.expires_at - held.expires_at, 1),
                   second_run_processed=second.processed, third_run_processed=third.processed,  # type: ignore[attr-defined]
                   committed_attempts_per_item=1)
