"""Golden store: ``tests/fixtures/store_v1/`` was written by the store code before the store root layer
(``tests/fixtures/make_store_v1.py`` says how). Today's code must read it, resume it and build on it:
a store on disk outlives the code that wrote it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sym3dinv.store import RunStore
from tests.fixtures.make_store_v1 import FIX, dataset_config, pipeline_config

FIXTURE = Path(__file__).resolve().parents[2] / FIX
DONE = {"head0.png", "head1.png", "head2.png"}
BAD = {"broken.png": "decode_error", "empty.jpg": "decode_error", "tiny.png": "too_small"}


@pytest.fixture()
def v1(tmp_path: Path) -> Path:
    """A copy of the fixture (the tests write to it)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "v1"))


def _inputs(root: Path) -> dict[str, str]:
    from sym3dinv.pipeline import list_inputs

    return {Path(i.uri).name: i.id for i in list_inputs(str(root / "inputs"))}


def test_v1_store_reads(v1: Path) -> None:
    store = RunStore(str(v1 / "store"))
    ids = _inputs(v1)
    table = store.read_index(strict=True)
    assert table.num_rows == 7 and set(table["run_id"].to_pylist()) == {"r1", "r2"}
    latest = {r["id"]: r for r in store.latest().to_pylist()}
    assert set(latest) == set(ids.values())
    assert {n for n, i in ids.items() if latest[i]["status"] == "done"} == DONE
    assert {n: latest[i]["error_class"] for n, i in ids.items() if n in BAD} == BAD
    assert latest[ids["broken.png"]]["attempt"] == 1  # the retry is the latest row
    counts = {(r["status"], r["error_class"]): r["count"] for r in store.summary().to_pylist()}
    assert counts == {("done", None): 3, ("failed", "decode_error"): 2, ("failed", "too_small"): 1}
    assert len(store.failed()) == 3
    assert "psnr" in store.metric_stats()["metric"].to_pylist()
    for name in DONE:
        row = latest[ids[name]]
        assert store.is_committed(row["item_dir"])
        assert store.load_latents(row["item_dir"])["ws"].shape == (6, 32)  # the tiny generator's [num_ws, w_dim]
        outputs = dict(row["outputs"])
        assert {"latents", "delta", "metrics", "render/input", "render/yaw+0.00_pitch+0.00",
                "depth/yaw-0.50_pitch+0.00"} <= set(outputs)
        assert json.loads(store.cat(outputs["metrics"]))["config"]["generator"] == "tiny-seed0"
    # the crashed attempt of head0 (files, no manifest) is not a committed attempt
    assert len(store.committed_attempts(ids["head0.png"])) == 1


def test_v1_store_resumes(v1: Path) -> None:
    """Same inputs and config: only the failed items are pending; a new input is processed and indexed
    next to the old rows."""
    from PIL import Image

    from sym3dinv.pipeline import ItemProcessor, list_inputs
    from tests.plugin import make_tiny

    store = RunStore(str(v1 / "store"))
    config = pipeline_config()
    recorded = {r["config_hash"] for r in store.read_index(["config_hash"]).to_pylist()}
    assert recorded == {config.config_hash}  # the config hash of the same settings is unchanged
    ids = _inputs(v1)
    items = list_inputs(str(v1 / "inputs"))
    pending = store.pending([(i.id, i.uri) for i in items], config.config_hash)
    assert set(pending["id"].to_pylist()) == {ids[n] for n in BAD}
    flipped = np.asarray(Image.open(v1 / "inputs" / "head1.png"))[:, ::-1]
    Image.fromarray(np.ascontiguousarray(flipped)).save(v1 / "inputs" / "head3.png")
    labels = json.loads((v1 / "inputs" / "dataset.json").read_text())
    labels["labels"].append(["head3.png", labels["labels"][1][1]])  # a known camera: no aligner needed
    (v1 / "inputs" / "dataset.json").write_text(json.dumps(labels))
    items = list_inputs(str(v1 / "inputs"))
    todo = [i for i in items if i.id in set(store.pending([(i.id, i.uri) for i in items], config.config_hash)["id"]
                                            .to_pylist())]
    assert {Path(i.uri).name for i in todo} == set(BAD) | {"head3.png"}
    proc = ItemProcessor(config, generator=make_tiny(0))
    try:
        with store.index_writer("r3", "s0") as index:
            for row in proc.process_many(todo, store, [2] * len(todo), worker="w1"):
                index.add(row)
    finally:
        proc.close()
    assert store.pending([(i.id, i.uri) for i in items], config.config_hash).num_rows == 3  # the bad ones again
    assert store.read_index(strict=True).num_rows == 11
    assert store.compact().rows == 11 and store.read_index(strict=True).num_rows == 11


