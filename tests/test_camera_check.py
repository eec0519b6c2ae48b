"""The label validator catches each class of bad label, and `sym3dinv cameras check` names them (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sym3dinv import camera_formats as F
from sym3dinv.camera_check import check_label, known_label
from sym3dinv.cameras import camera_label
from sym3dinv.cli import app
from sym3dinv.errors import BadCameraError


def _good(yaw: float = 0.3, pitch: float = -0.1) -> np.ndarray:
    return camera_label(yaw, pitch)[0].double().numpy()


def _with(label: np.ndarray, index: slice | int, value: object) -> np.ndarray:
    a = label.copy()
    a[index] = value
    return a


def _bad_labels() -> dict[str, list[float]]:
    g = _good()
    m = g[:16].reshape(4, 4)
    squashed = m.copy()
    squashed[:3, 0] *= 1.3
    mirrored = m.copy()
    mirrored[:3, 1] *= -1  # y up with z forward: a reflection
    far = m.copy()
    far[:3, 3] *= 1.5
    aside = m.copy()
    aside[:3, 3] += np.array([1.2, 0.0, 0.0])  # moved sideways, still looking straight ahead
    aside[:3, 3] *= 2.7 / np.linalg.norm(aside[:3, 3])
    pixels = g.copy()
    pixels[16:] = [4.2647 * 512, 0, 256, 0, 4.2647 * 512, 256, 0, 0, 1]
    return {
        "short.png": g[:16].tolist(),
        "nan.png": _with(g, 3, np.nan).tolist(),
        "squashed.png": [*squashed.reshape(-1), *g[16:]],
        "mirrored.png": [*mirrored.reshape(-1), *g[16:]],
        "far.png": [*far.reshape(-1), *g[16:]],
        "aside.png": [*aside.reshape(-1), *g[16:]],
        "opengl.png": F.from_label(g, "opengl").tolist(),
        "world2cam.png": [*np.linalg.inv(m).reshape(-1), *g[16:]],
        "pixels.png": pixels.tolist(),
    }


EXPECTED = {"short.png": "wrong_length", "nan.png": "not_finite", "squashed.png": "non_orthonormal",
            "mirrored.png": "non_orthonormal", "far.png": "radius", "aside.png": "not_looking_at_head",
            "opengl.png": "flipped_convention", "world2cam.png": "flipped_convention",
            "pixels.png": "intrinsics_not_normalised"}


def test_good_labels_pass() -> None:
    for yaw in (-1.0, -0.4, 0.0, 0.5, 1.1):
        for pitch in (-0.3, 0.0, 0.25):
            assert check_label(_good(yaw, pitch)) == []
    assert check_label(camera_label(0.2, 0.1)[0].numpy()) == []  # float32 rounding is fine


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_label_class_is_named(name: str) -> None:
    problems = check_label(_bad_labels()[name])
    assert [p.code for p in problems] == [EXPECTED[name]], problems
    assert problems[0].message


def test_flip_messages_name_the_format_that_converts() -> None:
    bad = _bad_labels()
    assert "--camera-format opengl" in check_label(bad["opengl.png"])[0].message
    assert "--camera-format opencv" in check_label(bad["world2cam.png"])[0].message


def test_known_label_converts_or_refuses() -> None:
    g = _good()
    assert np.allclose(known_label(F.from_label(g, "colmap").tolist(), "colmap"), g, atol=1e-6)
    with pytest.raises(BadCameraError, match="not_finite"):
        known_label(_bad_labels()["nan.png"])
    with pytest.raises(BadCameraError, match="wrong_length"):
        known_label([1.0] * 7, "opencv")
    assert known_label(_bad_labels()["far.png"]).shape == (25,)  # unusual but usable: logged, not refused


def test_cli_names_every_bad_label_and_exits_2(tmp_path: Path) -> None:
    bad = _bad_labels()
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": [["good.png", _good().tolist()], *[[k, v] for k, v in bad.items()]]}))
    res = CliRunner().invoke(app, ["cameras", "check", str(path)])
    assert res.exit_code == 2, res.output
    for name, code in EXPECTED.items():
        assert f"{name}: {code}:" in res.output
    assert "good.png" not in res.output
    assert "1 of 10 labels good, 9 bad" in res.output


def test_cli_accepts_good_files_in_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "colmap.json"
    labels = [[f"{i}.png", F.from_label(_good(y, 0.1), "colmap").tolist()] for i, y in enumerate((-0.5, 0.0, 0.5))]
    path.write_text(json.dumps({"labels": labels}))
    res = CliRunner().invoke(app, ["cameras", "check", str(path), "--camera-format", "colmap"])
    assert res.exit_code == 0, res.output
    assert "3 of 3 labels good" in res.output
    # read as EG3D labels, the same numbers are the wrong length
    res = CliRunner().invoke(app, ["cameras", "check", str(path)])
    assert res.exit_code == 2 and "wrong_length" in res.output
    out = tmp_path / "eg3d.json"
    res = CliRunner().invoke(app, ["cameras", "convert", str(path), str(out), "--camera-format", "colmap"])
    assert res.exit_code == 0, res.output
    conv = json.loads(out.read_text())["labels"]
    assert np.allclose(conv[2][1], _good(0.5, 0.1), atol=1e-6)
    assert CliRunner().invoke(app, ["cameras", "check", str(out)]).exit_code == 0


def test_aligner_sidecars_accept_other_formats(tmp_path: Path) -> None:
    """The aligner's known-camera bypass reads a sidecar in the configured convention."""
    from sym3dinv.align.known_cameras import read_sidecar

    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.json").write_text(json.dumps({"label": F.from_label(_good(), "opengl").tolist()}))
    assert np.allclose(read_sidecar(tmp_path / "a.png", "nerfstudio"), _good(), atol=1e-6)
    with pytest.raises(BadCameraError, match="wrong_length"):
        read_sidecar(tmp_path / "a.png", "deep3dface")
