"""Loads the suite's one fixtures plugin, ``tests/plugin.py`` (tiny generator and checkpoint, cheap losses,
fake store writer, input folders, Prefect harness, local Ray, numerics); folder conftests only pick
which of its fixtures they use."""

from __future__ import annotations

pytest_plugins = ["tests.plugin"]