def test_v1_manifests_convert_to_the_indexed_rows(v1: Path) -> None:
    """A v1 attempt's manifest gives back the row that was indexed for it (what adoption relies on), and
    the typed done rows carry what the dataset builder and the edits read."""
    from sym3dinv.pipeline import ItemProcessor, list_inputs
    from tests.plugin import make_tiny

    store = RunStore(str(v1 / "store"))
    done = {r.id: r for r in store.done_rows()}
    assert len(done) == 3 and all(r.item_dir and r.outputs.get("delta") and r.camera_label for r in done.values())
    proc = ItemProcessor(pipeline_config(), generator=make_tiny(0))
    try:
        for item in list_inputs(str(v1 / "inputs")):
            if item.id in done:
                adopted = proc.adopt_committed(item, store, "w9")
                assert adopted is not None and adopted.stage_seconds.pop("adopted") == 1.0
                indexed = done[item.id]
                for f in ("attempt", "item_dir", "outputs", "metrics", "stage_seconds", "camera_label", "yaw",
                          "pitch", "worker", "code_version", "started_at", "config_hash", "bytes"):
                    assert getattr(adopted, f) == getattr(indexed, f), f
    finally:
        proc.close()


def test_v1_store_reports_and_edits(v1: Path) -> None:
    from sym3dinv.report import build_report

    store = RunStore(str(v1 / "store"))
    res = build_report(store, out=str(v1 / "report"))
    assert (res.items, res.shown, res.failed) == (6, 3, 3)
    page = (v1 / "report" / "index.html").read_text()
    assert 'id="edits"' in page and "probe" in page
    assert not [w for w in res.warnings if "missing" in w], res.warnings


def test_v1_dataset_resumes(v1: Path) -> None:
    """The dataset built from the v1 store is complete: a rerun renders nothing and rewrites dataset.json."""
    from sym3dinv.dataset import build_dataset
    from tests.plugin import make_tiny

    summary = build_dataset(str(v1 / "store"), str(v1 / "dataset"), dataset_config(), generator=make_tiny(0))
    assert (summary.identities, summary.built, summary.skipped, summary.images, summary.new_images) == (3, 0, 3, 6, 0)
    labels = json.loads((v1 / "dataset" / "rgb" / "dataset.json").read_text())["labels"]
    assert len(labels) == 6



def test_parts_without_a_newer_column_read_it_as_null(v1: Path) -> None:
    """Adding a nullable column to the schema leaves the parts already written readable: the column
    comes back null for their rows (what lets an index column be added in schema.py alone)."""
    import pyarrow.parquet as pq

    from sym3dinv.store.schema import INDEX_SCHEMA

    store = RunStore(str(v1 / "store"))
    part = sorted((v1 / "store" / "index").glob("part-*.parquet"))[0]
    table = pq.read_table(part).drop_columns(["code_version", "worker"])
    pq.write_table(table.replace_schema_metadata(INDEX_SCHEMA.metadata), part)
    read = store.read_index(strict=True)
    assert read.schema.names == INDEX_SCHEMA.names and read.num_rows == 7
    rows = {r["id"]: r for r in store.read_index(["id", "worker", "run_id"]).to_pylist()}
    assert {r["worker"] for r in rows.values() if r["run_id"] == "r1"} == {None}
    assert len(store.done_rows()) == 3
