"""Known cameras bypass estimation: EG3D ``dataset.json`` labels or a per-image sidecar JSON.

``dataset.json``: ``{"labels": [[file name, [25 floats]], ...]}`` (EG3D's format; null labels are
treated as unknown). Sidecar: ``<image>.json`` next to the image holding ``{"label": [25 floats]}``
(or a bare list of 25 floats). Labels in another convention (``AlignConfig.camera_format``: OpenCV, OpenGL /
nerfstudio, COLMAP, Deep3DFaceRecon) are converted by :mod:`sym3dinv.camera_formats`; an unusable one
is a ``bad_camera`` error naming the problem (:func:`sym3dinv.camera_check.known_label`).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath

import fsspec
import numpy as np

from sym3dinv.camera_check import known_label


def read_dataset_json(url: str | os.PathLike[str]) -> dict[str, object]:
    """File name (as written, and its base name) -> its label's values as written (any convention):
    each is checked and converted when its image is aligned (:func:`known_label`), so one bad label is
    that image's error, not the folder's."""
    with fsspec.open(os.fspath(url), "r") as f:
        data = json.load(f)
    out: dict[str, object] = {}
    for name, label in data.get("labels") or []:
        if label is None:
            continue
        out[name] = label
        out.setdefault(PurePosixPath(name).name, label)
    return out


def read_sidecar(image_url: str | os.PathLike[str], fmt: str = "eg3d") -> np.ndarray | None:
    """Label from ``<image>.json`` or ``<image stem>.json`` if present, else None."""
    s = os.fspath(image_url)
    stem = s.rsplit(".", 1)[0] if "." in PurePosixPath(s).name else s
    for cand in (s + ".json", stem + ".json"):
        fs, path = fsspec.core.url_to_fs(cand)
        if cand != s and fs.exists(path):
            with fs.open(path, "r") as f:
                data = json.load(f)
            return known_label(data.get("label") if isinstance(data, dict) else data, fmt, cand)
    return None
