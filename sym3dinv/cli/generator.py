"""`sym3dinv generator ...`: inspect and convert generator checkpoints (EG3D pickles are read safely)."""

from __future__ import annotations

import dataclasses
import json

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect and convert generator checkpoints.")

_DTYPES = ("float32", "float16", "bfloat16")
SOURCE_HELP = "EG3D network .pkl, sym3dinv .safetensors (path or fsspec URL), or 'synthheads' for the default."
CONFIG_HELP = "JSON with init_kwargs, for a plain state-dict .safetensors (default: NAME.json next to it)."


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


@app.command()
def info(
    source: str = typer.Argument("synthheads", help=SOURCE_HELP),
    config: str | None = typer.Option(None, help=CONFIG_HELP),
) -> None:
    """Print a JSON summary: format, init kwargs, parameter count, num_ws, resolutions."""
    from sym3dinv.errors import ConfigError
    from sym3dinv.generator.checkpoint import describe_generator

    try:
        summary = describe_generator(source, config=config)
    except ConfigError as exc:  # includes CheckpointError and ModelNotFoundError
        raise _fail(exc) from exc
    typer.echo(json.dumps(dataclasses.asdict(summary), indent=1))


@app.command()
def convert(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    out: str = typer.Argument(..., help="Output NAME.safetensors (a NAME.json sidecar is written next to it)."),
    dtype: str = typer.Option("float32", help=f"Stored weight dtype: {', '.join(_DTYPES)}."),
    config: str | None = typer.Option(None, help=CONFIG_HELP),
) -> None:
    """Convert a checkpoint (e.g. an EG3D network pickle) to sym3dinv's safetensors format."""
    import torch

    from sym3dinv.errors import ConfigError
    from sym3dinv.generator.checkpoint import load_generator, save_generator

    if dtype not in _DTYPES:
        raise _fail(ConfigError(f"--dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}"))
    try:
        G = load_generator(source, config=config)
        path = save_generator(G, out, dtype=getattr(torch, dtype), metadata={"converted_from": source})
    except ConfigError as exc:  # includes CheckpointError and ModelNotFoundError
        raise _fail(exc) from exc
    typer.echo(path)
