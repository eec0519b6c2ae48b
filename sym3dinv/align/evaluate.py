"""Measure pose accuracy: mirror consistency on real photos, known cameras on SynthHeads renders.

Mirror consistency: for a photo I and its horizontal flip, an unbiased estimator gives
``yaw(flip I) = -yaw(I)`` and ``pitch(flip I) = pitch(I)``; the errors are reported as
``|yaw(I) + yaw(flip I)| / 2`` and ``|pitch(I) - pitch(flip I)| / 2`` (each estimate's deviation from
the symmetric answer) in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sym3dinv.align import FaceAligner
from sym3dinv.errors import ItemError


@dataclass(frozen=True)
class PoseReport:
    images: int
    detected: int
    yaw_mean_deg: float
    yaw_max_deg: float
    pitch_mean_deg: float
    pitch_max_deg: float
    pitch_bias_deg: float = 0.0  # mean signed pitch error (known cameras only)

    @property
    def detection_rate(self) -> float:
        return self.detected / self.images if self.images else float("nan")


def _report(n: int, yaw_err: list[float], pitch_err: list[float], bias: float = 0.0) -> PoseReport:
    y, p = np.abs(np.array(yaw_err)), np.abs(np.array(pitch_err))
    def stat(a: np.ndarray, f: str) -> float:
        return float(getattr(a, f)()) if a.size else float("nan")
    return PoseReport(n, len(yaw_err), stat(y, "mean"), stat(y, "max"), stat(p, "mean"), stat(p, "max"), bias)


def mirror_consistency(aligner: FaceAligner, images: Iterable[np.ndarray]) -> PoseReport:
    """Errors of (yaw, pitch) under horizontal flips; images where either view fails are not counted."""
    yaw_err, pitch_err, n = [], [], 0
    for img in images:
        n += 1
        try:
            a = aligner.align(img)
            b = aligner.align(np.ascontiguousarray(img[:, ::-1]))
        except ItemError:
            continue
        yaw_err.append(math.degrees(a.yaw + b.yaw) / 2)
        pitch_err.append(math.degrees(a.pitch - b.pitch) / 2)
    return _report(n, yaw_err, pitch_err)


def known_camera_accuracy(aligner: FaceAligner, images: Iterable[np.ndarray],
                          truth: Iterable[tuple[float, float]]) -> PoseReport:
    """Errors against known (yaw, pitch) in radians; pitch errors are reported after removing the mean bias."""
    est, ref, n = [], [], 0
    for img, (yaw, pitch) in zip(images, truth, strict=True):
        n += 1
        try:
            f = aligner.align(img)
        except ItemError:
            continue
        est.append((f.yaw, f.pitch))
        ref.append((yaw, pitch))
    if not est:
        return _report(n, [], [])
    d = np.degrees(np.array(est) - np.array(ref))
    bias = float(d[:, 1].mean())
    return _report(n, d[:, 0].tolist(), (d[:, 1] - bias).tolist(), bias)


def offline_portraits() -> dict[str, np.ndarray]:
    """Real portraits shipped inside installed packages (licences in docs/alignment.md)."""
    import matplotlib
    import skimage.data
    from PIL import Image

    out = {"skimage_astronaut": skimage.data.astronaut()}
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.exists():
        out["matplotlib_grace_hopper"] = np.asarray(Image.open(hopper).convert("RGB"))
    return out


def lfw_subset_faces(upscale: int = 256) -> list[np.ndarray]:
    """skimage's ``lfw_subset`` faces (25x25 grey), upscaled so the landmarker sees them."""
    import cv2
    import skimage.data

    faces = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest non-faces
    out = []
    for f in faces:
        g = np.clip(f * 255, 0, 255).astype(np.uint8)
        g = cv2.resize(g, (upscale, upscale), interpolation=cv2.INTER_CUBIC)
        g = cv2.copyMakeBorder(g, upscale // 4, upscale // 4, upscale // 4, upscale // 4, cv2.BORDER_REPLICATE)
        out.append(np.repeat(g[..., None], 3, axis=2))
    return out


def synthheads_accuracy(aligner: FaceAligner, seeds: Iterable[int], yaws_deg: Iterable[float] = (-40, -20, 0, 20, 40),
                        pitches_deg: Iterable[float] = (-10, 10), resolution: int = 256) -> PoseReport:
    """Known-camera accuracy on SynthHeads renders (every yaw x pitch per identity seed)."""
    import torch

    from sym3dinv.cameras import camera_label
    from sym3dinv.synthheads.dataset import render_views, to_uint8

    grid = [(math.radians(y), math.radians(p)) for y in yaws_deg for p in pitches_deg]
    labels = camera_label(torch.tensor([g[0] for g in grid]), torch.tensor([g[1] for g in grid]))
    images: list[np.ndarray] = []
    truth: list[tuple[float, float]] = []
    for seed in seeds:
        r = render_views(seed, labels, resolution)
        images += [to_uint8(r.rgb[i]) for i in range(len(grid))]
        truth += grid
    return known_camera_accuracy(aligner, images, truth)


def face_mesh_poses(aligner: FaceAligner, seeds: Iterable[int], max_yaw_deg: float = 60.0,
                    max_pitch_deg: float = 20.0, size: int = 384) -> np.ndarray:
    """Rows (true yaw, true pitch, estimated yaw, estimated pitch) in degrees of canonical-face-mesh renders
    (:mod:`sym3dinv.align.face_mesh_renders`) at angles drawn from each seed; undetected renders give NaN."""
    from sym3dinv.align.face_mesh_renders import canonical_face_mesh, render_face

    mesh = canonical_face_mesh(aligner.config.landmarker_model)
    rows = []
    for seed in seeds:
        g = np.random.default_rng([7, seed])
        yaw, pitch = g.uniform(-max_yaw_deg, max_yaw_deg), g.uniform(-max_pitch_deg, max_pitch_deg)
        r = render_face(math.radians(yaw), math.radians(pitch), seed, size, mesh)
        try:
            f = aligner.align(r.image)
            rows.append((yaw, pitch, math.degrees(f.yaw), math.degrees(f.pitch)))
        except ItemError:
            rows.append((yaw, pitch, math.nan, math.nan))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)
