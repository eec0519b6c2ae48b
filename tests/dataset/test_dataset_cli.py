"""``sym3dinv dataset build``: options reach the builder, outputs are where it says, errors are readable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sym3dinv.cli import app
from sym3dinv.cli.dataset import parse_edits, parse_range
from tests.dataset.helpers import synth_ws


def test_parsers() -> None:
    assert parse_range("-0.5,0.7", "x") == (-0.5, 0.7) and parse_range("0.4", "x") == (-0.4, 0.4)
    assert parse_edits(["smile=/d/s.npy:-1,1", "age=a.npy"]) == [("smile", "/d/s.npy", (-1.0, 1.0)),
                                                                 ("age", "a.npy", (-1.0, 1.0))]
    assert parse_edits(["a=x.npy:2,b=y.npy:-1,0.5"]) == [("a", "x.npy", (2.0,)), ("b", "y.npy", (-1.0, 0.5))]
    import typer

    with pytest.raises(typer.BadParameter):
        parse_edits(["nopath"])
    with pytest.raises(typer.BadParameter):
        parse_range("a,b", "--yaw-range")


def test_cli_build_with_orbit_mesh_and_edit(synth_store: str, tmp_path: Path) -> None:
    num_ws = synth_ws((0,))[0].shape[0]  # the embedded default's W+ depth (v1 10, v2 12)
    d = np.zeros((num_ws, 512), np.float32)
    d[:4] = np.random.default_rng(0).normal(size=512).astype(np.float32) * 0.5  # coarse layers only
    np.save(tmp_path / "shape.npy", d)
    out = tmp_path / "ds"
    args = ["dataset", "build", synth_store, str(out), "--cameras", "orbit", "--views", "2",
            "--yaw-range", "-0.5,0.5", "--pitch-range", "-0.2,0.2", "--resolution", "64", "--mesh",
            "--mesh-resolution", "32", "--mesh-format", "ply,glb", "--edit", f"shape={tmp_path / 'shape.npy'}:1.5"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "2 identities (2 built" in r.output and f"{out}/rgb/dataset.json" in r.output
    assert "transforms.json" in r.output and "part-*.parquet" in r.output
    labels = json.loads((out / "rgb" / "dataset.json").read_text())["labels"]
    assert len(labels) == 2 * 2 * 2  # identities x (orig, shape+1.5) x views
    meshes = sorted(p.name for p in out.glob("meshes/*/*"))
    assert meshes == sorted(["orig.ply", "orig.glb", "shape+1.5.ply", "shape+1.5.glb"] * 2)
    man = json.loads(next((out / "manifests").glob("*.json")).read_text())
    m = man["meshes"]["orig"]
    assert m["faces"] > 1000 and m["mesh/boundary_edge_fraction"] < 0.01 and m["mesh/frontal_hit_fraction"] > 0.9
    tj = json.loads((out / "scenes" / man["identity"] / "orig" / "transforms.json").read_text())
    assert tj["ply_file_path"].endswith("orig.ply") and len(tj["frames"]) == 2
    again = CliRunner().invoke(app, [*args, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["built"] == 0


def test_cli_reports_config_errors(synth_store: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["dataset", "build", synth_store, str(tmp_path / "x"), "--cameras", "spiral"])
    assert r.exit_code == 2 and "spiral" in r.output and "orbit" in r.output  # the choices come from CameraKind
    r = CliRunner().invoke(app, ["dataset", "build", synth_store, str(tmp_path / "x"), "--mask-threshold", "1.5"])
    assert r.exit_code == 2 and "mask_threshold must be in" in r.output  # DatasetConfig's own validation
    r = CliRunner().invoke(app, ["dataset", "build", synth_store, str(tmp_path / "x"), "--identity", "f" * 32])
    assert r.exit_code == 2 and "not done" in r.output
