"""The poor-fit flag's rules (issue 21); the flow test is tests/flows/test_poor_fit.py."""

from __future__ import annotations

import math

import pytest

from sym3dinv.config.quality import QualityConfig
from sym3dinv.errors import ConfigError
from sym3dinv.pipeline.quality import OK, POOR_FIT, assess


def test_an_ordinary_fit_is_ok() -> None:
    assert assess({"lpips_alex": 0.17, "identity": 0.6, "psnr": 24.0}, 0.3, 0.1) == (OK, None)


def test_the_demo_astronaut_is_poor() -> None:
    q, why = assess({"lpips_alex": 0.60, "ssim": 0.17}, 0.0, 0.0)
    assert q == POOR_FIT and why == "input-view LPIPS 0.600 > 0.5"


def test_every_reason_is_named() -> None:
    q, why = assess({"lpips_alex": 0.7, "identity": 0.05}, math.radians(70), math.radians(-40))
    assert q == POOR_FIT
    assert why is not None and [p.split()[0] for p in why.split("; ")] == ["input-view", "identity", "yaw", "pitch"]
    assert "+70.0 deg" in why and "-40.0 deg" in why


def test_missing_metrics_never_flag_and_thresholds_are_config() -> None:
    assert assess({}, None, None) == (OK, None)
    assert assess({"lpips_alex": float("nan")}, None, None) == (OK, None)
    assert assess({"lpips_alex": 0.2}, 0.0, 0.0, QualityConfig(max_input_lpips=0.1))[0] == POOR_FIT
    with pytest.raises(ConfigError, match="invalid quality thresholds"):
        QualityConfig(max_input_lpips=0)
