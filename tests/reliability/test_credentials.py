"""Credentials never reach logs, flow-run parameters, artifacts or the store: a marker secret is set in
the environment AND passed in ``storage_options``, the real flow runs against a moto S3 server, and
everything Prefect recorded is read back through its API and searched for the marker."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore
from tests.plugin import make_folder, tiny_pipeline

MARKER = "SeCrEt-MaRkEr-7f3a9c"
KEY_MARKER = "AKIAMARKER7F3A9C"


def _prefect_records(flow_run_id: object) -> list[str]:
    """Everything Prefect recorded about the run, through its API (sync client: an asyncio.run() here
    would leave Prefect's process-wide event services bound to a closed loop)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        fr = client.read_flow_run(flow_run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
        arts = client.read_artifacts(limit=100)
        trs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return ([json.dumps(fr.model_dump(mode="json"))] + [lg.message for lg in logs]
            + [json.dumps(a.model_dump(mode="json")) for a in arts]
            + [json.dumps(t.model_dump(mode="json")) for t in trs])


def test_secrets_never_printed_or_stored(tmp_path: Path, tiny_checkpoint: str, ray_local: None,
                                         monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                         figures: dict[str, object]) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    src = make_folder(tmp_path / "in", n_good=2)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_MARKER)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MARKER)
        # moto keeps buckets per process, shared by every server it runs: a name of our own
        bucket = f"cred-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        caplog.set_level(logging.DEBUG, logger="sym3dinv")
        caplog.set_level(logging.INFO)
        opts = {"key": KEY_MARKER, "secret": MARKER, "client_kwargs": {"endpoint_url": endpoint}}
        state = bulk_invert(input=str(src), out=f"s3://{bucket}/run",
                            config=tiny_pipeline(tiny_checkpoint, render=RenderSpec(((0.0, 0.0),))),
                            execution=ExecutionConfig(shard_size=3, num_actors=1), storage_options=opts,
                            return_state=True)
        summary = state.result()
        assert summary.counts["done"] == 2
        records = _prefect_records(state.state_details.flow_run_id)
        # the store: every object of the run (index parts, manifests, metrics, reports)
        import fsspec

        fs = fsspec.filesystem("s3", key=KEY_MARKER, secret=MARKER, client_kwargs={"endpoint_url": endpoint})
        objects = fs.find(f"{bucket}/run")
        blobs = [fs.cat_file(p) for p in objects]
        texts = records + [r.getMessage() for r in caplog.records] + [str(summary), repr(RunStore(f"s3://{bucket}/run", opts))]
        for secret in (MARKER, KEY_MARKER):
            hits = [t[max(0, t.find(secret) - 300): t.find(secret) + 50] for t in texts if secret in t]
            assert not hits, hits
            assert not [p for p, b in zip(objects, blobs, strict=True) if secret.encode() in b]
        params = json.loads(records[0])["parameters"]
        assert "storage_options" in params and MARKER not in json.dumps(params)
        figures.update(prefect_records=len(records), log_records=len(caplog.records), store_objects=len(objects),
                       marker_hits=0)
    finally:
        server.stop()


def test_dataset_flow_records_storage_options_masked() -> None:
    """The dataset flow takes two sets of storage options (input store, output); neither reaches Prefect's
    recorded parameters in clear, while the function itself still gets the real values."""
    import json

    from flows.build_dataset import build_multiview_dataset

    recorded = build_multiview_dataset.serialize_parameters(
        {"store": "s3://a/run", "out": "s3://b/ds", "storage_options": {"key": "AKIA-MARK-1", "secret": "MARK-2"},
         "out_storage_options": {"secret": "MARK-3", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}})
    text = json.dumps(recorded)
    assert "MARK-2" not in text and "MARK-3" not in text and "AKIA-MARK-1" not in text
    assert recorded["store"] == "s3://a/run"  # other parameters stay readable
