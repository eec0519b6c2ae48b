"""``sym3dinv store gc``: ``--dry-run`` lists the garbage and removes nothing; ``gc`` then removes exactly
that and leaves every referenced file in place (local disk, memory://, moto S3)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from store_helpers import CFG, write_done
from typer.testing import CliRunner

from sym3dinv.cli import app
from sym3dinv.config.store import LeaseConfig
from sym3dinv.store import IndexRow, RunStore, Status, item_id_from_bytes
from sym3dinv.store.gc import plan_gc
from sym3dinv.store.leases import acquire, lease_path

OLD = LeaseConfig(duration_s=1.0, heartbeat_s=0.5)


def _uncommitted(store: RunStore, item_id: str) -> str:
    """An attempt folder whose writer died before its manifest (the ``with`` block raised)."""
    with pytest.raises(RuntimeError), store.item_writer(item_id, 0) as w:
        w.write_latents({"ws": np.zeros((2, 4), np.float32)})
        w.write_metrics({"lpips": 1.0})
        raise RuntimeError("killed")
    return w.item_dir


def _build(store: RunStore) -> tuple[set[str], set[str]]:
    """A store with one of each case; (paths gc must remove, attempt folders it must keep)."""
    with store.index_writer("run-a", "s0") as index:
        done = [write_done(store, index, f"img{i}".encode()) for i in range(2)]  # committed + indexed
        index.add(IndexRow(id=item_id_from_bytes(b"failed"), status=Status.FAILED, config_hash=CFG,
                           error_class="internal_error", item_dir=_uncommitted(store, item_id_from_bytes(b"failed"))))
    keep = {r for _, r in _dirs(store) if any(r.startswith(f"items/{i}/") for i in done)}
    keep.add(next(r for i, r in _dirs(store) if i == item_id_from_bytes(b"failed")))  # referenced by a row
    adoptable = item_id_from_bytes(b"adoptable")
    with store.item_writer(adoptable, 0) as w:  # committed, never indexed: a later run adopts it
        w.write_metrics({"lpips": 0.2})
    keep.add(w.item_dir)
    busy = item_id_from_bytes(b"busy")
    keep.add(_uncommitted(store, busy))
    assert acquire(store, busy, "run-b", "w", LeaseConfig()).lease is not None  # live: being written now
    garbage = {_uncommitted(store, item_id_from_bytes(b"killed"))}
    gone = item_id_from_bytes(b"expired")
    garbage.add(_uncommitted(store, gone))
    assert acquire(store, gone, "run-c", "w", OLD, clock=lambda: time.time() - 10).lease is not None
    garbage.add(lease_path(gone, 0))
    return garbage, keep


def _dirs(store: RunStore) -> set[tuple[str, str]]:
    return {(p.split("/")[1], "/".join(p.split("/")[:3])) for p in store.find("items")}


def _all(store: RunStore) -> set[str]:
    return {p for top in ("items", "index", "leases") for p in store.find(top)}


def _options(store: RunStore, request: pytest.FixtureRequest) -> list[str]:
    return ["--endpoint-url", request.getfixturevalue("s3_endpoint")] if store.url.startswith("s3://") else []


def test_gc_dry_run_then_gc(store: RunStore, request: pytest.FixtureRequest) -> None:
    garbage, keep = _build(store)
    before = _all(store)
    url = store.url
    runner = CliRunner()
    dry = runner.invoke(app, ["store", "gc", "--dry-run", "--min-age-s", "0", url, *_options(store, request)])
    assert dry.exit_code == 0, dry.output
    listed = {line.split()[2] for line in dry.output.splitlines() if line.startswith("would remove ")
              and "[" in line}
    assert listed == garbage, dry.output
    assert "would remove 2 attempt folders, 1 expired leases, 0 temp files" in dry.output
    assert "1 committed" not in dry.output and "3 committed" in dry.output and "1 leased" in dry.output
    assert _all(store) == before  # a dry run removes nothing

    done = runner.invoke(app, ["store", "gc", "--min-age-s", "0", url, *_options(store, request)])
    assert done.exit_code == 0, done.output
    assert "removed 2 attempt folders, 1 expired leases" in done.output
    after = _all(store)
    removed = before - after
    assert removed and all(any(p == g or p.startswith(g + "/") for g in garbage) for p in removed)
    assert {r for _, r in _dirs(store)} == keep  # every referenced, committed or leased folder stays, whole
    assert all(p in after for p in before if any(p.startswith(k + "/") for k in keep))
    assert [p for p in after if p.startswith("index/")] == [p for p in before if p.startswith("index/")]
    assert store.latest().num_rows == 3 and len(store.done_rows()) == 2  # the index reads as before
    again = runner.invoke(app, ["store", "gc", "--min-age-s", "0", url, *_options(store, request)])
    assert "removed 0 attempt folders, 0 expired leases" in again.output


def test_recent_uncommitted_folders_are_kept_by_default(store: RunStore) -> None:
    """A writer that takes no lease: its folder is young, so the default minimum age keeps it."""
    _uncommitted(store, item_id_from_bytes(b"young"))
    plan = plan_gc(store)
    assert plan.remove == () and plan.kept == {"recent": 1}
    assert plan_gc(store, min_age_s=0).count("attempt") == 1


def test_gc_refuses_when_the_index_cannot_be_read(tmp_path) -> None:  # noqa: ANN001
    store = RunStore(str(tmp_path / "s"))
    _uncommitted(store, item_id_from_bytes(b"x"))
    store.write("index/part-run-s0-a0-deadbeef.parquet", b"not parquet")  # it might refer to the folder
    r = CliRunner().invoke(app, ["store", "gc", "--min-age-s", "0", store.url])
    assert r.exit_code == 2 and "not collecting garbage" in r.output
    assert len(_dirs(store)) == 1
