"""Validate EG3D camera labels: name what is wrong with each one, in words a user can act on.

A label is good when it is 25 finite floats, its cam2world is a rigid transform (orthonormal rotation,
determinant +1, last row 0 0 0 1), its camera sits near FFHQ's orbit (radius 2.7 around the origin)
and looks at the head (its +z axis points at the pivot), and its intrinsics are normalised by the image
size. The look-at test also recognises the two usual mix-ups: an OpenGL/nerfstudio cam2world (the
camera's -z looks at the head) and a world-to-camera matrix (OpenCV extrinsics) where a cam2world
belongs; the message names the ``--camera-format`` that converts it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sym3dinv.camera_formats import to_label
from sym3dinv.config.align import CameraCheckConfig
from sym3dinv.eg3d_constants import PIVOT

log = logging.getLogger(__name__)

PROBLEM_CODES = ("wrong_length", "not_finite", "not_rigid", "non_orthonormal", "flipped_convention",
                 "not_looking_at_head", "radius", "intrinsics_not_normalised")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _look_problems(m: np.ndarray, lim: CameraCheckConfig) -> list[Problem]:
    """Where the camera looks; a camera looking away, or whose inverse looks at the head, is a mix-up."""
    pivot = np.asarray(PIVOT)
    to_head = pivot - m[:3, 3]
    off = _angle_deg(m[:3, 2], to_head)
    if off <= lim.look_deg:
        return []
    if _angle_deg(-m[:3, 2], to_head) <= lim.look_deg:
        return [Problem("flipped_convention", "the camera's -z axis looks at the head: an OpenGL / nerfstudio / "
                        "instant-ngp cam2world (use --camera-format opengl)")]
    inv = np.linalg.inv(m)
    if _angle_deg(inv[:3, 2], pivot - inv[:3, 3]) <= lim.look_deg:
        return [Problem("flipped_convention", "its inverse looks at the head: a world-to-camera matrix (OpenCV "
                        "extrinsics) where EG3D wants cam2world (use --camera-format opencv)")]
    return [Problem("not_looking_at_head", f"the camera's +z axis is {off:.1f} deg off the direction to the head "
                    f"at {tuple(PIVOT)} (limit {lim.look_deg:g} deg)")]


def _intrinsics_problems(K: np.ndarray, lim: CameraCheckConfig) -> list[Problem]:
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lo, hi = lim.focal_range
    why = []
    if not np.allclose(K[2], [0.0, 0.0, 1.0], atol=1e-6) or abs(K[1, 0]) > 1e-6:
        why.append(f"last row {K[2].tolist()} (want 0 0 1)")
    if abs(cx - 0.5) > lim.principal_tol or abs(cy - 0.5) > lim.principal_tol:
        px = " (pixels? divide by the image size)" if cx > 1.5 or cy > 1.5 else ""
        why.append(f"principal point ({cx:g}, {cy:g}) is not near (0.5, 0.5){px}")
    if not (lo <= fx <= hi and lo <= fy <= hi):
        why.append(f"focal ({fx:g}, {fy:g}) outside [{lo:g}, {hi:g}]")
    return [Problem("intrinsics_not_normalised", "; ".join(why))] if why else []


def check_label(label: Sequence[float] | np.ndarray, limits: CameraCheckConfig | None = None) -> list[Problem]:
    """Every problem of one EG3D label (empty: good)."""
    lim = limits or CameraCheckConfig()
    a = np.asarray(label, dtype=np.float64).reshape(-1)
    if a.shape != (25,):
        return [Problem("wrong_length", f"{a.shape[0]} values, an EG3D label has 25 (16 cam2world + 9 intrinsics)")]
    if not np.isfinite(a).all():
        bad = [i for i in range(25) if not math.isfinite(a[i])]
        return [Problem("not_finite", f"NaN or infinite values at positions {bad}")]
    m, K = a[:16].reshape(4, 4), a[16:].reshape(3, 3)
    out: list[Problem] = []
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        out.append(Problem("not_rigid", f"last row of cam2world is {m[3].tolist()} (want 0 0 0 1)"))
    r = m[:3, :3]
    err = float(np.abs(r.T @ r - np.eye(3)).max())
    det = float(np.linalg.det(r))
    if err > lim.orthonormal_tol:
        out.append(Problem("non_orthonormal", f"rotation is not orthonormal (max |R^T R - I| = {err:.3g})"))
    elif det < 0:
        out.append(Problem("non_orthonormal", "rotation has determinant -1 (a reflection: one camera axis flipped)"))
    if not out:
        out += _look_problems(m, lim)
    radius = float(np.linalg.norm(m[:3, 3]))
    if abs(radius - lim.radius) > lim.radius_tol * lim.radius:
        out.append(Problem("radius", f"camera is {radius:.3g} from the origin, far from {lim.radius:g}"))
    return out + _intrinsics_problems(K, lim)


FATAL = ("wrong_length", "not_finite", "not_rigid", "non_orthonormal")
"""Problems that make a known camera unusable; the others are logged (an unusual camera may be intended)."""


def known_label(values: object, fmt: str = "eg3d", where: str = "label") -> np.ndarray:
    """A known camera in ``fmt`` as a float32 EG3D label, or :class:`~sym3dinv.errors.BadCameraError`
    naming what is wrong; problems that leave the label usable (radius, look-at, intrinsics) are logged."""
    from sym3dinv.errors import BadCameraError

    problems = _check_one(values, fmt, None)
    fatal = [p for p in problems if p.code in FATAL]
    if fatal:
        raise BadCameraError(f"camera {where} ({fmt}): " + "; ".join(f"{p.code}: {p.message}" for p in fatal))
    for p in problems:
        log.warning("camera %s (%s): %s: %s", where, fmt, p.code, p.message)
    return to_label(np.asarray(values, dtype=np.float64), fmt).astype(np.float32)


@dataclass(frozen=True)
class LabelReport:
    name: str
    problems: tuple[Problem, ...]


def check_dataset_json(path: str | os.PathLike[str], fmt: str = "eg3d",
                       limits: CameraCheckConfig | None = None) -> list[LabelReport]:
    """A report per label of an EG3D-style ``dataset.json`` (``{"labels": [[name, values], ...]}``),
    converted from ``fmt`` first; a label that cannot be converted reports why."""
    import fsspec

    with fsspec.open(os.fspath(path), "r") as f:
        data = json.load(f)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise ValueError(f"{path}: not an EG3D dataset.json (no 'labels' list)")
    return [LabelReport(str(name), tuple(_check_one(values, fmt, limits))) for name, values in _entries(labels)]


def _entries(labels: list[object]) -> Iterator[tuple[object, object]]:
    for i, entry in enumerate(labels):
        if isinstance(entry, list | tuple) and len(entry) == 2:
            yield entry[0], entry[1]
        else:
            yield f"<entry {i}>", entry


def _check_one(values: object, fmt: str, limits: CameraCheckConfig | None) -> list[Problem]:
    if values is None:
        return [Problem("wrong_length", "no label (null)")]
    try:
        a = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return [Problem("wrong_length", f"not a list of numbers: {str(values)[:60]}")]
    if fmt == "eg3d":
        return check_label(a, limits)
    if not np.isfinite(a).all():
        return [Problem("not_finite", "NaN or infinite values")]
    try:
        label = to_label(a, fmt)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return [Problem("wrong_length", str(exc))]
    return check_label(label, limits)
