from __future__ import annotations

import dataclasses

import pytest

from sym3dinv.config import InversionConfig, config_hash, replace_path
from sym3dinv.errors import ConfigError


def test_defaults_are_the_methods_numbers() -> None:
    cfg = InversionConfig()
    assert (cfg.stage1.steps, cfg.stage1.lr, cfg.stage1.noise_scale, cfg.stage1.noise_reg_weight) == (500, 0.01, 0.05, 1e5)
    assert (cfg.stage2.steps, cfg.stage2.lr, cfg.stage2.lpips_threshold, cfg.stage2.pseudo_every) == (1000, 3e-4, 0.05, 4)
    assert (cfg.stage2.warp_weight, cfg.stage2.mirror_weight, cfg.stage2.depth_reg_weight) == (0.1, 0.05, 1.0)


def test_config_hash_is_stable_and_sensitive() -> None:
    a, b = InversionConfig(), InversionConfig()
    assert config_hash(a) == config_hash(b)
    c = replace_path(a, "stage1.steps", 20)
    assert c.stage1.steps == 20 and a.stage1.steps == 500
    assert config_hash(c) != config_hash(a)


def test_replace_path_parses_strings_and_rejects_unknown_keys() -> None:
    cfg = replace_path(InversionConfig(), "stage2.lr", "0.001")
    assert cfg.stage2.lr == pytest.approx(0.001)
    with pytest.raises(ConfigError, match="unknown config field"):
        replace_path(cfg, "stage1.stepz", 3)
    with pytest.raises(ConfigError, match="mode must be"):
        replace_path(cfg, "mode", "xyz")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mode = "pti"  # type: ignore[misc]


def test_speed_switches_do_not_change_the_resume_hash() -> None:
    """perf.* only changes how fast outputs come, so a store's finished items stay done when it is toggled;
    the golden value guards against an accidental change that would make every store redo its work."""
    from sym3dinv.pipeline import PipelineConfig

    base = PipelineConfig(preset="cpu")
    assert base.config_hash == "92ff4eb09954949a"  # same as before the perf switches existed
    assert PipelineConfig(preset="cpu", overrides=(("perf.cache_target_features", False),)).config_hash == base.config_hash
    assert PipelineConfig(preset="cpu", overrides=(("stage1.steps", 5),)).config_hash != base.config_hash
