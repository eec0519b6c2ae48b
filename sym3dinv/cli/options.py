"""Command-line options generated from config dataclasses (nerfstudio's way: the config writes the CLI).

A command declares the config it takes as one parameter and decorates itself with :func:`config_options`::

    @app.command("build")
    @config_options(DatasetConfig, flatten=("cameras",), flags={"cameras.n_views": Flag(("--views",))})
    def build(store: str = typer.Argument(...), config: DatasetConfig = DEFAULT) -> None: ...

Every scalar field (``bool``, ``int``, ``float``, ``str``, a ``Literal`` or any of them ``| None``) becomes an
option named after the field (``n_yaw`` -> ``--n-yaw``) whose help is the field's docstring and whose
default is the field's default; a tuple field takes ``A,B,...`` and a tuple of tuples a repeated option.
Fields of nested configs listed in ``flatten`` get options too (a dotted leaf such as
``align.camera_format`` gets just that one); the others, and anything else, are
reachable with ``--set path=value`` (JSON values, type-checked by :func:`sym3dinv.config.replace_path`)
when ``sets=True``. The command receives the finished, validated config; a :class:`ConfigError` while
building it is a usage error (exit 2). So adding a field to a config adds its option: nothing to copy.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, Union

import typer

from sym3dinv.config.core import field_docs, replace_path
from sym3dinv.errors import ConfigError

DEFAULT: Any = None
"""Placeholder default of a command's config parameter (the decorator replaces the parameter)."""

