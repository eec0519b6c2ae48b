"""Reliability suite: faults tried for real (SIGKILL, a stopped S3 endpoint, a full file system, another
user's permissions, OOM). Reuses the flow tests' Prefect API (session), tiny checkpoint and folders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.conftest import FAST, make_folder, prefect_api, ray_local, tiny_checkpoint  # noqa: F401

FIGURES = Path(os.environ.get("SYM3DINV_RELIABILITY_FIGURES", "/tmp/sym3dinv-reliability-figures.jsonl"))
"""Each test appends the figures it measured (inputs, rows, attempts, retries) here as JSON lines;
``docs/reliability.md`` quotes them."""


@pytest.fixture()
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A dict the test fills with measured figures; printed and appended to FIGURES after the test."""
    data: dict[str, object] = {}
    yield data
    if data:
        line = json.dumps({"test": request.node.name, **data}, sort_keys=True, default=str)
        print("FIGURES", line)
        with FIGURES.open("a") as f:
            f.write(line + "\n")


__all__ = ["FAST", "make_folder"]
