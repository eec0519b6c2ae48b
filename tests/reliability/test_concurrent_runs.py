"""Two ``bulk-invert`` runs on the same store at the same time (same inputs, same config), on local disk
and on a real S3 API (moto server).

Both finish; every input ends with one latest row; no part is corrupt; **every item is inverted exactly
once** (one committed attempt per done item). Each run takes an item's lease before inverting it
(``sym3dinv.store.leases``): an item the other run holds is left to it (no row from this run), and after
taking a lease a run adopts an attempt the other committed meanwhile instead of redoing it. Before the
leases the same test measured 12 inversions for 10 items (2 inverted twice), bounded by s * H(N) with
s actors per run."""

from __future__ import annotations

import collections
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore
from sym3dinv.store.index import read_index
from tests.plugin import FAST, make_folder, s3_options, tiny_pipeline


def committed_attempts(store: RunStore) -> collections.Counter[str]:
    """Committed attempt folders (``_MANIFEST.json``) per item id, on any store (one recursive listing)."""
    return collections.Counter(p.split("/")[1] for p in store.find("items") if p.endswith("/_MANIFEST.json"))


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_runs_on_one_store_at_once(where: str, tmp_path: Path, tiny_checkpoint: str, ray_local: None,
                                       request: pytest.FixtureRequest, figures: dict[str, object]) -> None:
    n_good = 10
    src = make_folder(tmp_path / "in", n_good=n_good)
    if where == "s3":
        opts: dict[str, Any] = s3_options(request.getfixturevalue("s3_endpoint"))
        out = f"s3://runs/concurrent-{uuid.uuid4().hex[:8]}"
    else:
        opts, out = {}, str(tmp_path / "store")
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            config = tiny_pipeline(tiny_checkpoint, {**FAST, "stage1.steps": 10}, render=RenderSpec(((0.0, 0.0),)))
            results[name] = bulk_invert(input=str(src), out=out, config=config, storage_options=opts,
                                        execution=ExecutionConfig(shard_size=2, num_actors=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    n_inputs = n_good + 3
    store = RunStore(out, opts)
    read = read_index(store, strict=True)  # strict: any corrupt part would raise here
    assert read.corrupt == () and read.unsupported == ()
    latest = store.latest().to_pylist()
    assert len(latest) == n_inputs == len({r["id"] for r in latest})
    assert collections.Counter(r["status"] for r in latest) == {"done": n_good, "failed": 3}
    rows = read.table.to_pylist()
    assert not [r for r in rows if r["status"] == "skipped"]  # a leased item leaves no row in the run that skipped it
    done_rows = [r for r in rows if r["status"] == "done"]
    adopted = sum(1 for r in done_rows if dict(r["stage_seconds"]).get("adopted"))
    attempts = committed_attempts(store)
    assert len(attempts) == n_good and set(attempts.values()) == {1}  # every item inverted exactly once
    assert {r["id"] for r in latest if r["status"] == "done"} == set(attempts)
    assert store.find("leases") == {}  # every lease released
    processed = [results[k].processed for k in ("a", "b")]
    # each skip reported: leased to the other run, or already settled by it when this run planned (a fast
    # first run can finish items before the second one lists its pending work)
    assert sum(results[k].leased + results[k].skipped for k in ("a", "b")) == 2 * n_inputs - len(rows)
    figures.update(store=where, inputs=n_inputs, runs=2, rows_total=len(rows), done_rows=len(done_rows),
                   adopted=adopted, inversions=sum(attempts.values()), attempts_per_item=sorted(set(attempts.values())),
                   items_inverted_twice=sum(v > 1 for v in attempts.values()), processed_per_run=processed,
                   leased_away=2 * n_inputs - len(rows), corrupt_parts=0)
