"""Typed, frozen configuration for every stage; the method's numbers (METHOD.md) are the defaults.

Config modules never import torch, so a flow can validate parameters without loading models.
``config_hash`` of the configs that shape an item's outputs is stored in the run index and drives resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sym3dinv.config.align import AlignConfig
from sym3dinv.config.generator import FFHQ_RENDERING, GeneratorConfig, RenderingConfig
from sym3dinv.config.invert import InversionConfig, Mode, Stage1Config, Stage2Config

__all__ = [
    "FFHQ_RENDERING",
    "AlignConfig",
    "GeneratorConfig",
    "InversionConfig",
    "Mode",
    "RenderingConfig",
    "Stage1Config",
    "Stage2Config",
    "config_hash",
    "replace_path",
    "to_dict",
]


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str))


def config_hash(*cfgs: Any) -> str:
    """Stable 16-hex-digit hash of one or more configs (field order and float repr independent)."""
    blob = json.dumps([type(c).__name__ for c in cfgs] + [to_dict(c) for c in cfgs], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def replace_path(cfg: Any, path: str, value: Any) -> Any:
    """``replace_path(cfg, "stage1.steps", 20)``: a copy with one nested field changed, type-checked.

    Used by the CLI's ``--set key=value`` overrides and by flow parameters; unknown keys are errors.
    """
    from sym3dinv.errors import ConfigError

    head, _, rest = path.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        raise ConfigError(f"unknown config field {head!r} in {type(cfg).__name__}; known: {sorted(fields)}")
    current = getattr(cfg, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{type(cfg).__name__}.{head} has no sub-fields (asked for {path!r})")
        return dataclasses.replace(cfg, **{head: replace_path(current, rest, value)})
    if isinstance(value, str) and not isinstance(current, str) and current is not None:
        try:
            value = type(current)(json.loads(value)) if not isinstance(current, tuple) else tuple(json.loads(value))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: cannot read {value!r} as {type(current).__name__}") from exc
    new = dataclasses.replace(cfg, **{head: value})
    validate = getattr(new, "validate", None)
    if callable(validate):
        validate()
    return new
