"""`sym3dinv store summary|failed|export|compact` on a small local store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from safetensors.numpy import load_file
from store_helpers import CFG, write_done
from typer.testing import CliRunner

from sym3dinv.cli import app
from sym3dinv.errors import NoFaceError
from sym3dinv.store import RunStore, failure_row, item_id_from_bytes


def _store(tmp_path: Path) -> RunStore:
    store = RunStore(str(tmp_path / "run"))
    with store.index_writer("r", "s0") as iw:
        write_done(store, iw, b"a", lpips=0.25)
        write_done(store, iw, b"b", lpips=0.75)
        iw.add(
            failure_row(
                item_id_from_bytes(b"c"),
                NoFaceError("no face found in c.jpg"),
                config_hash=CFG,
                source_uri="c.jpg",
            )
        )
    return store


def test_cli_summary_failed_export(tmp_path: Path) -> None:
    store = _store(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["store", "summary", store.url, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {(c["status"], c["error_class"], c["count"]) for c in out["counts"]} == {
        ("done", None, 2),
        ("failed", "no_face", 1),
    }
    assert {m["metric"]: m["mean"] for m in out["metrics"]}["lpips"] == 0.5
    res = runner.invoke(app, ["store", "failed", store.url])
    assert res.exit_code == 0 and "no_face" in res.output and "no face found in c.jpg" in res.output
    pq_out, st_out = tmp_path / "bundle.parquet", tmp_path / "bundle.safetensors"
    assert runner.invoke(app, ["store", "export", store.url, str(pq_out)]).exit_code == 0
    t = pq.read_table(pq_out)
    assert t.num_rows == 2 and json.loads(t.schema.metadata[b"latent_shape"]) == [14, 8]
    assert sorted(np.asarray(x, np.float32)[0] for x in t["latent"].to_pylist()) == [0.25, 0.75]
    assert runner.invoke(app, ["store", "export", store.url, str(st_out)]).exit_code == 0
    bundle = load_file(st_out)
    assert bundle["latents"].shape == (2, 14, 8) and bundle["camera_labels"].shape == (2, 25)
    assert runner.invoke(app, ["store", "compact", store.url]).exit_code == 0


def test_duckdb_reads_index_as_documented(tmp_path: Path) -> None:
    import pytest

    duckdb = pytest.importorskip("duckdb")
    store = _store(tmp_path)
    sql = f"""
        WITH latest AS (
          SELECT * FROM read_parquet('{store.root}/index/part-*.parquet')
          QUALIFY row_number() OVER (PARTITION BY id ORDER BY finished_at DESC, attempt DESC) = 1)
        SELECT status, error_class, count(*) AS n, avg(metrics['lpips']) AS lpips
        FROM latest GROUP BY ALL ORDER BY status"""
    rows = duckdb.sql(sql).fetchall()
    assert rows[0][:3] == ("done", None, 2) and rows[0][3] == 0.5
    assert rows[1][:3] == ("failed", "no_face", 1)
