"""`sym3dinv encoder ...`: train the feed-forward encoder of a generator (docs/encoder.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from sym3dinv.cli.options import config_options
from sym3dinv.config.encoder import EncoderTrainConfig

app = typer.Typer(no_args_is_help=True, help="The image encoder (instant/quick presets): train it for a generator.")


@app.command()
@config_options(EncoderTrainConfig, fields=("steps", "batch", "lr", "synthheads_identities", "seed"),
                sets="novel_weight=0.5")
def train(
    out: str = typer.Argument(..., help="Output folder: checkpoint.pt (resumable), train_log.jsonl, encoder.safetensors."),
    config: EncoderTrainConfig = None,  # type: ignore[assignment]  # replaced by config_options
    generator: str = typer.Option("synthheads-v2", "--generator", "-g",
                                  help="Generator: an embedded name, a .safetensors/.pkl path or URL."),
    threads: int = typer.Option(2, help="Torch threads for training."),
    workers: int = typer.Option(2, help="Processes rendering the SynthHeads share once (one thread each)."),
    stop_at: int | None = typer.Option(None, help="End this invocation at this step; run again to resume."),
) -> None:
    """Train (or resume) the encoder of GENERATOR on its own samples (+ SynthHeads renders when it ships
    identity codes); the result is OUT/encoder.safetensors, bound to that generator's fingerprint."""
    from sym3dinv.encoder.data import build_bank
    from sym3dinv.encoder.train import train_encoder
    from sym3dinv.errors import Sym3dInvError
    from sym3dinv.generator import load_generator
    from sym3dinv.generator.checkpoint import embedded_name
    from sym3dinv.perf import cpu_numerics
    from sym3dinv.synthheads.codes import embedded_codes

    cpu_numerics(max(1, threads))
    try:
        G = load_generator(generator)
        bank = None
        if embedded_name(generator) is not None and config.synthheads_fraction > 0:
            try:
                z = embedded_codes(generator)
            except Sym3dInvError as exc:
                typer.echo(f"no SynthHeads share: {exc}", err=True)
            else:
                bank = build_bank(config, z, G.img_resolution, Path(out) / "synthheads_bank.safetensors", workers)
        path = train_encoder(G, config, Path(out), bank=bank, generator_name=generator, stop_at=stop_at)
    except Sym3dInvError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"encoder: {path}")
