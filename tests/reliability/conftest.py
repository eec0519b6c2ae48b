"""Reliability suite: faults tried for real (SIGKILL, a stopped S3 endpoint, a full file system, another
user's permissions, OOM). The Prefect API (session), tiny checkpoint and folders come from tests/plugin.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def _prefect(prefect_api: None) -> None:
    """Reliability tests run flows against the one harness API of the session."""


NOBODY = 65534


def _child_as_nobody(fn: Callable[..., list[str]], args: tuple[object, ...], out: str) -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)  # root ignores permission bits; the unprivileged user does not
    Path(out).write_text("\n".join(fn(*args)))


@pytest.fixture()
def as_nobody() -> Iterator[tuple[Path, Callable[..., list[str]]]]:
    """A world-writable scratch folder and ``run(fn, *args) -> lines``: ``fn`` runs in a forked child that
    switched to uid/gid 65534 (permission checks need a user that root is not). Skips unless root."""
    import multiprocessing as mp
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (as non-root, chmod alone suffices)")
    base = Path(tempfile.mkdtemp(prefix="sym3dinv-nobody-"))
    base.chmod(0o777)

    def run(fn: Callable[..., list[str]], *args: object) -> list[str]:
        out = base / "child-output.txt"
        p = mp.get_context("fork").Process(target=_child_as_nobody, args=(fn, args, str(out)))
        p.start()
        p.join(60)
        assert p.exitcode == 0, p.exitcode
        return out.read_text().splitlines()

    try:
        yield base, run
    finally:
        shutil.rmtree(base, ignore_errors=True)
