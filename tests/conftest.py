"""Shared test fixtures: paths to the shared reference data and CPU numerics set once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("SYM3DINV_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session", autouse=True)
def _cpu_numerics() -> None:
    import torch

    torch.set_flush_denormal(True)  # denormals make CPU convs many times slower
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def eg3d_fixtures() -> Path:
    p = SHARED_FIXTURES / "eg3d"
    if not p.is_dir():
        pytest.fail(f"shared EG3D fixtures not found at {p} (set SYM3DINV_SHARED_FIXTURES)")
    return p


@pytest.fixture(scope="session")
def lpips_fixtures() -> Path:
    p = SHARED_FIXTURES / "lpips"
    if not p.is_dir():
        pytest.fail(f"shared LPIPS fixtures not found at {p} (set SYM3DINV_SHARED_FIXTURES)")
    return p


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests (minutes each) run only when asked for with ``-m slow`` (or any -m naming it);
    ``gpu`` tests skip themselves where no CUDA device is present."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
