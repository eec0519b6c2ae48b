"""Reuse the flow tests' tiny checkpoint fixture (session-scoped, no Prefect needed here)."""

from __future__ import annotations

from tests.flows.conftest import tiny_checkpoint  # noqa: F401 - fixture re-export
