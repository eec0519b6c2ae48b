"""ActorPool without Prefect: a really killed actor's item becomes ``worker_lost`` after max attempts."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from sym3dinv.pipeline import list_inputs
from sym3dinv.store import RunStore
from tasks.actors import ActorPool, PoolSpec
from tests.plugin import HANG_MARKER_ENV, HANGING_LOSSES, make_folder, tiny_pipeline, wait_for_pid


def test_item_on_a_dying_worker_is_recorded_worker_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        tiny_checkpoint: str) -> None:
    import ray

    folder = make_folder(tmp_path / "in", n_good=1)
    marker = tmp_path / "hang.pid"
    monkeypatch.setenv(HANG_MARKER_ENV, str(marker))  # head0 is the one item that reaches the losses
    config = tiny_pipeline(tiny_checkpoint, losses=HANGING_LOSSES)
    items = [i for i in list_inputs(str(folder)) if i.uri.endswith(("head0.png", "tiny.png"))]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        pool = ActorPool(config, PoolSpec(num_actors=1, in_flight_per_actor=1, max_attempts=1))
        out: list = []
        th = threading.Thread(target=lambda: out.extend(pool.run(items, RunStore(str(tmp_path / "s")))))
        th.start()
        os.kill(wait_for_pid(marker), signal.SIGKILL)
        th.join(timeout=180)
        assert not th.is_alive()
        assert pool.restarts == 1
        pool.shutdown()
    finally:
        ray.shutdown()
    rows = {Path(r.source_uri).name: r for r in out}
    assert set(rows) == {"head0.png", "tiny.png"}  # nothing dropped
    assert rows["head0.png"].error_class == "worker_lost" and "died 1 times" in rows["head0.png"].error_message
    assert rows["tiny.png"].error_class == "too_small"  # one in flight: never on the killed actor
