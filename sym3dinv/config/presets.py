"""Named inversion presets: complete configs, selectable by name from the CLI and flow parameters.

``paper`` is METHOD.md's configuration (500 + up to 1000 steps, LPIPS at 256/512): the default on a GPU.
``balanced`` halves both stages' steps (250 + up to 500) and runs stage 2's input-view LPIPS at 256 px;
``fast`` is 100 + up to 200 steps with fewer mean-w samples. Their measured novel-view LPIPS cost next to
their time is in docs/performance.md (speed/quality knob: paper > balanced > fast > cpu > smoke).
``cpu`` is a reduced-step configuration that still shows the symmetry prior's effect on CPU with the
embedded 128-px SynthHeads generator (losses at the generator's resolution, fewer mean-w samples).
``instant`` is the trained encoder's answer alone (one forward pass, no optimisation; ``sym3dinv.encoder``)
and ``quick`` starts a short stage 1 and a short SPI stage 2 from it; both need the encoder of the
generator (``stage1.init = "encoder"``, which any preset can switch on).
``smoke`` is for tests and demos that only need the pipeline to run end to end.
``cpu-demo`` (an alias of ``cpu``) is what ``sym3dinv demo`` runs.

This is the one registry of presets: :class:`~sym3dinv.config.pipeline.PipelineConfig`'s ``preset`` field
takes its choices from :data:`PRESET_NAMES`, and so do the command line and the Prefect parameter form.
To add a preset, add an entry to :data:`PRESETS` (or :data:`ALIASES`) here; nothing else changes.
"""

from __future__ import annotations

from dataclasses import replace

from sym3dinv.config.invert import InversionConfig, Stage1Config, Stage2Config

PRESETS: dict[str, InversionConfig] = {
    "paper": InversionConfig(),
    "balanced": InversionConfig(
        stage1=replace(Stage1Config(), steps=250, w_avg_samples=5000),
        stage2=replace(Stage2Config(), steps=500, lpips_resolution=256),
    ),
    "fast": InversionConfig(
        stage1=replace(Stage1Config(), steps=100, w_avg_samples=2000),
        stage2=replace(Stage2Config(), steps=200, lpips_resolution=256),
    ),
    "cpu": InversionConfig(
        stage1=replace(Stage1Config(), steps=60, w_avg_samples=2000, lpips_resolution=128),
        stage2=replace(Stage2Config(), steps=60, lpips_resolution=128),
    ),
    "quick": InversionConfig(
        stage1=replace(Stage1Config(), steps=20, init="encoder", w_avg_samples=2000, lpips_resolution=256,
                       optimize_noise=False),
        stage2=replace(Stage2Config(), steps=40, lpips_resolution=256),
    ),
    "instant": InversionConfig(
        stage1=replace(Stage1Config(), steps=0, init="encoder", w_avg_samples=2000, lpips_resolution=256,
                       optimize_noise=False),
        stage2=replace(Stage2Config(), steps=0, lpips_resolution=256),
    ),
    "smoke": InversionConfig(
        stage1=replace(Stage1Config(), steps=4, w_avg_samples=200, lpips_resolution=64),
        stage2=replace(Stage2Config(), steps=4, lpips_resolution=64),
    ),
}


ALIASES: dict[str, str] = {"cpu-demo": "cpu"}
"""Other names of presets (the demo's); an alias hashes like its preset, so stores resume across them."""

PRESET_NAMES: tuple[str, ...] = (*PRESETS, *ALIASES)


def preset(name: str, mode: str | None = None) -> InversionConfig:
    """A named preset (or alias), optionally switched to another mode (``w+``, ``pti``, ``spi``)."""
    from sym3dinv.errors import ConfigError

    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r}; known: {sorted(PRESET_NAMES)}")
    cfg = PRESETS[ALIASES.get(name, name)]
    return replace(cfg, mode=mode) if mode is not None else cfg
