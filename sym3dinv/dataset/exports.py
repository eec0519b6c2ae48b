"""The formats a built dataset is written in, and their camera conventions (docs/datasets.md).

EG3D / StyleGAN ``dataset.json``
    ``{"labels": [["<relpath>.png", [25 floats]], ...]}``: the row-major 4x4 cam2world in the OpenCV
    camera convention (x right, y down, z forward: the camera looks along +z; world y up) followed by the
    row-major 3x3 intrinsics normalised by the image size (fx/W, 0, cx/W; 0, fy/H, cy/H; 0, 0, 1).
    Exactly ``sym3dinv.cameras``' labels, which are bit-exact with EG3D's sampler. Labels in the other
    conventions (OpenCV, COLMAP, Deep3DFaceRecon) convert with ``sym3dinv.camera_formats.from_label``.

nerfstudio / instant-ngp ``transforms.json``
    ``transform_matrix`` = camera-to-world in the OpenGL/Blender camera convention (x right, y up,
    z backward: the camera looks along -z), ``c2w_gl = c2w_cv @ diag(1, -1, -1, 1)``; intrinsics in
    pixels ``fl_x = fx_norm * w``, ``fl_y = fy_norm * h``, ``cx = cx_norm * w``, ``cy = cy_norm * h``;
    ``camera_model: "OPENCV"`` with zero distortion. In both formats the centre of pixel (row i,
    column j) has continuous coordinates (j + 0.5, i + 0.5): EG3D's ray sampler and nerfstudio's both
    shoot rays through pixel centres with that offset, so the same numbers mean the same pixel.

Parquet index
    One row per image (:data:`INDEX_SCHEMA`); one part file per identity under ``index/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from sym3dinv.camera_formats import CV_TO_GL

INDEX_VERSION = 1
INDEX_SCHEMA = pa.schema(
    [
        pa.field("identity", pa.string(), nullable=False),
        pa.field("source_uri", pa.string()),
        pa.field("edit", pa.string(), nullable=False),
        pa.field("strength", pa.float32(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("view", pa.string(), nullable=False),
        pa.field("view_index", pa.int32(), nullable=False),
        pa.field("camera_set", pa.string(), nullable=False),
        pa.field("yaw", pa.float32()),
        pa.field("pitch", pa.float32()),
        pa.field("camera_label", pa.list_(pa.float32(), 25), nullable=False),
        pa.field("transform_matrix", pa.list_(pa.float32(), 16), nullable=False),
        pa.field("fl_x", pa.float32()),
        pa.field("fl_y", pa.float32()),
        pa.field("cx", pa.float32()),
        pa.field("cy", pa.float32()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("rgb_path", pa.string(), nullable=False),
        pa.field("depth_path", pa.string()),
        pa.field("mask_path", pa.string()),
        pa.field("alpha_path", pa.string()),
        pa.field("transforms_path", pa.string()),
        pa.field("mesh_path", pa.string()),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
        pa.field("generator", pa.string()),
        pa.field("config_hash", pa.string()),
    ],
    metadata={"sym3dinv.dataset_index_version": str(INDEX_VERSION)},
)


def split_label(label: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """25-float EG3D label -> (cam2world OpenCV [4, 4], normalised intrinsics [3, 3]), float64."""
    a = np.asarray(label, dtype=np.float64).reshape(-1)
    if a.shape != (25,):
        raise ValueError(f"an EG3D label has 25 values, got {a.shape}")
    return a[:16].reshape(4, 4), a[16:].reshape(3, 3)


def opencv_to_opengl(c2w_cv: np.ndarray) -> np.ndarray:
    """cam2world OpenCV (x right, y down, z forward) -> OpenGL/Blender (x right, y up, z backward)."""
    return np.asarray(c2w_cv, dtype=np.float64) @ CV_TO_GL


def pixel_intrinsics(K_norm: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Normalised intrinsics -> nerfstudio's pixel ``fl_x, fl_y, cx, cy`` (pixel centres at +0.5)."""
    if abs(float(K_norm[0, 1])) > 1e-9:
        raise ValueError("skewed intrinsics cannot be written as nerfstudio's OPENCV camera")
    return {"fl_x": float(K_norm[0, 0]) * width, "fl_y": float(K_norm[1, 1]) * height,
            "cx": float(K_norm[0, 2]) * width, "cy": float(K_norm[1, 2]) * height}


def nerfstudio_frame(label: Sequence[float] | np.ndarray, width: int, height: int, file_path: str, *,
                     depth_file_path: str | None = None, mask_path: str | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One ``frames[]`` entry: paths, camera-to-world (OpenGL) and this frame's pixel intrinsics."""
    c2w, K = split_label(label)
    frame: dict[str, Any] = {"file_path": file_path,
                             "transform_matrix": opencv_to_opengl(c2w).tolist(),
                             **pixel_intrinsics(K, width, height), "w": int(width), "h": int(height)}
    if depth_file_path:
        frame["depth_file_path"] = depth_file_path
    if mask_path:
        frame["mask_path"] = mask_path
    frame.update(dict(extra or {}))
    return frame


def transforms_json(frames: Sequence[dict[str, Any]], *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """nerfstudio ``transforms.json``: shared intrinsics at the top when all frames agree, else per frame."""
    keys = ("fl_x", "fl_y", "cx", "cy", "w", "h")
    out: dict[str, Any] = {"camera_model": "OPENCV", "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    shared = bool(frames) and all(all(f[k] == frames[0][k] for k in keys) for f in frames)
    if shared:
        out.update({k: frames[0][k] for k in keys})
        frames = [{k: v for k, v in f.items() if k not in keys} for f in frames]
    out.update(dict(extra or {}))
    out["frames"] = list(frames)
    return out


def eg3d_dataset_json(entries: Sequence[tuple[str, Sequence[float]]]) -> dict[str, Any]:
    """EG3D/StyleGAN ``dataset.json``: ``{"labels": [[relpath, [25 floats]], ...]}`` sorted by path."""
    labels = []
    for rel, lab in sorted(entries, key=lambda e: e[0]):
        vals = [float(v) for v in np.asarray(lab, dtype=np.float32).reshape(-1)]
        if len(vals) != 25:
            raise ValueError(f"label of {rel} has {len(vals)} values, expected 25")
        labels.append([rel, vals])
    return {"labels": labels}


def index_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts keyed by :data:`INDEX_SCHEMA` names; missing optional ones are null) as Arrow."""
    cols: dict[str, list[Any]] = {f.name: [] for f in INDEX_SCHEMA}
    for r in rows:
        for f in INDEX_SCHEMA:
            v = r.get(f.name)
            if f.name == "metrics" and v is not None:
                v = [(str(k), float(x)) for k, x in sorted(dict(v).items())]
            elif f.name in ("camera_label", "transform_matrix"):
                v = [float(x) for x in np.asarray(v, dtype=np.float32).reshape(-1)]
            cols[f.name].append(v)
    return pa.Table.from_pydict(cols, schema=INDEX_SCHEMA)
