from __future__ import annotations

import pytest

from sym3dinv.config import InversionConfig, config_hash
from sym3dinv.config.presets import PRESETS, preset
from sym3dinv.errors import ConfigError


def test_paper_preset_is_the_method_default() -> None:
    assert PRESETS["paper"] == InversionConfig()
    assert preset("paper").stage1.steps == 500 and preset("paper").stage2.steps == 1000


def test_presets_are_complete_and_distinct() -> None:
    hashes = {config_hash(c) for c in PRESETS.values()}
    assert len(hashes) == len(PRESETS)
    cpu = preset("cpu", mode="pti")
    assert cpu.mode == "pti" and cpu.stage1.steps < 500 and cpu.stage2.pseudo_every == 4
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("turbo")
