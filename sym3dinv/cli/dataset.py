"""`sym3dinv dataset ...`: multi-view datasets from a finished run store (heavy imports inside commands)."""

from __future__ import annotations

import typer

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


@app.command("build")
def build(
    store: str = typer.Argument(..., help="Run store URL (path, file://, s3://...)."),
    out: str = typer.Argument(..., help="Dataset output URL (path, file://, s3://, memory://)."),
    cameras: str = typer.Option("grid", "--cameras", help="grid | orbit | ffhq | labels"),
    yaw_range: str = typer.Option("-0.6,0.6", "--yaw-range", help="LOW,HIGH radians (EG3D sampler yaw)."),
    pitch_range: str = typer.Option("-0.25,0.25", "--pitch-range", help="LOW,HIGH radians."),
    n_yaw: int = typer.Option(5, "--n-yaw", help="grid: yaw steps."),
    n_pitch: int = typer.Option(3, "--n-pitch", help="grid: pitch steps."),
    views: int = typer.Option(16, "--views", help="orbit / ffhq / labels: number of views."),
    seed: int = typer.Option(0, "--seed", help="ffhq / labels: sampling seed."),
    labels: str | None = typer.Option(None, "--labels", help="labels: an EG3D dataset.json to draw poses from."),
    resolution: int | None = typer.Option(None, "--resolution", help="RGB side (default: the generator's)."),
    depth_resolution: int | None = typer.Option(None, "--depth-resolution",
                                                help="Depth/alpha side (default: neural rendering resolution)."),
    mask_threshold: float = typer.Option(0.9, "--mask-threshold", help="mask = alpha > this."),
    mesh: bool = typer.Option(False, "--mesh", help="Also extract a coloured mesh per identity and edit."),
    mesh_resolution: int = typer.Option(128, "--mesh-resolution", help="Marching-cubes grid side."),
    mesh_threshold: float = typer.Option(10.0, "--mesh-threshold", help="Raw density level (EG3D: 10)."),
    mesh_format: str = typer.Option("ply", "--mesh-format", help="ply, glb or ply,glb"),
    edit: list[str] = _EDIT,
    identity: list[str] = _IDENTITY,
    generator: str | None = typer.Option(None, "--generator", help="Override the generator recorded per item."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    endpoint_url: str | None = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint for s3:// URLs."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render every done identity of STORE into a multi-view dataset at OUT (resumable)."""
    import dataclasses
    import json

    from sym3dinv.dataset import CameraSpec, DatasetConfig, EditSpec, build_dataset
    from sym3dinv.errors import ConfigError

    opts = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}
    try:
        spec = CameraSpec(kind=cameras, yaw_range=parse_range(yaw_range, "--yaw-range"),
                          pitch_range=parse_range(pitch_range, "--pitch-range"), n_yaw=n_yaw, n_pitch=n_pitch,
                          n_views=views, seed=seed, labels_path=labels)
        config = DatasetConfig(cameras=spec, resolution=resolution, depth_resolution=depth_resolution,
                               mask_threshold=mask_threshold, mesh=mesh, mesh_resolution=mesh_resolution,
                               mesh_threshold=mesh_threshold,
                               mesh_formats=tuple(f.strip() for f in mesh_format.split(",") if f.strip()),
                               edits=tuple(EditSpec(n, p, s) for n, p, s in parse_edits(edit)),
                               generator=generator, device=device)
        summary = build_dataset(store, out, config, identities=list(identity) or None, storage_options=opts)
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
