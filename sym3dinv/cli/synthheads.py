"""`sym3dinv synthheads ...`: render the procedural SynthHeads world (training data and the eval split)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="SynthHeads: procedural 3D heads with exact ground truth.")


def _numerics(threads: int) -> None:
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(threads)  # the tracer's ops are small: 1 thread per process is fastest


def _background(value: str) -> tuple[float, float, float]:
    parts = [float(v) for v in value.split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or not all(0 <= v <= 1 for v in parts):
        raise typer.BadParameter("background must be 'g' or 'r,g,b' with values in [0, 1]")
    return parts[0], parts[1], parts[2]


@app.command()
def make(
    out: str = typer.Argument(..., help="Output folder (images/, masks/, depth/, dataset.json, index.parquet)."),
    identities: int = typer.Option(100, help="Identities (seeds first_seed .. first_seed + N - 1)."),
    views: int = typer.Option(8, help="Random cameras per identity."),
    resolution: int = typer.Option(128, help="Image side in pixels."),
    first_seed: int = typer.Option(0, help="Seed of the first identity."),
    asymmetry_rate: float = typer.Option(0.5, help="Probability of each asymmetric detail."),
    yaw_range: float = typer.Option(70.0, help="Yaw uniform in +-this, degrees (stratified per identity)."),
    pitch_range: float = typer.Option(20.0, help="Pitch uniform in +-this, degrees."),
    background: str = typer.Option("0.5", help="Background colour: 'g' or 'r,g,b' in [0, 1]."),
    workers: int = typer.Option(1, help="Rendering processes."),
    antialias: int = typer.Option(1, help="Colour supersampling factor (depth/masks stay pixel-centre exact)."),
    threads: int = typer.Option(1, help="Torch threads in this process."),
) -> None:
    """Render a SynthHeads training dataset."""
    import math

    from sym3dinv.synthheads.dataset import make_dataset

    _numerics(threads)
    s = make_dataset(Path(out), identities, views, resolution, first_seed=first_seed, asymmetry_rate=asymmetry_rate,
                     yaw_range=math.radians(yaw_range), pitch_range=math.radians(pitch_range),
                     background=_background(background), workers=workers, antialias=antialias)
    typer.echo(f"{s.images} images of {s.identities} identities at {s.resolution} px -> {s.index}")


@app.command("eval-split")
def eval_split(
    out: str = typer.Argument(..., help="Output folder of the synthheads-eval split."),
    identities: int = typer.Option(50, help="Identities (seeds 1_000_000 + k)."),
    inputs: int = typer.Option(4, help="Input views per identity (yaw -60..60, pitch -15..15 deg)."),
    resolution: int = typer.Option(128, help="Image side in pixels."),
    background: str = typer.Option("0.5", help="Background colour: 'g' or 'r,g,b' in [0, 1]."),
    antialias: int = typer.Option(2, help="Colour supersampling factor."),
    threads: int = typer.Option(1, help="Torch threads."),
) -> None:
    """Render the fixed synthheads-eval split (inputs, GT views at yaw +-30/+-60 deg, mirrored cameras)."""
    from sym3dinv.synthheads.eval_split import make_eval_split

    _numerics(threads)
    index = make_eval_split(Path(out), identities, inputs, resolution, background=_background(background),
                            antialias=antialias)
    typer.echo(f"synthheads-eval: {identities} identities -> {index}")


@app.command()
def bench(
    resolution: int = typer.Option(64, help="Image side in pixels."),
    identities: int = typer.Option(6, help="Identities to render (each builds a fresh head)."),
    views: int = typer.Option(8, help="Views per identity (rendered in one batch)."),
    threads: int = typer.Option(1, help="Torch threads."),
) -> None:
    """Measure in-memory rendering speed (images per second, head construction included)."""
    import os
    import platform
    import time

    from sym3dinv.synthheads.dataset import render_views, sample_views

    _numerics(threads)
    render_views(0, sample_views(0, 2), resolution)  # warm-up
    t0 = time.perf_counter()
    for s in range(1, identities + 1):
        render_views(s, sample_views(s, views), resolution)
    dt = time.perf_counter() - t0
    typer.echo(f"{identities * views / dt:.1f} img/s at {resolution}x{resolution} ({identities} identities x {views} "
               f"views, {threads} thread(s); cpu: {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")


@app.command()
def train(
    out: str = typer.Argument(..., help="Output directory: cache, checkpoints (resumable), default_G.safetensors."),
    steps: int | None = typer.Option(None, help="Training steps (default: TrainConfig.steps, the shipped recipe)."),
    identities: int | None = typer.Option(None, help="Training identities, seeds 0..N-1 (default: TrainConfig)."),
    threads: int = typer.Option(2, help="Torch threads for training."),
    workers: int = typer.Option(2, help="Processes rendering the ground-truth cache (one thread each)."),
    stop_at: int | None = typer.Option(None, help="End this invocation at this step; run again to resume."),
) -> None:
    """Train the embedded generator on SynthHeads (CPU; resumes from the newest checkpoint in OUT)."""
    from sym3dinv.synthheads.train import main as train_main

    argv = [out, "--threads", str(threads), "--workers", str(workers)]
    for flag, value in (("--steps", steps), ("--identities", identities), ("--stop-at", stop_at)):
        if value is not None:
            argv += [flag, str(value)]
    raise typer.Exit(train_main(argv))
