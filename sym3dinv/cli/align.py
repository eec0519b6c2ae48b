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


@app.command("calibrate")
def calibrate(
    train: int = typer.Option(120, help="Canonical-face-mesh renders to fit the calibration on."),
    test: int = typer.Option(120, help="Held-out renders (other seeds: angles, look, lighting) to evaluate on."),
    synthheads: int = typer.Option(0, help="Also re-measure SynthHeads known cameras with the fit (identities)."),
    threads: int = typer.Option(1, help="Torch threads for rendering."),
) -> None:
    """Fit the yaw calibration (and a pitch gain) on renders of a real-face mesh at known angles; print the
    held-out error table per |yaw| bucket before and after, and the AlignConfig values."""
    import json
    import math

    import numpy as np

    from sym3dinv.align import FaceAligner
    from sym3dinv.align.calibration import bucket_table, calibrate_yaw, fit_pitch_gain, fit_yaw
    from sym3dinv.align.evaluate import face_mesh_poses, synthheads_accuracy
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(threads)
    raw_cfg = dataclasses.replace(AlignConfig(min_confidence=0.0, min_face_size=16), pitch_offset_deg=0.0)
    with FaceAligner(raw_cfg) as a:
        fit_rows = face_mesh_poses(a, range(train))
        test_rows = face_mesh_poses(a, range(100_000, 100_000 + test))
    ok = np.isfinite(fit_rows).all(1)
    values = fit_yaw(fit_rows[ok, 2], fit_rows[ok, 0])
    gain = fit_pitch_gain(fit_rows[ok, 3], fit_rows[ok, 1])
    knots = (0.0, 15.0, 30.0, 45.0, 60.0)
    t = test_rows[np.isfinite(test_rows).all(1)]
    cal_yaw = np.array([math.degrees(calibrate_yaw(math.radians(y), knots, values)) for y in t[:, 2]])
    bias = lambda est, true: (est - true) - (est - true).mean()  # noqa: E731 - pitch: the frame's offset removed
    out = {"detected_train": int(ok.sum()), "train": train, "detected_test": len(t), "test": test,
           "yaw_knots_deg": knots, "yaw_values_deg": values, "pitch_gain": gain,
           "before": [vars(b) for b in bucket_table(t[:, 0], t[:, 2] - t[:, 0], bias(t[:, 3], t[:, 1]))],
           "after": [vars(b) for b in bucket_table(t[:, 0], cal_yaw - t[:, 0],
                                                   bias(gain * t[:, 3], t[:, 1]))]}
    if synthheads:
        cal = dataclasses.replace(AlignConfig(min_confidence=0.0, min_face_size=16), yaw_knots_deg=knots,
                                  yaw_values_deg=values)
        for name, cfg in (("synthheads_before", AlignConfig(min_confidence=0.0, min_face_size=16)),
                          ("synthheads_after", cal)):
            with FaceAligner(cfg) as a:
                out[name] = vars(synthheads_accuracy(a, range(synthheads)))
    typer.echo(json.dumps(out, indent=1))
