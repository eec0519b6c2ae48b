"""Hostile files: checkpoints that try to run code or import modules, oversized and truncated ones,
and a run store holding a part of an unknown schema version and corrupt parts.

The full code-execution matrix lives in ``tests/generator/test_safe_pickle.py`` (10 payloads x bare /
inside a snapshot, persistent ``module_src``, ``torch.storage._load_from_bytes``, EXT opcodes, memo
bombs, truncation at every permille, bit flips); here the same refusals go through the public
``load_generator`` entry point that a flow parameter reaches."""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sym3dinv.errors import CheckpointError, SchemaVersionError, UnsafePickleError
from sym3dinv.generator import load_generator
from sym3dinv.generator.checkpoint import MAX_CHECKPOINT_BYTES
from sym3dinv.store import RunStore
from sym3dinv.store.index import read_index


def _global_call(module: str, name: str, arg: str) -> bytes:
    """Protocol-2 pickle calling module.name(arg) through GLOBAL + REDUCE (what a malicious .pkl does)."""
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + pickle.MARK
            + pickle.dumps(arg, protocol=2)[2:-1] + pickle.TUPLE + pickle.REDUCE + pickle.STOP)


def _snapshot_with(body: bytes) -> bytes:
    """{'G_ema': <body>} so the payload sits where EG3D's network lives."""
    return (b"\x80\x02}q\x00X\x05\x00\x00\x00G_emaq\x01" + body[2:-1] + b"s" + pickle.STOP)


@pytest.mark.parametrize("module,name", [
    ("sym3dinv_no_such_module_xyz", "boom"),  # unknown module: never imported
    ("this", "s"),  # importing `this` prints the Zen of Python: a visible side effect
    ("antigravity", "geohash"),  # importing it opens a web browser
    ("os", "system"),
    ("subprocess", "check_output"),
])
def test_pickles_that_import_or_run_are_refused_before_import(tmp_path: Path, module: str, name: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    before = set(sys.modules)
    for data in (_global_call(module, name, f"touch {marker}"), _snapshot_with(_global_call(module, name, "x"))):
        path = tmp_path / "evil.pkl"
        path.write_bytes(data)
        with pytest.raises(UnsafePickleError, match=rf"{module}\.{name}"):
            load_generator(str(path))
    assert not marker.exists()
    assert module not in set(sys.modules) - before  # refused at find_class: the module was never imported
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


def test_oversized_checkpoint_is_refused_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.pkl"
    with big.open("wb") as f:  # sparse: claims 16 GiB + 1 byte, costs nothing on disk
        f.write(b"\x80\x02")
        f.truncate(MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(CheckpointError, match="above the limit"):
        load_generator(str(big))


def test_checkpoints_claiming_huge_tensors_fail_cleanly(tmp_path: Path) -> None:
    import json
    import struct

    # safetensors header describing a 1 TB tensor in a 100-byte file
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 18, 1 << 20], "data_offsets": [0, 1 << 40]}}).encode()
    p = tmp_path / "huge-header.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 100)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(str(p))


def test_store_with_future_and_corrupt_parts_stays_readable(tmp_path: Path, figures: dict[str, object]) -> None:
    from tests.store.store_helpers import CFG, write_done

    store = RunStore(str(tmp_path / "run"))
    ids = []
    with store.index_writer("r", "s") as iw:
        ids += [write_done(store, iw, f"item-{i}".encode()) for i in range(5)]
    good = store.read_index()
    # a part written by a future sym3dinv (schema version 99)
    buf = io.BytesIO()
    pq.write_table(good.slice(0, 2).replace_schema_metadata({b"sym3dinv.schema_version": b"99"}), buf)
    store.fs.pipe_file(store.abspath("index/part-r-future-a0-0001.parquet"), buf.getvalue())
    # a part cut in half (a crashed writer on a store without atomic rename) and one of random bytes
    buf = io.BytesIO()
    pq.write_table(good, buf)
    store.fs.pipe_file(store.abspath("index/part-r-cut-a0-0002.parquet"), buf.getvalue()[: len(buf.getvalue()) // 2])
    store.fs.pipe_file(store.abspath("index/part-r-noise-a0-0003.parquet"),
                       np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    # resume refuses clearly, naming the file (skipping it would redo the future writer's work)
    with pytest.raises(SchemaVersionError, match=r"part-r-future-a0-0001\.parquet has schema version 99"):
        store.pending([(i, "u") for i in ids], CFG)
    # reports stay readable and say what they skipped
    read = read_index(store, skip_unknown_versions=True)
    assert read.table.num_rows == 5 and sorted(set(read.table["id"].to_pylist())) == sorted(ids)
    assert [Path(p).name for p, _ in read.unsupported] == ["part-r-future-a0-0001.parquet"]
    assert sorted(Path(p).name for p, _ in read.corrupt) == ["part-r-cut-a0-0002.parquet", "part-r-noise-a0-0003.parquet"]
    assert all("corrupt index part" in why for _, why in read.corrupt)
    summary = store.summary(skip_unknown_versions=True).to_pylist()
    assert summary == [{"status": "done", "error_class": None, "count": 5}]
    figures.update(rows_readable=read.table.num_rows, corrupt_parts=len(read.corrupt),
                   unsupported_parts=len(read.unsupported))
