"""The bulk job's configuration: what decides an item's outputs (:class:`PipelineConfig`, hashed for resume)
and how a run executes (:class:`ExecutionConfig`, not hashed).

Written once: the ``sym3dinv invert`` options are generated from these fields (``sym3dinv.cli.options``),
the ``bulk-invert`` flow takes these objects as typed parameters (Prefect validates them and shows the
field docstrings in its form), and ``prefect.yaml`` only sets values. No torch import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from sym3dinv.config.align import AlignConfig
from sym3dinv.config.core import PYDANTIC_CONFIG, replace_path
from sym3dinv.config.core import config_hash as _hash
from sym3dinv.config.invert import InversionConfig, Mode
from sym3dinv.config.presets import PRESET_NAMES, preset
from sym3dinv.config.quality import QualityConfig
from sym3dinv.config.store import LeaseConfig
from sym3dinv.store.layout import DEFAULT_VIEWS, view_name

PresetName = Literal[PRESET_NAMES]  # type: ignore[valid-type] - the choices come from the one preset registry
GroupBy = Literal["none", "folder"]
"""``PipelineConfig.group_by`` (the listing's ``sym3dinv.pipeline.grouping.GROUP_BY_CHOICES``)."""
GROUP_MAP_SUFFIXES = (".csv", ".parquet", ".pq")
DEFAULT_LOSSES = "lpips"


@dataclass(frozen=True)
class RenderSpec:
    """Cameras every item is rendered at, as (yaw, pitch) in radians around the EG3D pivot."""

    __pydantic_config__ = PYDANTIC_CONFIG

    views: tuple[tuple[float, float], ...] = DEFAULT_VIEWS
    """Camera to render as 'yaw,pitch' in radians (repeat)."""
    depth: bool = True
    """Also write each view's depth map."""

    def names(self) -> list[str]:
        """The render names of the views (``sym3dinv.store.layout.view_name``), as the store keys them."""
        return [view_name(y, p) for y, p in self.views]


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides an item's outputs; its :meth:`config_hash` keys resume in the store."""

    __pydantic_config__ = PYDANTIC_CONFIG

    generator: str = "synthheads"
    """'synthheads' (the embedded default), or an EG3D pickle / sym3dinv checkpoint path or URL."""
    encoder: str = field(default="", metadata={"hash": "non_default"})
    """Encoder file for presets that start from it (stage1.init='encoder': instant, quick); empty = the
    encoder that belongs to the generator (X_encoder.safetensors next to it; shipped for the embedded one)."""
    preset: PresetName = "paper"
    """Named inversion settings (sym3dinv/config/presets.py; speed/quality: paper > balanced > fast > cpu > smoke;
    instant and quick start from the trained encoder, docs/encoder.md)."""
    mode: Mode = "spi"
    """spi (symmetry prior), pti (pivotal tuning) or w+ (latent only)."""
    overrides: tuple[tuple[str, Any], ...] = ()
    """Inversion settings changed from the preset, e.g. (("stage1.steps", 20),) (type-checked)."""
    align: AlignConfig = field(default_factory=AlignConfig)
    """Face alignment of photos without a known camera."""
    render: RenderSpec = field(default_factory=RenderSpec)
    """Views every inverted item is rendered at."""
    losses: str = DEFAULT_LOSSES
    """'lpips' (METHOD.md's LPIPS + contextual), or 'module:function' returning a LossFunctions set,
    imported on each worker (dependency injection: the tests' cheap stand-in)."""
    group_by: GroupBy = "none"
    """'folder': the photos of each folder under the input are one person, inverted jointly into one head (one
    item; photos directly in the input root stay single items). 'none': every photo is its own item. Not in
    the config hash: a group's id already hashes its members."""
    group_map: str = ""
    """CSV or Parquet file (path or URL) with columns 'path' (relative to the input root, or absolute) and
    'group': the photos of one group are one person, inverted jointly into one head; photos not in it stay
    single items. Not in the config hash (a group's id hashes its members)."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if isinstance(self.overrides, Mapping):  # {"stage1.steps": 20} reads better in Python and YAML
            object.__setattr__(self, "overrides", tuple(sorted(self.overrides.items())))
        if self.preset not in PRESET_NAMES:
            raise ConfigError(f"unknown preset {self.preset!r}; known: {sorted(PRESET_NAMES)}")
        if self.mode not in ("spi", "pti", "w+"):
            raise ConfigError(f"unknown mode {self.mode!r}; use spi, pti or w+")
        if self.losses != DEFAULT_LOSSES and ":" not in self.losses:
            raise ConfigError(f"unknown losses {self.losses!r}; use {DEFAULT_LOSSES!r} or 'module:function'")
        if self.group_by not in get_args(GroupBy):
            raise ConfigError(f"unknown group_by {self.group_by!r}; use 'folder' (one folder per person) or 'none'")
        if self.group_map and self.group_by != "none":
            raise ConfigError("give either group_by='folder' (--group-by folder) or a group_map file (--group-map), "
                              "not both")
        if self.group_map and not self.group_map.lower().endswith(GROUP_MAP_SUFFIXES):
            raise ConfigError(f"group_map {self.group_map!r}: use a .csv or .parquet file with columns 'path' and "
                              "'group'")
        self.inversion  # noqa: B018 - validates overrides eagerly (config errors before any work)

    @property
    def inversion(self) -> InversionConfig:
        cfg = preset(self.preset, self.mode)
        for key, value in self.overrides:
            cfg = replace_path(cfg, key, value)
        return cfg

    @property
    def config_hash(self) -> str:
        # the generator *source string* is part of the hash: a different checkpoint is different work.
        # The class names and fields hashed here are frozen: stores written before any refactoring
        # must keep resuming (tests/test_config.py holds golden values).
        return _hash(self.inversion, self.align, self.render, _Source(self.generator, self.losses))

    def with_overrides(self, overrides: Mapping[str, Any]) -> PipelineConfig:
        """Inversion overrides merged into this config's (a key given again wins), sorted by key."""
        return replace(self, overrides=tuple(sorted({**dict(self.overrides), **dict(overrides)}.items())))

    def with_set(self, path: str, value: Any) -> PipelineConfig:
        """``--set path=value``: a field of this config (``align.min_confidence``, ``render.depth``) or,
        for any other path, an inversion override (``stage1.steps``)."""
        if path.partition(".")[0] in {f.name for f in fields(self)}:
            return replace_path(self, path, value)
        return self.with_overrides({path: value})

    def to_json(self) -> dict[str, Any]:
        return {"generator": self.generator, "preset": self.preset, "mode": self.mode,
                "overrides": [list(kv) for kv in self.overrides], "losses": self.losses,
                "views": [list(v) for v in self.render.views], "config_hash": self.config_hash,
                **({"group_by": self.group_by} if self.group_by != "none" else {}),
                **({"group_map": self.group_map} if self.group_map else {})}


@dataclass(frozen=True)
class _Source:
    """Hashed with the configs above (its name and fields are part of every stored config hash)."""

    generator: str
    losses: str


@dataclass(frozen=True)
class ExecutionConfig:
    """How a bulk run executes: sharding, Ray actors, resume. Never hashed: it does not change outputs."""

    __pydantic_config__ = PYDANTIC_CONFIG

    shard_size: int = 16
    """Items per shard (one index part each)."""
    num_actors: int = 2
    """Ray actors (each holds one generator)."""
    gpus_per_actor: float = 0.0
    """GPUs per actor (0 = CPU; CPU fallback where CUDA is missing on the worker)."""
    items_per_call: int = 0
    """Items an actor inverts with one shared stage-1 batch (0 = the preset's stage1.batch_size on GPU
    actors, 1 on CPU ones)."""
    resume: bool = True
    """Skip items already done under the same config (and adopt attempts committed but not indexed)."""
    retry_failed: bool = False
    """With resume, also redo items whose last try failed because of the input itself (decode_error,
    too_small, no_face, ...); by default a rerun settles them: the same bytes fail the same way."""
    new_generator: bool = False
    """With resume, when done items under this config were made by another generator (their generator
    fingerprint differs: other weights behind the same --generator), invert them again under this one (the old
    rows stay) instead of refusing to resume."""
    max_attempts: int = 3
    """Tries per item when its worker dies; after that the item is recorded as worker_lost."""
    ray_address: str | None = None
    """Ray cluster to join (ray://host:10001); default RAY_ADDRESS, else a local Ray is started."""
    quality: QualityConfig = field(default_factory=QualityConfig)
    """Thresholds of the poor-fit flag every done row gets (``quality``: ok or poor_fit, with the reason)."""
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    """Per-item leases in the run store: duration and heartbeat (runs sharing a store never invert an item
    twice; a killed run's items wait duration_s before another run takes them over)."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.shard_size < 1 or self.num_actors < 1 or self.max_attempts < 1:
            raise ConfigError("shard_size, num_actors and max_attempts must be >= 1")
        if self.gpus_per_actor < 0 or self.items_per_call < 0:
            raise ConfigError("gpus_per_actor and items_per_call must be >= 0")
