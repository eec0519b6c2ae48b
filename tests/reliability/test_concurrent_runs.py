"""Two ``bulk-invert`` runs on the same store at the same time (same inputs, same config).

Documented behaviour: both finish; every input ends with one latest row; no part is corrupt. Each run
walks the inputs in its own shuffled order and, before inverting an item, adopts an attempt the other
run already committed. An item is inverted twice only when it starts in one run while the other is
still inverting it: with s actors per run, each new pick collides with probability about s/k when k
items are left, so the expected number of double inversions is about s * H(N) ~ s * ln(N) (3.2 for
N = 13, 14 for N = 1e6): logarithmic in the input size, not proportional to it."""

from __future__ import annotations

import collections
import math
import threading
from pathlib import Path
from typing import Any

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore
from sym3dinv.store.index import read_index
from tests.plugin import FAST, make_folder, tiny_pipeline


def test_two_runs_on_one_store_at_once(tmp_path: Path, tiny_checkpoint: str, ray_local: None,
                                       figures: dict[str, object]) -> None:
    n_good = 10
    src = make_folder(tmp_path / "in", n_good=n_good)
    out = str(tmp_path / "store")
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            config = tiny_pipeline(tiny_checkpoint, {**FAST, "stage1.steps": 10}, render=RenderSpec(((0.0, 0.0),)))
            results[name] = bulk_invert(input=str(src), out=out, config=config,
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
    read = read_index(RunStore(out), strict=True)  # strict: any corrupt part would raise here
    assert read.corrupt == () and read.unsupported == ()
    latest = RunStore(out).latest().to_pylist()
    assert len(latest) == n_inputs == len({r["id"] for r in latest})
    assert collections.Counter(r["status"] for r in latest) == {"done": n_good, "failed": 3}
    rows = read.table.to_pylist()
    done_rows = [r for r in rows if r["status"] == "done"]
    adopted = sum(1 for r in done_rows if dict(r["stage_seconds"]).get("adopted"))
    manifests = collections.Counter(p.parent.parent.name for p in (Path(out) / "items").glob("*/*/_MANIFEST.json"))
    inverted_twice = sum(1 for v in manifests.values() if v > 1)
    harmonic = sum(1 / k for k in range(1, n_inputs + 1))
    bound = math.ceil(2 * harmonic)  # twice the expected s * H(N) with s = 1 actor per run
    assert len(manifests) == n_good and inverted_twice <= bound
    assert sum(manifests.values()) <= n_good + bound
    processed = [results[k].processed for k in ("a", "b")]
    figures.update(inputs=n_inputs, runs=2, rows_total=len(rows), done_rows=len(done_rows), adopted=adopted,
                   inversions=sum(manifests.values()), items_inverted_twice=inverted_twice, bound=bound,
                   processed_per_run=processed, corrupt_parts=0)
