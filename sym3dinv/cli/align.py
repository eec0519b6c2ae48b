"""`sym3dinv align ...`: photos -> EG3D crops, camera labels, masks and a results table."""

from __future__ import annotations

import dataclasses

import typer

from sym3dinv.cli.options import DEFAULT, config_options
from sym3dinv.config.align import AlignConfig

app = typer.Typer(no_args_is_help=True, help="Align real photos like EG3D and estimate their camera labels.")


@app.command("run")
@config_options(AlignConfig, fields=("camera_format",))
def run(
    input: str = typer.Argument(..., help="An image, or a folder/prefix of images (local path or fsspec URL)."),
    out: str = typer.Argument(..., help="Output folder: crops/, masks/, dataset.json, results.parquet."),
    multi_face: str = typer.Option("largest", help="'largest' (one crop per image) or 'all' (every face)."),
    dataset_json: str = typer.Option(None, help="EG3D dataset.json with known labels (default: INPUT/dataset.json)."),
    already_aligned: bool = typer.Option(False, help="Inputs are EG3D crops already: skip the crop."),
    min_confidence: float = typer.Option(0.5, help="Refuse faces below this detection score."),
    max_yaw: float = typer.Option(80.0, help="Refuse |yaw| above this, degrees."),
    model: str = typer.Option(None, help="Path of face_landmarker.task (default: the model directory)."),
    config: AlignConfig = DEFAULT,
) -> None:
    """Align every image; failures become rows of results.parquet with an error class."""
    from sym3dinv.align.batch import align_folder
    from sym3dinv.errors import ConfigError

    try:
        cfg = dataclasses.replace(config, multi_face=multi_face, already_aligned=already_aligned,
                                  min_confidence=min_confidence, max_abs_yaw_deg=max_yaw, landmarker_model=model)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    s = align_folder(input, out, cfg, dataset_json)
    errs = ", ".join(f"{k}: {v}" for k, v in sorted(s.errors.items())) or "none"
    typer.echo(f"{s.aligned} faces from {s.inputs} inputs -> {s.dataset_json}; errors: {errs}; table {s.table}")


@app.command("evaluate")
def evaluate(
    synthheads: int = typer.Option(6, help="SynthHeads identities rendered at 5 yaws x 2 pitches (0 = skip)."),
    threads: int = typer.Option(1, help="Torch threads for rendering."),
) -> None:
    """Measure pose accuracy: mirror consistency on offline real faces, known cameras on SynthHeads."""

    from sym3dinv.align import FaceAligner
    from sym3dinv.align.evaluate import (
        lfw_subset_faces,
        mirror_consistency,
        offline_portraits,
        synthheads_accuracy,
    )
    from sym3dinv.config.align import AlignConfig
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(threads)
    with FaceAligner(AlignConfig(min_confidence=0.0, min_face_size=16)) as a:
        reports = {"portraits (astronaut, grace_hopper)": mirror_consistency(a, offline_portraits().values()),
                   "lfw_subset (100 faces, 25 px upscaled)": mirror_consistency(a, lfw_subset_faces())}
        if synthheads:
            reports["synthheads known cameras (pitch after bias)"] = synthheads_accuracy(a, range(synthheads))
    for name, r in reports.items():
        typer.echo(f"{name}: detected {r.detected}/{r.images}; yaw mean {r.yaw_mean_deg:.2f} max {r.yaw_max_deg:.2f} deg; "
                   f"pitch mean {r.pitch_mean_deg:.2f} max {r.pitch_max_deg:.2f} deg; pitch bias {r.pitch_bias_deg:.2f} deg")
