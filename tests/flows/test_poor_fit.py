"""The poor-fit flag through the real flow (issue 21): every done row gets ``quality``; a fit above the
LPIPS threshold is recorded as ``poor_fit`` with its reason, listed by ``store summary``/``failed``, the run's
Prefect artifacts and the HTML report, and ``dataset build --skip-poor`` leaves it out."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.config.quality import QualityConfig
from sym3dinv.generator import save_generator
from sym3dinv.report.html import build_report
from sym3dinv.report.summary import RunFacts, run_artifacts
from sym3dinv.store import RunStore
from tests.plugin import make_folder, make_tiny, tiny_pipeline


def test_a_bad_fit_is_flagged_listed_and_skippable(tmp_path: Path, ray_local: None) -> None:
    from sym3dinv.cli import app
    from sym3dinv.config.dataset import CameraSpec, DatasetConfig
    from sym3dinv.dataset import build_dataset

    folder = make_folder(tmp_path / "in", n_good=2)
    ckpt = str(save_generator(make_tiny(0), tmp_path / "gen.safetensors"))
    cfg = tiny_pipeline(ckpt, render=RenderSpec(views=((0.0, 0.0),), depth=False))
    out = str(tmp_path / "store")
    # a 2-step w+ fit of another generator's renders is bad; a threshold no such fit meets makes it "poor"
    strict = QualityConfig(max_input_lpips=1e-6)
    s = bulk_invert(input=str(folder), out=out, config=cfg,
                    execution=ExecutionConfig(shard_size=8, num_actors=1, quality=strict))
    assert s.counts["done"] == 2
    store = RunStore(out)
    done = store.done_rows()
    assert {r.quality for r in done} == {"poor_fit"}
    for r in done:
        assert r.quality_reason == f"input-view LPIPS {r.metrics['lpips_alex']:.3f} > 1e-06"
        manifest = json.loads(store.cat(f"{r.item_dir}/_MANIFEST.json"))
        assert manifest["meta"]["row"]["quality"] == "poor_fit"  # an adopted attempt keeps its flag
    assert all(r.quality is None for r in store.latest_rows(status="failed"))
    assert [r.id for r in store.poor_fits()] == sorted((r.id for r in done), key=lambda i: -store.done_rows([i])[0]
                                                        .metrics["lpips_alex"])

    runner = CliRunner()
    summary = runner.invoke(app, ["store", "summary", out])
    assert summary.exit_code == 0 and "flagged poor_fit: 2" in summary.output
    js = json.loads(runner.invoke(app, ["store", "summary", out, "--json"]).output)
    assert sorted(p["id"] for p in js["poor_fit"]) == sorted(r.id for r in done)
    failed = runner.invoke(app, ["store", "failed", out]).output
    assert "done but flagged poor_fit (2):" in failed and all(r.id in failed for r in done)

    arts = run_artifacts(store.latest_rows(config_hash=s.config_hash),
                         RunFacts(out, s.run_id, s.config_hash, 5, 0, 1.0, 0))
    assert sorted(r["id"] for r in arts.poor_fits_table) == sorted(r.id for r in done)
    assert "| done but flagged poor_fit | 2 |" in arts.markdown
    page = Path(build_report(store).index).read_text()
    section = page.split('<section id="poor-fits">')[1].split("</section>")[0]
    assert all(r.id in section for r in done) and "input-view LPIPS" in section

    ds = DatasetConfig(cameras=CameraSpec(kind="grid", n_yaw=2, n_pitch=1), resolution=32, depth_resolution=16)
    skip = DatasetConfig(**{**ds.__dict__, "skip_poor": True})
    assert skip.config_hash() != ds.config_hash()
    assert build_dataset(out, str(tmp_path / "ds-skip"), skip).identities == 0
    assert build_dataset(out, str(tmp_path / "ds-all"), ds).built == 2


def test_ordinary_thresholds_mark_rows_ok_or_poor_by_their_own_metrics(tmp_path: Path, ray_local: None) -> None:
    folder = make_folder(tmp_path / "in", n_good=1)
    ckpt = str(save_generator(make_tiny(0), tmp_path / "gen.safetensors"))
    cfg = tiny_pipeline(ckpt, render=RenderSpec(views=((0.0, 0.0),), depth=False))
    bulk_invert(input=str(folder), out=str(tmp_path / "s"), config=cfg,
                execution=ExecutionConfig(shard_size=8, num_actors=1, quality=QualityConfig(max_input_lpips=50.0)))
    (row,) = RunStore(str(tmp_path / "s")).done_rows()
    assert (row.quality, row.quality_reason) == ("ok", None)
