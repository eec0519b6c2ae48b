"""The exported formats round-trip through their documented conventions.

A world point projected with ``sym3dinv.cameras.world_to_pixel`` and with a tiny, independent pinhole
model fed only from the exported JSON (EG3D dataset.json: OpenCV cam2world + normalised K;
nerfstudio transforms.json: OpenGL cam2world + pixel intrinsics) lands on the same pixel (< 1e-3 px).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sym3dinv.cameras import camera_label, pixel_rays, world_to_pixel
from sym3dinv.dataset.exports import (
    eg3d_dataset_json,
    index_table,
    nerfstudio_frame,
    opencv_to_opengl,
    split_label,
    transforms_json,
)


# --- independent pinhole models, written from the formats' documentation only ------------------------------
def project_eg3d(label: list[float], p: np.ndarray, w: int, h: int) -> np.ndarray:
    """EG3D label: c2w (OpenCV: x right, y down, +z forward), K normalised by image size."""
    c2w = np.asarray(label[:16], np.float64).reshape(4, 4)
    K = np.asarray(label[16:25], np.float64).reshape(3, 3)
    q = np.linalg.solve(c2w, np.r_[p, 1.0])[:3]
    x, y = q[0] / q[2], q[1] / q[2]
    return np.array([(K[0, 0] * x + K[0, 2]) * w, (K[1, 1] * y + K[1, 2]) * h])


def project_nerfstudio(frame: dict, meta: dict, p: np.ndarray) -> np.ndarray:
    """transforms.json: c2w (OpenGL: x right, y up, camera looks along -z), pixel intrinsics."""
    get = lambda k: frame.get(k, meta.get(k))  # noqa: E731 - per-frame value overrides the shared one
    c2w = np.asarray(frame["transform_matrix"], np.float64)
    q = np.linalg.solve(c2w, np.r_[p, 1.0])[:3]
    depth = -q[2]  # in front of the camera = negative z
    return np.array([get("fl_x") * q[0] / depth + get("cx"), -get("fl_y") * q[1] / depth + get("cy")])


def ours(label: list[float], p: np.ndarray, w: int) -> np.ndarray:
    uv, _ = world_to_pixel(torch.tensor(p, dtype=torch.float64)[None, None], torch.tensor([label], dtype=torch.float64))
    return uv[0, 0].numpy() * w


POINTS = np.random.default_rng(0).uniform(-0.4, 0.4, size=(64, 3)) + np.array([0.0, 0.0, 0.1])


@pytest.mark.parametrize("yaw,pitch,roll,focal", [(0.0, 0.0, 0.0, 4.2647), (0.7, -0.3, 0.0, 4.2647),
                                                  (-1.1, 0.4, 0.2, 3.0), (2.5, 0.1, -0.4, 6.0)])
def test_pure_exports_project_to_the_same_pixel(yaw: float, pitch: float, roll: float, focal: float) -> None:
    label = camera_label(yaw, pitch, focal=focal, roll=roll).double()[0].tolist()
    w = h = 96
    frame = nerfstudio_frame(label, w, h, "a.png")
    meta = transforms_json([frame])
    lab2 = eg3d_dataset_json([("a.png", label)])["labels"][0][1]
    for p in POINTS:
        want = ours(label, p, w)
        assert np.abs(project_eg3d(lab2, p, w, h) - want).max() < 1e-3
        assert np.abs(project_nerfstudio(meta["frames"][0], meta, p) - want).max() < 1e-3
    c2w, _ = split_label(label)
    gl = opencv_to_opengl(c2w)
    np.testing.assert_allclose(gl[:3, 0], c2w[:3, 0])  # x kept, y and z flipped, position kept
    np.testing.assert_allclose(gl[:3, 1:3], -c2w[:3, 1:3])
    np.testing.assert_allclose(gl[:, 3], c2w[:, 3])


def test_pixel_centres_follow_eg3d_rays() -> None:
    """The ray EG3D shoots through pixel (i, j) projects to (j + 0.5, i + 0.5) in the exported pixels."""
    res = 16
    label = camera_label(0.3, -0.1).double()
    o, d = pixel_rays(label, res)
    pts = (o + 2.6 * d)[0].numpy()
    meta = transforms_json([nerfstudio_frame(label[0].tolist(), res, res, "a.png")])
    got = np.array([project_nerfstudio(meta["frames"][0], meta, p) for p in pts])
    jj, ii = np.meshgrid(np.arange(res), np.arange(res))
    np.testing.assert_allclose(got, np.c_[jj.reshape(-1) + 0.5, ii.reshape(-1) + 0.5], atol=1e-4)


def test_shared_intrinsics_go_to_the_top_and_differing_ones_stay_per_frame() -> None:
    a = nerfstudio_frame(camera_label(0.0)[0].tolist(), 64, 64, "a.png")
    b = nerfstudio_frame(camera_label(0.2)[0].tolist(), 64, 64, "b.png")
    c = nerfstudio_frame(camera_label(0.2, focal=3.0)[0].tolist(), 64, 64, "c.png")
    shared = transforms_json([a, b])
    assert shared["camera_model"] == "OPENCV" and shared["w"] == 64 and "fl_x" not in shared["frames"][0]
    mixed = transforms_json([a, c])
    assert "fl_x" not in mixed and mixed["frames"][1]["fl_x"] == pytest.approx(3.0 * 64, rel=1e-6)


def test_index_table_matches_schema_and_loads_everywhere(tmp_path: Path) -> None:
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    lab = camera_label(0.1)[0].numpy()
    rows = [{"identity": "a" * 32, "edit": "", "strength": 0.0, "variant": "orig", "view": "v000", "view_index": 0,
             "camera_set": "grid", "camera_label": lab, "transform_matrix": np.eye(4), "rgb_path": "rgb/x.png",
             "metrics": {"mask_fraction": 0.5}}]
    pq.write_table(index_table(rows), tmp_path / "part.parquet")
    df = pd.read_parquet(tmp_path / "part.parquet")
    assert df.loc[0, "identity"] == "a" * 32 and np.allclose(df.loc[0, "camera_label"], lab)
    got = duckdb.sql(f"SELECT metrics['mask_fraction'] AS m FROM read_parquet('{tmp_path}/*.parquet')").fetchall()
    assert got[0][0] in (0.5, [0.5])


# --- a built dataset ---------------------------------------------------------------------------------------
def test_built_dataset_json_round_trips_and_loads_like_eg3d(tiny_dataset) -> None:
    out, cfg, summary = tiny_dataset
    root = out / "rgb"
    data = json.loads((root / "dataset.json").read_text())
    labels = dict((rel, lab) for rel, lab in data["labels"])
    # EG3D's ImageFolderDataset: every image file under the folder, each with a label of 25 floats
    files = sorted(os.path.relpath(os.path.join(r, f), root).replace("\\", "/")
                   for r, _, fs in os.walk(root) for f in fs if f.endswith(".png"))
    assert files == sorted(labels) and len(files) == summary.images == 2 * 3 * 6
    arr = np.asarray([labels[f] for f in files], np.float32)
    assert arr.shape == (len(files), 25)
    sizes = {Image.open(root / f).size for f in files[:6]}
    modes = {Image.open(root / f).mode for f in files[:6]}
    assert sizes == {(64, 64)} and modes == {"RGB"}
    for f in files[:12]:
        for p in POINTS[:8]:
            assert np.abs(project_eg3d(labels[f], p, 64, 64) - ours(labels[f], p, 64)).max() < 1e-3


def test_built_transforms_json_round_trip_and_paths_resolve(tiny_dataset) -> None:
    out, cfg, summary = tiny_dataset
    scenes = sorted(out.glob("scenes/*/*/transforms.json"))
    assert len(scenes) == 2 * 3  # identities x (orig + 2 edit strengths)
    labels = dict((rel, lab) for rel, lab in json.loads((out / "rgb" / "dataset.json").read_text())["labels"])
    for tj in scenes:
        meta = json.loads(tj.read_text())
        assert meta["camera_model"] == "OPENCV" and (meta["w"], meta["h"]) == (64, 64)
        assert len(meta["frames"]) == 6
        for fr in meta["frames"]:
            rgb = (tj.parent / fr["file_path"]).resolve()  # nerfstudio: data_dir / file_path
            depth = tj.parent / fr["depth_file_path"]
            mask = tj.parent / fr["mask_path"]
            assert rgb.is_file() and depth.is_file() and mask.is_file()
            assert Image.open(mask).size == Image.open(rgb).size  # nerfstudio asserts this
            d = np.asarray(Image.open(depth)).astype(np.float64) * meta["depth_unit_scale_factor"]
            m = np.asarray(Image.open(mask)) > 0
            assert np.asarray(Image.open(depth)).dtype == np.uint16
            lab = labels[os.path.relpath(rgb, (out / "rgb").resolve())]
            for p in POINTS[:8]:
                assert np.abs(project_nerfstudio(fr, meta, p) - ours(lab, p, 64)).max() < 1e-3
            nz = d[d > 0]  # background is 0; foreground z within the generator's ray range
            assert ((nz > 2.0) & (nz < 3.4)).all()
            assert m.dtype == bool
        if "ply_file_path" in meta:
            assert (tj.parent / meta["ply_file_path"]).is_file()


def test_parquet_index_has_one_row_per_image_and_matches_the_json(tiny_dataset) -> None:
    import duckdb
    import pandas as pd
    import pyarrow.dataset as pads

    out, cfg, summary = tiny_dataset
    df = pd.read_parquet(out / "index")
    assert len(df) == summary.images and df["rgb_path"].is_unique
    assert set(df["edit"]) == {"", "bright"} and set(df.loc[df.edit == "", "strength"]) == {0.0}
    assert set(df.loc[df.edit == "bright", "strength"]) == {-2.0, 2.0}
    labels = dict((rel, lab) for rel, lab in json.loads((out / "rgb" / "dataset.json").read_text())["labels"])
    for _, r in df.iterrows():
        assert (out / r.rgb_path).is_file() and (out / r.depth_path).is_file() and (out / r.mask_path).is_file()
        np.testing.assert_allclose(r.camera_label, labels[r.rgb_path[len("rgb/"):]], atol=1e-7)
        gl = np.asarray(r.transform_matrix, np.float64).reshape(4, 4)
        np.testing.assert_allclose(gl, opencv_to_opengl(np.asarray(r.camera_label[:16], np.float64).reshape(4, 4)), atol=1e-6)
        assert "inversion/psnr" in dict(r.metrics) and 0 <= dict(r.metrics)["mask_fraction"] <= 1
    n = duckdb.sql(f"SELECT edit, count(*) FROM read_parquet('{out}/index/*.parquet') GROUP BY edit ORDER BY edit").fetchall()
    assert n == [("", 12), ("bright", 24)]
    assert pads.dataset(str(out / "index"), format="parquet").count_rows() == summary.images
