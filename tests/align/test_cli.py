"""`sym3dinv align run INPUT OUT`: crops, masks, EG3D dataset.json and a Parquet table with errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import skimage.data
from PIL import Image
from typer.testing import CliRunner

from sym3dinv.cameras import camera_label
from sym3dinv.cli import app


def test_align_run_writes_everything(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(src / "astro.png")
    Image.fromarray(skimage.data.coffee()).save(src / "coffee.jpg")  # no face
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.fromarray(skimage.data.astronaut()[:, ::-1].copy()).save(src / "known.png")
    known = camera_label(-0.2, 0.05)[0].tolist()
    (src / "known.json").write_text(json.dumps({"label": known}))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["align", "run", str(src), str(out)])
    assert res.exit_code == 0, res.output
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert sorted(n for n, _ in labels) == ["astro.png", "known.png"]
    assert all(len(v) == 25 for _, v in labels)
    assert np.allclose(dict(labels)["known.png"], known, atol=1e-6)
    crop = np.asarray(Image.open(out / "crops" / "astro.png"))
    mask = np.asarray(Image.open(out / "masks" / "astro.png"))
    assert crop.shape == (512, 512, 3) and mask.shape == (512, 512) and set(np.unique(mask)) == {0, 255}
    t = pd.read_parquet(out / "results.parquet").set_index("source")
    assert len(t) == 4
    codes = {Path(k).name: v if isinstance(v, str) else None for k, v in t["error_class"].items()}
    assert codes == {"astro.png": None, "known.png": None, "coffee.jpg": "no_face", "broken.png": "decode_error"}
    assert t.loc[str(src / "known.png"), "camera_source"] == "known"
    assert abs(t.loc[str(src / "astro.png"), "yaw_deg"]) < 10
    assert "2 faces from 4 inputs" in res.output


def test_dataset_json_labels_are_used(tmp_path: Path) -> None:
    from sym3dinv.align.known_cameras import read_dataset_json

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(src / "a.png")
    label = camera_label(0.25, 0.0)[0].tolist()
    (src / "dataset.json").write_text(json.dumps({"labels": [["sub/a.png", label], ["b.png", None]]}))
    assert set(read_dataset_json(src / "dataset.json")) == {"sub/a.png", "a.png"}
    res = CliRunner().invoke(app, ["align", "run", str(src), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    labels = json.loads((tmp_path / "out" / "dataset.json").read_text())["labels"]
    assert labels[0][0] == "a.png" and np.allclose(labels[0][1], label, atol=1e-6)
