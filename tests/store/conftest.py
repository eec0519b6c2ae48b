"""Run stores on local disk, memory:// and a real S3 API (moto's threaded server + s3fs, no mocks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from store_helpers import s3_options

from sym3dinv.store import RunStore


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    import boto3

    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="runs")
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> RunStore:  # noqa: ANN001
    kind = request.param
    if kind == "local":
        return RunStore(str(tmp_path / "run"))
    if kind == "memory":
        return RunStore(f"memory://t-{uuid.uuid4().hex}")
    endpoint = request.getfixturevalue("s3_endpoint")
    return RunStore(f"s3://runs/{uuid.uuid4().hex}", s3_options(endpoint))
