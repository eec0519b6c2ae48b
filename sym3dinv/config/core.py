"""The config mechanics every job shares: plain dicts, the resume hash, type-checked nested overrides,
and the field docstrings that the command line and the Prefect UI show as help.

No torch import (flows validate configs before any model loads)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str))


def _hashed_dict(cfg: Any) -> Any:
    """``to_dict`` without fields marked ``metadata={"hash": False}`` (speed switches that leave outputs the
    same), and without fields marked ``{"hash": "non_default"}`` while they hold their default: a field added
    later that way leaves the hashes of existing stores where they were, yet any other value is new work.
    Never change such a field's default afterwards: items made under the old default would hash the same."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: _hashed_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                if f.metadata.get("hash", True) is True
                or (f.metadata.get("hash") == "non_default" and getattr(cfg, f.name) != f.default)}
    return json.loads(json.dumps(cfg, sort_keys=True, default=str)) if not isinstance(cfg, tuple | list) else [
        _hashed_dict(v) for v in cfg]


def config_hash(*cfgs: Any) -> str:
    """Stable 16-hex-digit hash of one or more configs (field order and float repr independent).

    Fields marked ``metadata={"hash": False}`` do not count: switching a speed option must not make a
    store's finished items look undone."""
    blob = json.dumps([type(c).__name__ for c in cfgs] + [_hashed_dict(c) for c in cfgs], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _coerce(current: Any, value: Any, path: str) -> Any:
    """``value`` as the type of the field's current value, or ConfigError. Strings are read as JSON (CLI
    ``--set``); JSON values from flow parameters are checked too. Never truncates (``"1.5"`` is not an
    int), never overflows (``1e400``), never lets NaN/inf into a float field, and a bool is only a bool.
    Found by the property tests in ``tests/reliability/test_properties.py``."""
    import math

    from sym3dinv.errors import ConfigError

    want = type(current)
    if isinstance(value, str) and want is not str:
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: cannot read {value!r} as {want.__name__}") from exc
    bad = ConfigError(f"{path}: expected {want.__name__}, got {value!r} ({type(value).__name__})")
    if want is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if want is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if want is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad
        return float(value)
    if want is str:
        if not isinstance(value, str):
            raise bad
        return value
    if want is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if not current:
            return tuple(value)
        return tuple(_coerce(current[min(i, len(current) - 1)], v, f"{path}[{i}]") for i, v in enumerate(value))
    return value


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
    if current is not None:
        value = _coerce(current, value, path)
    new = dataclasses.replace(cfg, **{head: value})
    validate = getattr(new, "validate", None)
    if callable(validate):
        validate()
    return new


PYDANTIC_CONFIG: dict[str, Any] = {"use_attribute_docstrings": True}
"""Set as ``__pydantic_config__`` on every config dataclass: Prefect validates flow parameters with
pydantic, which then shows each field's docstring in the deployment's parameter form (a plain dict, so
this package never imports pydantic)."""


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its docstring (the string literal right below the field), for help texts.

    Read from the class source with :mod:`ast`, as pydantic's ``use_attribute_docstrings`` does; a field
    without one is missing from the dict. Cached per class."""
    cached = _DOCS.get(cls)
    if cached is not None:
        return cached
    import ast
    import inspect
    import textwrap

    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError, IndexError, AttributeError):
        body = []
    out: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            out[node.target.id] = inspect.cleandoc(after.value.value)
    _DOCS[cls] = out
    return out


_DOCS: dict[type, dict[str, str]] = {}