_SCALARS = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one field shows on the command line when the generated option is not enough."""

    names: tuple[str, ...] = ()
    """More option names (earlier releases' spellings); with ``only`` they replace the generated one."""
    parser: Callable[[str], Any] | None = None
    """Text of one occurrence -> the field's value (or one element, for a tuple of tuples)."""
    only: bool = False
    help: str | None = None
    """Help text instead of the field's docstring."""


@dataclasses.dataclass(frozen=True)
class _Leaf:
    path: str
    owner: type
    name: str
    hint: Any
    default: Any


def config_options(cls: type, *, param: str = "config", fields: Sequence[str] | None = None,
                   flatten: Sequence[str] = (), exclude: Sequence[str] = (), flags: Mapping[str, Flag] | None = None,
                   sets: str | None = None, base: Callable[[], Any] | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: replace the command's ``param`` parameter by one option per field of ``cls``.

    ``fields`` limits the options to these paths; ``exclude`` drops paths; ``flatten`` names nested configs
    whose fields get options (``cameras`` -> ``--n-yaw``); ``flags`` adjusts single options; ``sets`` (an
    example such as ``"stage1.steps=50"``) adds ``--set path=value``; ``base`` makes the defaults
    (default ``cls()``). The options stand where ``param`` stood in the signature.
    """
    make = base or cls
    flags = dict(flags or {})

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        leaves = [leaf for leaf in _leaves(cls, make(), "", tuple(flatten))
                  if leaf.path not in exclude and (fields is None or leaf.path in fields)]
        keys = {leaf.path: f"{param}__{leaf.path.replace('.', '__')}" for leaf in leaves}
        extra = [_parameter(keys[leaf.path], leaf, flags.get(leaf.path)) for leaf in leaves]
        if sets:
            extra.append(inspect.Parameter(f"{param}__set", inspect.Parameter.KEYWORD_ONLY, annotation=list[str],
                                           default=typer.Option([], "--set", help=_SET_HELP.format(sets))))
        own = list(inspect.signature(fn, eval_str=True).parameters.values())
        at = [p.name for p in own].index(param)

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values = {leaf.path: _value(kwargs.pop(keys[leaf.path]), leaf, flags.get(leaf.path)) for leaf in leaves}
            pairs = kwargs.pop(f"{param}__set", None) or []
            try:
                config = apply_sets(build(make(), values), pairs)
            except ConfigError as exc:
                raise typer.BadParameter(str(exc)) from exc
            return fn(**kwargs, **{param: config})

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params[at:at + 1] = extra
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def build(base: Any, values: Mapping[str, Any]) -> Any:
    """``base`` with the fields at dotted ``values`` paths replaced (nested configs rebuilt, so every
    ``__post_init__`` validates); a value of :data:`_KEEP` keeps the base's."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        if value is _KEEP:
            continue
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = build(getattr(base, head), sub)
    return dataclasses.replace(base, **top) if top else base


def apply_sets(config: Any, pairs: Sequence[str]) -> Any:
    """``--set path=value`` pairs applied in order (the config's ``with_set`` when it has one)."""
    for pair in pairs:
        path, sep, raw = pair.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set wants path=value, got {pair!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        setter = getattr(config, "with_set", None)
        config = setter(path.strip(), value) if callable(setter) else replace_path(config, path.strip(), value)
    return config


_SET_HELP = "Any nested setting as path=value (a JSON value), e.g. {}; repeat."
_KEEP: Any = object()


def _leaves(cls: type, default: Any, prefix: str, flatten: tuple[str, ...], whole: bool = True) -> Iterator[_Leaf]:
    """Option leaves: every scalar field of ``cls`` when ``whole``, else only those named in ``flatten``
    (``flatten=("align.camera_format",)`` gives one option of a nested config, not all of them)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path, hint, value = prefix + f.name, hints[f.name], getattr(default, f.name)
        if dataclasses.is_dataclass(hint):
            if path in flatten:
                yield from _leaves(hint, value, path + ".", flatten)  # type: ignore[arg-type]
            elif any(x.startswith(path + ".") for x in flatten):
                yield from _leaves(hint, value, path + ".", flatten, whole=False)  # type: ignore[arg-type]
        elif _shape(hint) is not None and (whole or path in flatten):
            yield _Leaf(path, cls, f.name, hint, value)


def _optional(hint: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, True) or (hint, False)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _scalar(hint: Any) -> bool:
    return hint in _SCALARS or typing.get_origin(hint) is Literal


def _shape(hint: Any) -> str | None:
    """``scalar``, ``tuple`` (of scalars), ``tuples`` (of tuples of scalars) or None (not an option)."""
    inner, _ = _optional(hint)
    if _scalar(inner):
        return "scalar"
    if typing.get_origin(inner) is tuple:
        args = [a for a in typing.get_args(inner) if a is not Ellipsis]
        if args and all(_scalar(a) for a in args):
            return "tuple"
        if len(args) == 1 and typing.get_origin(args[0]) is tuple and all(_scalar(a) for a in typing.get_args(args[0])
                                                                          if a is not Ellipsis):
            return "tuples"
    return None


def _parameter(key: str, leaf: _Leaf, flag: Flag | None) -> inspect.Parameter:
    flag = flag or Flag()
    name = "--" + leaf.name.replace("_", "-")
    names = list(flag.names) if flag.only else [name, *flag.names]
    shape, (inner, optional) = _shape(leaf.hint), _optional(leaf.hint)
    text = _help(flag.help or field_docs(leaf.owner).get(leaf.name, ""))
    if typing.get_origin(inner) is Literal:  # the metavar <a|b|c> wraps mid-word in a narrow terminal
        text += " Choices: " + ", ".join(map(str, typing.get_args(inner))) + "."
    if shape == "scalar":
        annotation: Any = inner | None if optional else inner
        if inner is bool:
            names = [f"{n}/--no-{n[2:]}" for n in names]
        option = typer.Option(leaf.default, *names, help=text)
    elif shape == "tuple":
        annotation = str | None
        shown = ",".join(map(str, leaf.default)) if leaf.default is not None else None
        option = typer.Option(shown, *names, help=text)
    else:
        annotation = list[str]
        option = typer.Option([], *names, help=text)
    return inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)


def _value(raw: Any, leaf: _Leaf, flag: Flag | None) -> Any:
    """The field value of an option's raw value (text parsed for tuple fields)."""
    shape = _shape(leaf.hint)
    parser = flag.parser if flag is not None else None
    if shape == "scalar":
        return raw
    if shape == "tuple":
        if raw is None:
            return None
        return parser(raw) if parser else _split(raw, _optional(leaf.hint)[0])
    if not raw:
        return _KEEP  # no occurrence: the default
    element = typing.get_args(_optional(leaf.hint)[0])[0]
    return tuple(parser(r) if parser else _split(r, element) for r in raw)


def _split(text: str, hint: Any) -> tuple[Any, ...]:
    """``"a,b"`` -> a tuple converted by the tuple type's element types."""
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out = []
    for i, part in enumerate(parts):
        want = args[min(i, len(args) - 1)]
        want = str if typing.get_origin(want) is Literal else want
        try:
            out.append(want(part) if want is not bool else part.lower() in ("1", "true", "yes", "on"))
        except ValueError as exc:
            raise typer.BadParameter(f"expected {want.__name__} values separated by ',', got {text!r}") from exc
    return tuple(out)


def _help(doc: str) -> str:
    """A docstring as option help: one paragraph, without reST markup, with '[' escaped for rich."""
    text = " ".join(doc.split())
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
    return text.replace("[", "\\[")
