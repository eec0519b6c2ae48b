"""Several processes writing one local store at once; a writer SIGKILLed mid-item; reads during compaction."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from store_helpers import CFG, s3_options, write_done

from sym3dinv.store import RunStore, item_id_from_bytes
from sym3dinv.store.index import list_parts

N_PROCS, SHARDS, ITEMS = 4, 2, 15


def _worker(url: str, proc: int) -> None:
    store = RunStore(url)
    for shard in range(SHARDS):
        with store.index_writer("run1", f"p{proc}-s{shard}") as iw:
            for i in range(ITEMS):
                write_done(store, iw, f"img-{proc}-{shard}-{i}".encode())


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    url = str(tmp_path / "run")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(url, p)) for p in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = RunStore(url)
    t = store.read_index()
    expected = {
        item_id_from_bytes(f"img-{p}-{s}-{i}".encode())
        for p in range(N_PROCS)
        for s in range(SHARDS)
        for i in range(ITEMS)
    }
    assert t.num_rows == len(expected) == N_PROCS * SHARDS * ITEMS
    assert set(t["id"].to_pylist()) == expected
    assert len(list_parts(store)) == N_PROCS * SHARDS
    assert pc.all(pc.equal(t["status"], "done")).as_py()
    assert store.pending([(i, "u") for i in expected], CFG).num_rows == 0


def _crashing_writer(url: str, ready: str) -> None:
    store = RunStore(url)
    item = item_id_from_bytes(b"victim")
    with store.index_writer("run1", "s0") as iw:
        write_done(store, iw, b"survivor")
        iw.flush()
        w = store.item_writer(item, 0)
        w.write_latents({"ws": np.zeros((14, 8), np.float32)})
        Path(ready).write_text(w.item_dir)
        time.sleep(60)  # killed here, before the render, the manifest and the index row
        w.write_metrics({"lpips": 0.0})
        w.commit()


def test_writer_killed_mid_item_is_pending_on_resume(tmp_path: Path) -> None:
    url, ready = str(tmp_path / "run"), tmp_path / "ready"
    proc = mp.get_context("fork").Process(target=_crashing_writer, args=(url, str(ready)))
    proc.start()
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    store = RunStore(url)
    victim, survivor = item_id_from_bytes(b"victim"), item_id_from_bytes(b"survivor")
    partial_dir = ready.read_text()
    assert (tmp_path / "run" / partial_dir / "latents.safetensors").exists()  # partial files exist ...
    assert not store.is_committed(partial_dir)  # ... but no manifest
    t = store.read_index()
    assert t["id"].to_pylist() == [survivor]  # no row at all for the victim
    pend = store.pending([(victim, "v.jpg"), (survivor, "s.jpg")], CFG)
    assert pend["id"].to_pylist() == [victim]
    with store.index_writer("run1", "s0", attempt=1) as iw:  # resume picks it up
        write_done(store, iw, b"victim", attempt=1)
    assert store.pending([(victim, "v.jpg"), (survivor, "s.jpg")], CFG).num_rows == 0


def test_readers_during_compaction_see_consistent_index(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "run"))
    for shard in range(12):
        with store.index_writer("run1", f"s{shard}") as iw:
            for i in range(5):
                write_done(store, iw, f"{shard}-{i}".encode())
    expected = store.latest().select(["id", "status"]).sort_by("id")
    seen, stop = [], threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(RunStore(store.url).latest(("status",)).select(["id", "status"]).sort_by("id"))

    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.05)
    store.compact()
    time.sleep(0.05)
    stop.set()
    th.join()
    assert len(seen) >= 2
    assert all(s.equals(expected) for s in seen)
    assert len(list_parts(store)) == 1 and store.read_index().num_rows == 60


def _s3_worker(url: str, endpoint: str, proc: int) -> None:
    store = RunStore(url, s3_options(endpoint))
    for shard in range(SHARDS):
        with store.index_writer("run1", f"p{proc}-s{shard}") as iw:
            for i in range(5):
                write_done(store, iw, f"s3-{proc}-{shard}-{i}".encode())


def test_concurrent_writers_on_s3(s3_endpoint: str) -> None:
    import uuid

    url = f"s3://runs/conc-{uuid.uuid4().hex}"
    ctx = mp.get_context("spawn")  # fresh s3fs/aiohttp state per process
    procs = [ctx.Process(target=_s3_worker, args=(url, s3_endpoint, p)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = RunStore(url, s3_options(s3_endpoint))
    t = store.read_index()
    expected = {
        item_id_from_bytes(f"s3-{p}-{s}-{i}".encode())
        for p in range(3)
        for s in range(SHARDS)
        for i in range(5)
    }
    assert t.num_rows == len(expected) == 30 and set(t["id"].to_pylist()) == expected
    assert len(list_parts(store)) == 3 * SHARDS
    assert store.pending([(i, "u") for i in expected], CFG, verify_outputs=True).num_rows == 0
