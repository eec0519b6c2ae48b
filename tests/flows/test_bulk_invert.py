"""End to end: the real flow on a real temporary Prefect API and a real 2-CPU local Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore
from tests.plugin import BAD, GOOD, HANG_MARKER_ENV, HANGING_LOSSES, tiny_pipeline, wait_for_pid


def run(folder: Path | str, out: str, ckpt: str, losses: str | None = None, items_per_call: int = 0,
        execution: ExecutionConfig | None = None, **kw: object):
    config = tiny_pipeline(ckpt, render=RenderSpec(views=((0.0, 0.0), (0.3, 0.0))),
                           **({"losses": losses} if losses else {}))
    execution = execution or ExecutionConfig(shard_size=3, num_actors=2, items_per_call=items_per_call)
    return bulk_invert(input=str(folder), out=out, config=config, execution=execution, **kw)


def test_folder_runs_to_completion_and_resumes(image_folder: Path, tmp_path: Path, tiny_checkpoint: str,
                                               ray_local: None) -> None:
    out = str(tmp_path / "store")
    s = run(image_folder, out, tiny_checkpoint)
    assert (s.inputs, s.skipped, s.processed) == (GOOD + len(BAD), 0, GOOD + len(BAD))
    latest = RunStore(out).latest().to_pylist()
    by_src = {Path(r["source_uri"]).name: r for r in latest}
    assert set(by_src) == {f"head{i}.png" for i in range(GOOD)} | set(BAD)
    for name, code in BAD.items():
        assert by_src[name]["status"] == "failed" and by_src[name]["error_class"] == code, by_src[name]
    for i in range(GOOD):
        r = by_src[f"head{i}.png"]
        assert r["status"] == "done" and r["config_hash"] == s.config_hash
        outputs = dict(r["outputs"])
        assert {"latents", "input", "render/input", "depth/input", "render/yaw+0.00_pitch+0.00",
                "render/yaw+0.30_pitch+0.00"} <= set(outputs)
        assert outputs["input"].endswith("/input.png") and outputs["render/input"].endswith("/render-input.png")
        assert (Path(out) / outputs["render/yaw+0.30_pitch+0.00"]).stat().st_size > 100
        assert (Path(out) / outputs["input"]).read_bytes() != (Path(out) / outputs["render/input"]).read_bytes()
        assert 0 < dict(r["metrics"])["psnr"] < 60
    assert s.counts == {"done": GOOD, "failed:decode_error": 2, "failed:too_small": 1}
    parts = sorted(p.name for p in (Path(out) / "index").glob("*.parquet"))
    assert len(parts) == 2  # one part per shard (6 items / shard_size 3)

    assert (Path(out) / "reports" / s.run_id / "contact-sheet.png").stat().st_size > 1000

    s2 = run(image_folder, out, tiny_checkpoint)  # done items are skipped; bad inputs stay failed (settled)
    assert (s2.skipped, s2.processed) == (GOOD + len(BAD), 0)
    s3 = run(image_folder, out, tiny_checkpoint, execution=ExecutionConfig(shard_size=3, num_actors=2,
                                                                          retry_failed=True))
    assert (s3.skipped, s3.processed) == (GOOD, len(BAD))  # asked for: the failed ones are tried again
    rows = RunStore(out).read_index().to_pylist()
    assert sum(r["status"] == "done" for r in rows) == GOOD  # no new inversion work
    assert sum(r["status"] == "failed" for r in rows) == 2 * len(BAD)


def test_bad_parameters_fail_before_any_work(image_folder: Path, tmp_path: Path, tiny_checkpoint: str) -> None:
    """Prefect validates the typed config parameters (as a deployment's JSON would arrive) before the
    flow body runs: nothing is listed, nothing is written, and the message names the field."""
    out = tmp_path / "s"
    bad = [({"generator": tiny_checkpoint, "preset": "nope"}, {}, "preset"),
           ({"overrides": [["stage1.stepz", 3]]}, {}, "unknown config field"),
           ({}, {"shard_size": 0}, "shard_size"),
           ({"mode": "spi", "render": {"views": [[0.0]]}}, {}, "views")]
    for config, execution, words in bad:
        state = bulk_invert(input=str(image_folder), out=str(out), config=config, execution=execution,
                            return_state=True)
        assert state.is_failed() and "Validation of flow parameters failed" in state.message, state
        assert words in state.message, state.message
    assert not out.exists()


def test_killed_actor_loses_no_item(image_folder: Path, tmp_path: Path, tiny_checkpoint: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The first actor to compute a loss (tests/plugin.py's hanging losses) writes its pid and hangs mid-item;
    we SIGKILL that process for real. Items go to the actors two at a time (a shared stage-1 batch): the
    hung item's partner is lost with it and redone too."""
    import os
    import signal
    import threading

    import ray

    marker = tmp_path / "hang.pid"
    monkeypatch.setenv(HANG_MARKER_ENV, str(marker))  # the first actor to compute a loss hangs mid-item
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = str(tmp_path / "store")
        result: dict[str, object] = {}
        th = threading.Thread(target=lambda: result.setdefault(
            "s", run(image_folder, out, tiny_checkpoint, losses=HANGING_LOSSES, items_per_call=2)))
        th.start()
        pid = wait_for_pid(marker)
        os.kill(pid, signal.SIGKILL)
        th.join(timeout=240)
        assert not th.is_alive()
    finally:
        ray.shutdown()
    s = result["s"]
    assert s.actor_restarts == 1  # type: ignore[attr-defined]
    latest = {Path(r["source_uri"]).name: r for r in RunStore(out).latest().to_pylist()}
    assert len(latest) == GOOD + len(BAD)  # every item has a row
    redone = [r for r in latest.values() if r["attempt"] == 1]
    assert redone and all(r["status"] == "done" or r["error_class"] for r in redone)  # the hung item came back
    assert not any(str(pid) in (r["worker"] or "") for r in redone)  # redone by the replacement actor
    assert any(r["status"] == "done" for r in redone)  # the hung item (a good one: it reached the losses)
    # every call queued on the killed actor (the hung item's group, and whatever waited behind it) came back once
    assert {r["attempt"] for r in latest.values()} <= {0, 1}
    assert all((r["status"] == "done") == n.startswith("head") for n, r in latest.items())
    assert all(r["error_class"] == BAD[n] for n, r in latest.items() if n in BAD)


def test_flow_against_moto_s3(image_folder: Path, tiny_checkpoint: str, ray_local: None,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
        fs = fsspec.filesystem("s3", **opts)
        fs.mkdir("bucket")
        fs.put(str(image_folder) + "/", "bucket/in/", recursive=True)
        s = run("s3://bucket/in", "s3://bucket/run", tiny_checkpoint, storage_options=opts)
        assert s.counts == {"done": GOOD, "failed:decode_error": 2, "failed:too_small": 1}
        latest = RunStore("s3://bucket/run", opts).latest().to_pylist()
        assert len(latest) == GOOD + len(BAD)
        done = [r for r in latest if r["status"] == "done"]
        assert all(r["source_uri"].startswith("s3://bucket/in/") for r in latest)
        assert all(fs.exists("bucket/run/" + dict(r["outputs"])["latents"]) for r in done)
        s2 = run("s3://bucket/in", "s3://bucket/run", tiny_checkpoint, storage_options=opts)
        assert s2.skipped == GOOD + len(BAD)  # done, or failed for a reason of the input (settled)
        assert fs.exists(f"bucket/run/reports/{s.run_id}/contact-sheet.png")
    finally:
        server.stop()
