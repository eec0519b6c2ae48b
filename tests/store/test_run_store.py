"""RunStore on local, memory:// and moto S3: items, index, resume, queries, compaction, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from store_helpers import CFG, write_done

from sym3dinv.errors import DecodeError, SchemaVersionError, StoreError
from sym3dinv.store import IndexRow, RunStore, Status, failure_row, item_id_from_bytes, item_id_from_stream
from sym3dinv.store.index import list_parts


def test_item_files_index_and_queries(store: RunStore) -> None:
    with store.index_writer("run1", "shard0") as iw:
        a = write_done(store, iw, b"photo-a", lpips=0.2)
        b = write_done(store, iw, b"photo-b", lpips=0.4)
        bad = item_id_from_bytes(b"broken")
        iw.add(
            failure_row(
                bad,
                DecodeError("cannot decode broken.jpg: not a JPEG"),
                config_hash=CFG,
                source_uri="broken.jpg",
            )
        )
    assert len(list_parts(store)) == 1
    t = store.read_index()
    assert t.num_rows == 3 and t.schema.metadata[b"sym3dinv.schema_version"] == b"1"
    latest = {r["id"]: r for r in store.latest().to_pylist()}
    assert latest[a]["status"] == "done" and latest[bad]["error_class"] == "decode_error"
    assert latest[a]["camera_label"] == [float(i) for i in range(25)]
    assert dict(latest[a]["metrics"]) == {"lpips": pytest.approx(0.2), "psnr": 30.0}
    assert latest[a]["finished_at"].tzinfo is not None
    # files are where the row says, complete
    lat = store.load_latents(latest[b]["item_dir"])
    np.testing.assert_allclose(lat["ws"], 0.4)
    assert json.loads(store.fs.cat_file(store.abspath(dict(latest[b]["outputs"])["metrics"])))["lpips"] == 0.4
    counts = {(r["status"], r["error_class"]): r["count"] for r in store.summary().to_pylist()}
    assert counts == {("done", None): 2, ("failed", "decode_error"): 1}
    stats = {r["metric"]: r for r in store.metric_stats().to_pylist()}
    assert stats["lpips"]["count"] == 2 and stats["lpips"]["mean"] == pytest.approx(0.3)
    failed = store.failed().to_pylist()
    assert [f["id"] for f in failed] == [bad] and "not a JPEG" in failed[0]["error_message"]
    # resume: only the failed one and a new one are pending; other config hash = all pending
    inputs = [(a, "a.jpg"), (b, "b.jpg"), (bad, "broken.jpg"), (item_id_from_bytes(b"new"), "new.jpg")]
    assert sorted(store.pending(inputs, CFG)["id"].to_pylist()) == sorted([bad, inputs[3][0]])
    assert store.pending(inputs, "othercfg").num_rows == 4
    assert store.pending(inputs, CFG, verify_outputs=True).num_rows == 2


def test_latest_row_wins_and_compaction(store: RunStore) -> None:
    item = item_id_from_bytes(b"x")
    with store.index_writer("run1", "s0") as iw:
        iw.add(failure_row(item, MemoryError(), config_hash=CFG, attempt=0))
    with store.index_writer("run1", "s0", attempt=1) as iw:
        write_done(store, iw, b"x", attempt=1)
        write_done(store, iw, b"y", attempt=0)
    assert store.pending([(item, "x")], CFG).num_rows == 0
    before = store.latest().sort_by("id")
    assert len(list_parts(store)) == 2
    res = store.compact()
    assert len(res.removed_parts) == 2 and res.rows == 3
    assert len(list_parts(store)) == 1
    after = store.latest().sort_by("id")
    assert after.select(["id", "status", "attempt"]).equals(before.select(["id", "status", "attempt"]))
    assert store.read_index().num_rows == 3


def test_crash_before_commit_is_not_done(store: RunStore) -> None:
    item = item_id_from_bytes(b"crash")
    iw = store.index_writer("r", "s")
    with pytest.raises(RuntimeError), store.item_writer(item, 0) as w:
        w.write_latents({"ws": np.zeros((2, 2), np.float32)})
        raise RuntimeError("worker died")
    assert w.committed is None and not store.is_committed(w.item_dir)
    with pytest.raises(StoreError, match="uncommitted"):
        iw.add(IndexRow(id=item, status=Status.DONE, config_hash=CFG, item_dir=w.item_dir))
    assert store.pending([(item, "c")], CFG).num_rows == 1


def test_unknown_schema_version_and_corrupt_part(store: RunStore) -> None:
    with store.index_writer("r", "s") as iw:
        write_done(store, iw, b"ok")
    store.fs.pipe_file(store.abspath("index/part-r-s-a0-garbage.parquet"), b"PAR1 not parquet")
    with pytest.raises(StoreError, match="corrupt index part .*garbage"):
        store.read_index(strict=True)
    assert store.read_index().num_rows == 1  # the rest stays readable
    buf = io.BytesIO()
    t = store.read_index().replace_schema_metadata({b"sym3dinv.schema_version": b"99"})
    pq.write_table(t, buf)
    store.fs.pipe_file(store.abspath("index/part-r-s-a0-future.parquet"), buf.getvalue())
    with pytest.raises(SchemaVersionError, match=r"part-r-s-a0-future\.parquet has schema version 99"):
        store.read_index()


def test_renders_depth_delta_roundtrip(store: RunStore) -> None:
    item = item_id_from_bytes(b"r")
    img = (np.arange(12 * 10 * 3) % 251).astype(np.uint8).reshape(12, 10, 3)
    depth = np.linspace(2.3, 3.2, 120, dtype=np.float32).reshape(12, 10)
    with store.item_writer(item, 2) as w:
        w.write_render("yaw+30", img)
        w.write_depth("yaw+30", depth, fmt="png16")
        w.write_depth("front", depth)
        w.write_delta({"w": np.ones((3, 3), np.float32) / 3})
    out = w.committed.outputs
    assert set(out) == {"render/yaw+30", "depth/yaw+30", "depth/front", "delta"}
    png = np.asarray(Image.open(io.BytesIO(store.fs.cat_file(store.abspath(out["render/yaw+30"])))))
    np.testing.assert_array_equal(png, img)
    d16 = np.asarray(Image.open(io.BytesIO(store.fs.cat_file(store.abspath(out["depth/yaw+30"])))))
    assert d16.dtype == np.uint16
    np.testing.assert_allclose(2.25 + d16 / 65535 * 1.05, depth, atol=2e-5)
    np.testing.assert_array_equal(
        np.load(io.BytesIO(store.fs.cat_file(store.abspath(out["depth/front"])))), depth
    )
    from safetensors.numpy import load

    assert load(store.fs.cat_file(store.abspath(out["delta"])))["w"].dtype == np.float16


def test_paths_never_escape_root(tmp_path) -> None:  # noqa: ANN001
    store = RunStore(str(tmp_path / "run"))
    item = item_id_from_bytes(b"p")
    with pytest.raises(StoreError, match="invalid item id"):
        store.item_writer("../../etc", 0)
    with pytest.raises(StoreError, match="escapes"):
        store.abspath("items/../../outside")
    w = store.item_writer(item, 0)
    for bad in ("../evil", "a/b", "..", "x/../../y", ""):
        with pytest.raises(StoreError):
            w.write_render(bad, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(StoreError):
        store.index_writer("../run", "s")
    assert not (tmp_path / "evil").exists() and not any((tmp_path).glob("*.png"))


def test_ids_content_hash(tmp_path) -> None:  # noqa: ANN001
    a = item_id_from_bytes(b"same bytes")
    assert a == item_id_from_bytes(b"same bytes") and len(a) == 32 and int(a, 16) >= 0
    assert item_id_from_stream(io.BytesIO(b"same bytes" * 1)) == (a, 10)
    big = bytes(range(256)) * 10_000
    assert item_id_from_stream(io.BytesIO(big))[0] == item_id_from_bytes(big)
    (tmp_path / "one.jpg").write_bytes(big)
    (tmp_path / "copy-under-another-name.jpg").write_bytes(big)
    from sym3dinv.store import item_id_from_uri

    assert item_id_from_uri(str(tmp_path / "one.jpg")) == (item_id_from_bytes(big), len(big))
    assert item_id_from_uri(f"file://{tmp_path}/copy-under-another-name.jpg")[0] == item_id_from_bytes(big)


def test_repr_hides_secrets() -> None:
    s = RunStore(
        "memory://x", {"key": "AKIAxyz", "secret": "s3cr3t", "client_kwargs": {"aws_session_token": "tok"}}
    )
    text = repr(s) + str(s)
    assert "s3cr3t" not in text and "AKIAxyz" not in text and "tok'" not in text and "memory://x" in text


def test_empty_store(store: RunStore) -> None:
    assert store.read_index().num_rows == 0
    assert store.summary().num_rows == 0
    assert store.pending(pa.table({"id": ["a" * 32], "source_uri": ["u"]}), CFG).num_rows == 1


def test_store_imports_no_torch_and_pickles() -> None:
    import pickle
    import subprocess
    import sys

    code = (
        "import sys, sym3dinv.store, sym3dinv.store.export, sym3dinv.cli.store; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    s = RunStore("memory://pickled", {"secret": "x"})
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.url == s.url and s2.root == s.root


def test_pending_accepts_pandas_and_rerun_does_no_work(tmp_path) -> None:  # noqa: ANN001
    store = RunStore(f"file://{tmp_path}/run")
    with store.index_writer("r", "s") as iw:
        ids = [write_done(store, iw, bytes([i])) for i in range(5)]
    import pandas as pd

    df = pd.DataFrame({"id": ids, "source_uri": [f"{i}.jpg" for i in range(5)]})
    assert store.pending(df, CFG).num_rows == 0
    assert store.pending(df, "newcfg").to_pandas()["id"].tolist() == ids
