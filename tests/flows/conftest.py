"""Flow tests run against the session's temporary Prefect API; fixtures come from tests/plugin.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _prefect(prefect_api: None) -> None:
    """Every flow test talks to the one harness API of the session."""
