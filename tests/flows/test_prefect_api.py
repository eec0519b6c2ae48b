"""What a reviewer sees through the Prefect API: the flow run, its task runs and its artifacts (read back from
the real temporary server of ``prefect_test_harness``), the shard cache, and ``prefect deploy --all``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore
from tests.plugin import BAD, CHEAP_LOSSES, FAST, GOOD, tiny_pipeline

REPO = Path(__file__).resolve().parents[2]


def _client():  # noqa: ANN202 - prefect's sync client type is long
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def test_artifacts_and_task_runs_through_the_api(image_folder: Path, tmp_path: Path, tiny_checkpoint: str,
                                                 ray_local: None) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    out = str(tmp_path / "store")
    state = bulk_invert(input=str(image_folder), out=out,
                        config=tiny_pipeline(tiny_checkpoint, render=RenderSpec(views=((0.0, 0.0),))),
                        execution=ExecutionConfig(shard_size=3, num_actors=2), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    run_id: UUID = state.state_details.flow_run_id
    with _client() as client:
        run = client.read_flow_run(run_id)
        assert run.name == "bulk-invert-w+-smoke"
        assert run.parameters["out"] == out and run.parameters["execution"]["shard_size"] == 3
        assert run.parameters["config"]["preset"] == "smoke" and run.parameters["config"]["losses"] == CHEAP_LOSSES
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        names = sorted(t.name if t.name.startswith("shard-") else t.name.rsplit("-", 1)[0] for t in tasks)
        assert names == ["list-inputs", "pending-inputs", "publish-artifacts", "shard-00000", "shard-00001"], names
        assert all(t.state.is_completed() for t in tasks)
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    by_key = {a.key: a for a in arts}
    assert {"bulk-invert-progress", "bulk-invert-metrics", "bulk-invert-failures", "bulk-invert-summary"} <= set(by_key)
    assert float(by_key["bulk-invert-progress"].data) == 100.0
    metrics = json.loads(by_key["bulk-invert-metrics"].data)
    assert len(metrics) == GOOD and all(r["status"] == "done" and r["psnr"] > 0 for r in metrics)
    assert [r["psnr"] for r in metrics] == sorted((r["psnr"] for r in metrics), reverse=True)  # best first
    failures = json.loads(by_key["bulk-invert-failures"].data)
    assert sorted(r["error_class"] for r in failures) == sorted(BAD.values())
    assert all(r["error_message"] for r in failures)  # a reason a person can read, not only a code
    md = by_key["bulk-invert-summary"].data
    assert f"| processed this run | {GOOD + len(BAD)} |" in md and "| done | 3 |" in md
    assert "| failed:decode_error | 2 |" in md and "data:image/png;base64," in md
    assert summary.run_id in md
    assert (Path(out) / "reports" / summary.run_id / "metrics.png").stat().st_size > 1000
    html = (Path(out) / "reports" / summary.run_id / "index.html").read_text()
    assert "index.html" in md and "head0.png" in html and "decode_error" in html  # linked from the summary


def test_shard_cache_key_is_content_config_and_flow_run() -> None:
    from types import SimpleNamespace

    from sym3dinv.pipeline import InputItem, PipelineConfig
    from tasks.shards import shard_cache_key

    a, b = InputItem("a" * 32, "/x/a.png", 1), InputItem("b" * 32, "/y/b.png", 2)
    cfg = PipelineConfig(preset="smoke")

    def key(items: list[InputItem], config: PipelineConfig = cfg, url: str = "memory://cache-key",
            flow_run: str = "run-1") -> str:
        ctx = SimpleNamespace(task_run=SimpleNamespace(flow_run_id=flow_run))  # the two fields Prefect's context has
        return shard_cache_key(ctx, {"items": items, "store": RunStore(url), "config": config})

    assert key([a, b]) == key([b, a])  # order does not matter
    assert key([a, b]) == key([InputItem(a.id, "/renamed.png", 1), b])  # content ids, not file names
    assert key([a, b]) != key([a])
    assert key([a, b]) != key([a, b], PipelineConfig(preset="smoke", mode="pti"))  # config hash
    assert key([a, b]) != key([a, b], url="memory://other-store")
    assert key([a, b]) != key([a, b], flow_run="run-2")  # across runs the store index decides, not the cache


def test_a_repeated_shard_is_served_from_prefect_cache(image_folder: Path, tmp_path: Path, tiny_checkpoint: str,
                                                       ray_local: None) -> None:
    """Same content + config => Prefect returns the cached summary and no actor runs again."""
    from prefect import flow

    from sym3dinv.pipeline import list_inputs
    from tasks.actors import ActorPool, PoolSpec
    from tasks.shards import Progress, process_shard

    items = [i for i in list_inputs(str(image_folder)) if i.uri.endswith("head0.png")]
    config = tiny_pipeline(tiny_checkpoint)
    store = RunStore(str(tmp_path / "store"))

    @flow(name="cache-check", persist_result=False)
    def twice() -> tuple[str, str, int]:
        pool = ActorPool(config, PoolSpec(num_actors=1))
        try:
            first = process_shard("00000", items, store, config, "r1", pool, Progress(1), return_state=True)
            second = process_shard("00000", items, store, config, "r2", pool, Progress(1), return_state=True)
        finally:
            pool.shutdown()
        return first.name, second.name, second.result().done

    first, second, done = twice()
    assert (first, second, done) == ("Completed", "Cached", 1)
    rows = store.read_index().to_pylist()
    assert len(rows) == 1 and rows[0]["run_id"] == "r1"  # the cached call wrote nothing


def test_prefect_deploy_all_is_accepted_by_the_server(tmp_path: Path) -> None:
    """``prefect deploy --all`` from the repo root registers every deployment of prefect.yaml."""
    import yaml
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    assert api, "the harness sets PREFECT_API_URL"
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_HOME": str(tmp_path / "home")}
    prefect = [sys.executable, "-m", "prefect"]
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    for pool in pools:
        subprocess.run([*prefect, "work-pool", "create", pool, "--type", "process", "--overwrite"], cwd=REPO,
                       env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with _client() as client:
        deployed = {d.name: d for d in client.read_deployments()}
    for d in spec["deployments"]:
        got = deployed.get(d["name"])
        assert got is not None, (d["name"], sorted(deployed))
        assert got.work_pool_name == d["work_pool"]["name"] and got.entrypoint == d["entrypoint"]
        want_crons = [s["cron"] for s in d.get("schedules", [])]
        assert [s.schedule.cron for s in got.schedules] == want_crons
        for k, v in d.get("parameters", {}).items():
            assert got.parameters.get(k) == v, (d["name"], k)
        if "concurrency_limit" in d:  # the limit becomes a global concurrency limit, the strategy an option
            want = d["concurrency_limit"]
            assert got.global_concurrency_limit is not None and got.global_concurrency_limit.limit == want["limit"]
            assert got.concurrency_options.collision_strategy.value == want["collision_strategy"]
    nightly = next(d for d in spec["deployments"] if d["name"] == "nightly-bulk-invert")
    assert nightly["concurrency_limit"]["collision_strategy"] == "CANCEL_NEW"


@pytest.mark.slow
def test_standalone_prefect_server_run_and_artifacts(image_folder: Path, tmp_path: Path, tiny_checkpoint: str) -> None:
    """``prefect server start`` as a separate process, the flow run by the CLI in another, artifacts read back."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("prefect server did not start in 120 s")
        out = tmp_path / "store"
        code = (f"from flows.bulk_invert import bulk_invert\n"
                f"s = bulk_invert(input={str(image_folder)!r}, out={str(out)!r}, config=dict(generator={tiny_checkpoint!r}, "
                f"mode='w+', preset='smoke', overrides={FAST!r}, render=dict(views=[(0.0, 0.0)]), "
                f"losses={CHEAP_LOSSES!r}), execution=dict(shard_size=3, num_actors=1))\nprint('RUN', s.run_id)\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/api/artifacts/filter", data=b'{"limit": 50}',
                headers={"Content-Type": "application/json"}, method="POST"), timeout=10) as r:
            arts = json.loads(r.read())
        keys = {a["key"] for a in arts}
        assert {"bulk-invert-summary", "bulk-invert-metrics", "bulk-invert-failures", "bulk-invert-progress"} <= keys
        md = next(a["data"] for a in arts if a["key"] == "bulk-invert-summary")
        assert f"| processed this run | {GOOD + len(BAD)} |" in md
    finally:
        server.terminate()
        server.wait(timeout=30)
