"""``sym3dinv.cli.options``: command-line options generated from config dataclasses (the config is written
once; the CLI follows it)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import typer
from typer.testing import CliRunner

from sym3dinv.cli.options import DEFAULT, Flag, config_options
from sym3dinv.config import ExecutionConfig, LeaseConfig, PipelineConfig, field_docs
from sym3dinv.config.quality import QualityConfig


@dataclass(frozen=True)
class Inner:
    size: int = 3
    """Side of the thing."""
    pair: tuple[float, float] = (-1.0, 1.0)
    """LOW,HIGH."""


@dataclass(frozen=True)
class Toy:
    name: str = "a"
    """The name."""
    kind: Literal["x", "y"] = "x"
    """x or y."""
    ratio: float | None = None
    """None = automatic."""
    on: bool = True
    """Whether it is on."""
    views: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    """Repeat 'a,b'."""
    inner: Inner = field(default_factory=Inner)
    hidden: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.inner.size < 0:
            raise ConfigError("inner.size must be >= 0")


def _app(**options: object) -> tuple[typer.Typer, list[Toy]]:
    got: list[Toy] = []
    app = typer.Typer()

    @app.command()
    @config_options(Toy, **options)  # type: ignore[arg-type]
    def cmd(path: str = typer.Argument(...), config: Toy = DEFAULT, loud: bool = typer.Option(False)) -> None:
        got.append(config)
        typer.echo(json.dumps({"path": path, "loud": loud}))

    return app, got


def test_every_scalar_field_is_an_option_with_its_docstring_as_help() -> None:
    app, got = _app(flatten=("inner",), sets="hidden.size=4")
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for flag, doc in [("--name", "The name."), ("--kind", "x or y."), ("--ratio", "None = automatic."),
                      ("--on", "Whether it is on."), ("--size", "Side of the thing."), ("--pair", "LOW,HIGH."),
                      ("--views", "Repeat 'a,b'."), ("--set", "hidden.size=4")]:
        assert flag in r.output and doc in r.output, (flag, r.output)
    assert "--hidden" not in r.output  # a nested config not flattened is reached with --set
    r = CliRunner().invoke(app, ["p"])
    assert r.exit_code == 0 and got[-1] == Toy()  # no option given: exactly the defaults


def test_values_reach_the_config_typed_and_validated() -> None:
    app, got = _app(flatten=("inner",), sets="hidden.size=4", flags={"name": Flag(("--label",))})
    r = CliRunner().invoke(app, ["p", "--label", "b", "--kind", "y", "--ratio", "0.5", "--no-on", "--size", "7",
                                 "--pair", "-2,3", "--views", "0.1,0.2", "--views", "0.3,0", "--set", "hidden.size=9",
                                 "--loud"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"path": "p", "loud": True}  # the command's own parameters are untouched
    assert got[-1] == Toy(name="b", kind="y", ratio=0.5, on=False, views=((0.1, 0.2), (0.3, 0.0)),
                          inner=Inner(size=7, pair=(-2.0, 3.0)), hidden=Inner(size=9))
    for args, words in [(["p", "--kind", "z"], "'z'"), (["p", "--size", "-1"], "inner.size must be >= 0"),
                        (["p", "--set", "hidden.sise=1"], "unknown config field"), (["p", "--set", "x"], "path=value"),
                        (["p", "--pair", "a,b"], "expected float")]:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and words in r.output, (args, r.output)


def test_fields_exclude_and_base_pick_the_options() -> None:
    app, got = _app(fields=("name", "inner.size"), flatten=("inner",), base=lambda: Toy(name="demo"))
    r = CliRunner().invoke(app, ["--help"])
    assert "--name" in r.output and "--size" in r.output and "--kind" not in r.output and "--set" not in r.output
    CliRunner().invoke(app, ["p"])
    assert got[-1] == Toy(name="demo")


def test_invert_has_an_option_for_every_field_of_its_configs() -> None:
    """``sym3dinv invert`` is generated from PipelineConfig, ExecutionConfig and StoreConfig: a field added
    there is an option here (with its docstring), the presets are the registry's."""
    from sym3dinv.cli import app
    from sym3dinv.config.presets import PRESET_NAMES

    if not any(c.name == "invert" for c in app.registered_commands):
        from flows.cli import demo, invert

        app.command("invert")(invert)
        app.command("demo")(demo)
    r = CliRunner().invoke(app, ["invert", "--help"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    for f in dataclasses.fields(ExecutionConfig):
        if f.name == "lease":  # a nested config: one option per field, named --lease-<field>
            for g in dataclasses.fields(LeaseConfig):
                assert "--lease-" + g.name.replace("_", "-") in r.output and field_docs(LeaseConfig)[g.name][:30] in r.output
            continue
        if f.name == "quality":  # nested too: its fields' own names (--max-input-lpips, ...)
            for g in dataclasses.fields(QualityConfig):
                assert "--" + g.name.replace("_", "-") in r.output and field_docs(QualityConfig)[g.name][:30] in r.output
            continue
        assert "--" + f.name.replace("_", "-") in r.output and field_docs(ExecutionConfig)[f.name][:30] in r.output
    for name in ("--generator", "--preset", "--mode", "--view", "--depth", "--set", "--endpoint-url", "--actors"):
        assert name in r.output, name
    assert "|".join(PRESET_NAMES) in r.output and "--losses" not in r.output
    # one field of a nested config (align.camera_format), not its siblings
    assert "--camera-format" in r.output and "--output-size" not in r.output and "colmap" in r.output
    assert field_docs(PipelineConfig)["generator"][:40] in r.output


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    import click

    for name, cmd in getattr(group, "commands", {}).items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def test_every_preset_option_lists_every_preset_in_a_narrow_terminal() -> None:
    """Each command's ``--preset`` (generated from PipelineConfig) offers the registry's presets, and its
    help names each of them as a whole word at 80 columns (the <a|b|c> metavar wraps mid-word)."""
    import typer.main

    from flows.cli import demo, invert
    from sym3dinv.cli import app
    from sym3dinv.config.presets import PRESET_NAMES

    if not any(c.name == "invert" for c in app.registered_commands):
        app.command("invert")(invert)
        app.command("demo")(demo)
    found = []
    for path, cmd in _commands(typer.main.get_command(app)):
        for p in cmd.params:
            if "--preset" in getattr(p, "opts", ()):
                kind = getattr(p, "type", None)  # typer builds the click type lazily on some versions
                assert kind is None or tuple(getattr(kind, "choices", PRESET_NAMES)) == PRESET_NAMES, path
                found.append(path)
                r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
                assert r.exit_code == 0, r.output
                words = set(re.findall(r"[\w-]+", r.output))
                assert set(PRESET_NAMES) <= words, (path, set(PRESET_NAMES) - words)
    assert ("invert",) in found
