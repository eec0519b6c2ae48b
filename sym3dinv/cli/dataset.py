"""`sym3dinv dataset ...`: multi-view datasets from a finished run store (heavy imports inside commands)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from sym3dinv.cli.options import DEFAULT, Flag, config_options
from sym3dinv.config.dataset import DatasetConfig, EditSpec
from sym3dinv.config.store import StoreConfig
from sym3dinv.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="Build multi-view datasets (EG3D dataset.json, nerfstudio transforms.json, Parquet).")

_EDIT = typer.Option([], "--edit", help="Latent edit NAME=PATH.npy[:S1,S2,...] (strengths default -1,1); repeat, or "
                                        "comma-separate several edits whose strengths are given.")
_IDENTITY = typer.Option([], "--identity", help="Only this item id (repeat); default: every done item.")


def parse_range(text: str, what: str) -> tuple[float, float]:
    """'LOW,HIGH' (radians) -> (low, high); a single number X means (-X, X)."""
    parts = [p for p in text.replace(":", ",").split(",") if p.strip()]
    try:
        vals = [float(p) for p in parts]
    except ValueError as exc:
        raise typer.BadParameter(f"{what}: expected LOW,HIGH in radians, got {text!r}") from exc
    if len(vals) == 1:
        return (-abs(vals[0]), abs(vals[0]))
    if len(vals) != 2:
        raise typer.BadParameter(f"{what}: expected LOW,HIGH in radians, got {text!r}")
    return (vals[0], vals[1])


def parse_edits(specs: list[str]) -> list[tuple[str, str, tuple[float, ...]]]:
    """``name=path[:s1,s2]`` items (each --edit may hold several, separated by ',' after strengths)."""
    out: list[tuple[str, str, tuple[float, ...]]] = []
    for spec in specs:
        # split "a=x.npy:1,2,b=y.npy:-1" into edits: a new edit starts at a token containing '='
        tokens = spec.split(",")
        groups: list[list[str]] = []
        for tok in tokens:
            if "=" in tok or not groups:
                groups.append([tok])
            else:
                groups[-1].append(tok)
        for g in groups:
            head = g[0]
            name, sep, rest = head.partition("=")
            if not sep or not name.strip() or not rest.strip():
                raise typer.BadParameter(f"--edit wants NAME=PATH[:S1,S2,...], got {spec!r}")
            path, strengths_txt = rest, ""
            if ":" in rest:
                cand_path, _, cand = rest.rpartition(":")
                try:
                    float(cand)
                    path, strengths_txt = cand_path, cand
                except ValueError:
                    path = rest
            texts = ([strengths_txt] if strengths_txt else []) + g[1:]
            try:
                strengths = tuple(float(t) for t in texts) if texts else (-1.0, 1.0)
            except ValueError as exc:
                raise typer.BadParameter(f"--edit {spec!r}: strengths must be numbers") from exc
            out.append((name.strip(), path.strip(), strengths))
    return out


def _range(what: str) -> Callable[[str], tuple[float, float]]:
    return lambda text: parse_range(text, what)


@app.command("build")
@config_options(StoreConfig, param="storage", fields=("endpoint_url",))
@config_options(DatasetConfig, flatten=("cameras",), exclude=("edits", "shard_size"), flags={
    "cameras.kind": Flag(("--cameras",), only=True),
    "cameras.n_views": Flag(("--views",)),
    "cameras.labels_path": Flag(("--labels",)),
    "cameras.yaw_range": Flag(parser=_range("--yaw-range")),
    "cameras.pitch_range": Flag(parser=_range("--pitch-range")),
    "mesh_formats": Flag(("--mesh-format",))})
def build(
    store: str = typer.Argument(..., help="Run store URL (path, file://, s3://...)."),
    out: str = typer.Argument(..., help="Dataset output URL (path, file://, s3://, memory://)."),
    config: DatasetConfig = DEFAULT,
    storage: StoreConfig = DEFAULT,
    edit: list[str] = _EDIT,
    identity: list[str] = _IDENTITY,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render every done identity of STORE into a multi-view dataset at OUT (resumable)."""
    import dataclasses
    import json

    from sym3dinv.dataset import build_dataset
    from sym3dinv.perf import cpu_numerics
    from sym3dinv.store import storage_options

    if config.device == "cpu":
        cpu_numerics()
    try:
        config = dataclasses.replace(config, edits=tuple(EditSpec(n, p, s) for n, p, s in parse_edits(edit)))
        summary = build_dataset(store, out, config, identities=list(identity) or None,
                                storage_options=storage_options(storage.endpoint_url))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(summary), indent=1))
    else:
        for line in summary.lines():
            typer.echo(line)
        for iid, msg in summary.failed:
            typer.echo(f"  failed {iid}: {msg}")
    if summary.failed:
        raise typer.Exit(1)
