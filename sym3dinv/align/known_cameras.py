"""Known cameras bypass estimation: EG3D ``dataset.json`` labels or a per-image sidecar JSON.

``dataset.json``: ``{"labels": [[file name, [25 floats]], ...]}`` (EG3D's format; null labels are
treated as unknown). Sidecar: ``<image>.json`` next to the image holding ``{"label": [25 floats]}``
(or a bare list of 25 floats).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath

import fsspec
import numpy as np

from sym3dinv.errors import DecodeError


def _as_label(v: object, where: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.shape != (25,) or not np.isfinite(a).all():
        raise DecodeError(f"camera label in {where} must be 25 finite floats, got shape {a.shape}")
    return a


def read_dataset_json(url: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """File name (as written, and its base name) -> label."""
    with fsspec.open(os.fspath(url), "r") as f:
        data = json.load(f)
    out: dict[str, np.ndarray] = {}
    for name, label in data.get("labels") or []:
        if label is None:
            continue
        a = _as_label(label, f"{url}:{name}")
        out[name] = a
        out.setdefault(PurePosixPath(name).name, a)
    return out


def read_sidecar(image_url: str | os.PathLike[str]) -> np.ndarray | None:
    """Label from ``<image>.json`` or ``<image stem>.json`` if present, else None."""
    s = os.fspath(image_url)
    stem = s.rsplit(".", 1)[0] if "." in PurePosixPath(s).name else s
    for cand in (s + ".json", stem + ".json"):
        fs, path = fsspec.core.url_to_fs(cand)
        if cand != s and fs.exists(path):
            with fs.open(path, "r") as f:
                data = json.load(f)
            return _as_label(data.get("label") if isinstance(data, dict) else data, cand)
    return None
