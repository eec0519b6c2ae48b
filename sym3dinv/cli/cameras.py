"""`sym3dinv cameras ...`: check camera labels and convert them between conventions."""

from __future__ import annotations

import typer

from sym3dinv.cli.options import DEFAULT, config_options
from sym3dinv.config.align import CAMERA_FORMATS, CameraCheckConfig

app = typer.Typer(no_args_is_help=True, help="Check EG3D camera labels; convert them from other conventions.")
_FORMAT_HELP = f"Convention of the labels in the file: {', '.join(CAMERA_FORMATS)} (docs/alignment.md)."


@app.command("check")
@config_options(CameraCheckConfig)
def check(
    dataset_json: str = typer.Argument(..., help="EG3D-style dataset.json: {\"labels\": [[name, values], ...]}."),
    camera_format: str = typer.Option("eg3d", help=_FORMAT_HELP),
    config: CameraCheckConfig = DEFAULT,
) -> None:
    """Name every bad label and why; exit code 2 when any label is bad."""
    from sym3dinv.camera_check import check_dataset_json

    if camera_format not in CAMERA_FORMATS:
        raise typer.BadParameter(f"unknown camera format {camera_format!r}; known: {', '.join(CAMERA_FORMATS)}")
    try:
        reports = check_dataset_json(dataset_json, camera_format, config)
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot read {dataset_json}: {exc}", err=True)
        raise typer.Exit(2) from exc
    bad = [r for r in reports if r.problems]
    for r in bad:
        for p in r.problems:
            typer.echo(f"{r.name}: {p.code}: {p.message}")
    typer.echo(f"{len(reports) - len(bad)} of {len(reports)} labels good, {len(bad)} bad")
    if bad:
        raise typer.Exit(2)


@app.command("convert")
def convert(
    src: str = typer.Argument(..., help="dataset.json whose labels are in --camera-format."),
    dst: str = typer.Argument(..., help="Where to write the EG3D dataset.json (25-float labels)."),
    camera_format: str = typer.Option(..., help=_FORMAT_HELP),
) -> None:
    """Rewrite a dataset.json's labels as EG3D labels."""
    import json

    import fsspec

    from sym3dinv.camera_formats import to_label

    with fsspec.open(src, "r") as f:
        data = json.load(f)
    try:
        labels = [[name, [float(v) for v in to_label(values, camera_format)]] for name, values in data["labels"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise typer.BadParameter(f"{src}: {exc}") from exc
    with fsspec.open(dst, "w") as f:
        json.dump({"labels": labels}, f)
    typer.echo(f"{len(labels)} labels -> {dst}")
