"""Run stores on local disk, memory:// and a real S3 API (moto's threaded server + s3fs, no mocks; the
server is ``tests/plugin.py``'s ``s3_endpoint``)."""

from __future__ import annotations

import uuid

import pytest

from sym3dinv.store import RunStore
from tests.plugin import s3_options


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> RunStore:  # noqa: ANN001
    kind = request.param
    if kind == "local":
        return RunStore(str(tmp_path / "run"))
    if kind == "memory":
        return RunStore(f"memory://t-{uuid.uuid4().hex}")
    endpoint = request.getfixturevalue("s3_endpoint")
    return RunStore(f"s3://runs/{uuid.uuid4().hex}", s3_options(endpoint))
