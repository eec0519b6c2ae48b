"""Align a folder/URL of photos: crops, masks, EG3D ``dataset.json`` and a Parquet table of results.

Every input gets at least one table row; failures carry ``error_class`` (the error's stable code) and
a readable ``error_message`` and never stop the batch.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import PurePosixPath

import fsspec
import numpy as np
from PIL import Image

from sym3dinv.align import AlignedFace, FaceAligner
from sym3dinv.align.known_cameras import read_dataset_json, read_sidecar
from sym3dinv.camera_check import known_label
from sym3dinv.config.align import AlignConfig
from sym3dinv.errors import Sym3dInvError, error_code

log = logging.getLogger(__name__)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True)
class BatchSummary:
    inputs: int
    aligned: int
    errors: dict[str, int]
    dataset_json: str
    table: str


def list_inputs(source: str) -> list[str]:
    """One image path/URL, or every image file directly inside a folder/prefix (sorted)."""
    fs, path = fsspec.core.url_to_fs(source)
    if fs.isdir(path):
        files = [p for p in fs.ls(path, detail=False) if p.lower().endswith(IMAGE_EXTS)]
        return sorted(fs.unstrip_protocol(p) if "://" in source else p for p in files)
    return [source]


def _png(fs: fsspec.AbstractFileSystem, path: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    with fs.open(path, "wb") as f:
        f.write(buf.getvalue())


def _row(src: str, name: str | None, face: AlignedFace | None, exc: BaseException | None) -> dict[str, object]:
    nan = float("nan")
    return {
        "source": src, "file_name": name, "face_index": face.face_index if face else None,
        "ok": face is not None,
        "error_class": error_code(exc) if exc else None,
        "error_message": str(exc) if exc else None,
        "yaw_deg": math.degrees(face.yaw) if face else nan, "pitch_deg": math.degrees(face.pitch) if face else nan,
        "roll_deg": math.degrees(face.roll) if face else nan, "confidence": face.confidence if face else nan,
        "camera_source": face.camera_source if face else None,
        "label": face.label.tolist() if face else None,
        "affine": face.affine.reshape(-1).tolist() if face else None,
        "bbox": list(face.bbox) if face else None,
        "left_eye_box": list(face.left_eye_box) if face else None,
        "right_eye_box": list(face.right_eye_box) if face else None,
        "mouth_box": list(face.mouth_box) if face else None,
    }


def align_folder(source: str, out: str, config: AlignConfig, dataset_json: str | None = None) -> BatchSummary:
    """Align every input under ``source`` into ``out`` (local path or fsspec URL)."""
    import pandas as pd

    inputs = list_inputs(source)
    known: dict[str, object] = {}
    if dataset_json is None:
        fs_in, p_in = fsspec.core.url_to_fs(source)
        cand = str(PurePosixPath(p_in) / "dataset.json")
        if fs_in.isdir(p_in) and fs_in.exists(cand):
            dataset_json = fs_in.unstrip_protocol(cand) if "://" in source else cand
    if dataset_json is not None:
        known = read_dataset_json(dataset_json)
    fs, root = fsspec.core.url_to_fs(out)
    for sub in ("crops", "masks"):
        fs.makedirs(f"{root}/{sub}", exist_ok=True)
    labels: list[list[object]] = []
    rows: list[dict[str, object]] = []
    with FaceAligner(config) as aligner:
        for src in inputs:
            stem = PurePosixPath(src).stem
            try:
                raw = known.get(PurePosixPath(src).name)
                label = (read_sidecar(src, config.camera_format) if raw is None
                         else known_label(raw, config.camera_format, f"{dataset_json}:{PurePosixPath(src).name}"))
                faces = (aligner.align_all(src, label) if config.multi_face == "all"
                         else [aligner.align(src, label)])
            except Sym3dInvError as exc:
                log.info("%s: %s (%s)", src, exc.code, exc)
                rows.append(_row(src, None, None, exc))
                continue
            except Exception as exc:  # unexpected: recorded as internal_error, batch goes on
                log.exception("%s: unexpected failure", src)
                rows.append(_row(src, None, None, exc))
                continue
            for face in faces:
                name = f"{stem}.png" if config.multi_face == "largest" else f"{stem}_{face.face_index:02d}.png"
                _png(fs, f"{root}/crops/{name}", face.image)
                _png(fs, f"{root}/masks/{name}", face.face_mask.astype(np.uint8) * 255)
                labels.append([name, [float(v) for v in face.label]])
                rows.append(_row(src, name, face, None))
    with fs.open(f"{root}/dataset.json", "w") as f:
        json.dump({"labels": labels}, f)
    table = f"{root}/results.parquet"
    with fs.open(table, "wb") as f:
        pd.DataFrame(rows).to_parquet(f, index=False)
    errors: dict[str, int] = {}
    for r in rows:
        if r["error_class"]:
            errors[str(r["error_class"])] = errors.get(str(r["error_class"]), 0) + 1
    return BatchSummary(len(inputs), len(labels), errors, f"{out.rstrip('/')}/dataset.json",
                        f"{out.rstrip('/')}/results.parquet")


__all__ = ["BatchSummary", "align_folder", "list_inputs"]
