"""`sym3dinv generator ...`: inspect and convert generator checkpoints."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect and convert generator checkpoints.")


@app.command()
def info(source: str = typer.Argument("synthheads", help="EG3D .pkl, our .safetensors, path or fsspec URL, or 'synthheads'.")) -> None:
    """Print a JSON summary of a generator checkpoint (loaded safely; nothing in it is executed)."""
    from sym3dinv.generator import load_generator

    G = load_generator(source)
    rk = G.rendering_kwargs
    typer.echo(json.dumps({
        "source": source,
        "parameters": sum(p.numel() for p in G.parameters()),
        "num_ws": G.num_ws, "z_dim": G.z_dim, "w_dim": G.w_dim, "img_resolution": G.img_resolution,
        "neural_rendering_resolution": G.neural_rendering_resolution,
        "superresolution_module": rk.get("superresolution_module"),
        "samples_per_ray": [rk["depth_resolution"], rk["depth_resolution_importance"]],
        "ray_range": [rk["ray_start"], rk["ray_end"]],
    }, indent=1))


@app.command()
def convert(source: str, out: str, fp16: bool = typer.Option(False, help="Store weights in float16.")) -> None:
    """Convert an EG3D network pickle (or any supported checkpoint) to sym3dinv's safetensors format."""
    import torch

    from sym3dinv.generator import load_generator, save_generator

    G = load_generator(source)
    save_generator(G, out, dtype=torch.float16 if fp16 else None, metadata={"converted_from": source})
    typer.echo(out)
