"""Alignment of real photos: decode, detect 478 landmarks, crop like EG3D, estimate the camera label.

``FaceAligner`` holds the landmarker for a process (no hidden global). ``align`` returns the largest
face and ``align_all`` every face; failures are typed exceptions from :mod:`sym3dinv.errors`
(``no_face``, ``face_too_small``, ``low_confidence``, ``extreme_pose``, decoding errors).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from sym3dinv.align.crop import CropTransform, crop_transform, five_points, warp
from sym3dinv.align.decode import ImageInput, load_image
from sym3dinv.align.landmarks import FaceDetection, Landmarker
from sym3dinv.align.masks import Box, face_regions
from sym3dinv.align.pose import HeadPose, label_from_pose, pose_from_label, pose_from_matrix
from sym3dinv.config.align import AlignConfig
from sym3dinv.errors import AlignError, ExtremePoseError, FaceTooSmallError, LowConfidenceError, NoFaceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignedFace:
    """One aligned face; all crop-space quantities are in pixels of the ``output_size`` crop."""

    image: np.ndarray  # uint8 [S, S, 3]
    label: np.ndarray  # float32 [25], EG3D convention
    yaw: float  # rad
    pitch: float  # rad
    roll: float  # rad (estimated; the label keeps it only with AlignConfig.label_roll)
    landmarks: np.ndarray  # float32 [478, 3] in crop pixels (z scaled like x)
    five_points: np.ndarray  # float32 [5, 2] in crop pixels
    affine: np.ndarray  # [2, 3] source -> crop
    inverse_affine: np.ndarray  # [2, 3] crop -> source
    face_mask: np.ndarray  # bool [S, S]
    regions: dict[str, np.ndarray]  # bool [S, S] per region
    left_eye_box: Box
    right_eye_box: Box
    mouth_box: Box
    confidence: float  # YuNet score of the face, NaN if YuNet missed it
    bbox: tuple[float, float, float, float]  # landmark box in source pixels
    source_size: tuple[int, int]  # (height, width)
    face_index: int  # 0 = largest
    camera_source: str  # "estimated" or "known"


class FaceAligner:
    """Reusable aligner; ``with FaceAligner(cfg) as a: a.align(img)``."""

    def __init__(self, config: AlignConfig | None = None) -> None:
        self.config = config or AlignConfig()
        self._lm = Landmarker(self.config.landmarker_model, max_faces=self.config.max_faces,
                              min_detection=self.config.detector_threshold)

    def close(self) -> None:
        self._lm.close()

    def __enter__(self) -> FaceAligner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, f: FaceDetection, pose: HeadPose, five: np.ndarray, check_pose: bool) -> None:
        cfg = self.config
        eye_avg = (five[0] + five[1]) / 2
        size = max(np.hypot(*(five[1] - five[0])), np.hypot(*((five[3] + five[4]) / 2 - eye_avg)))
        if size < cfg.min_face_size / 4:
            # min_face_size is the crop's side in source pixels, about 4x the eye/mouth distance
            raise FaceTooSmallError(f"face is too small: eye/mouth scale {size:.1f} px implies a crop of "
                                    f"~{4 * size:.0f} px, below {cfg.min_face_size} px")
        if not math.isnan(f.confidence) and f.confidence < cfg.min_confidence:
            raise LowConfidenceError(f"detection confidence {f.confidence:.2f} is below {cfg.min_confidence}")
        if check_pose and (abs(math.degrees(pose.yaw)) > cfg.max_abs_yaw_deg
                           or abs(math.degrees(pose.pitch)) > cfg.max_abs_pitch_deg):
            raise ExtremePoseError(f"pose yaw {math.degrees(pose.yaw):.1f} deg, pitch "
                                   f"{math.degrees(pose.pitch):.1f} deg exceeds the limits "
                                   f"({cfg.max_abs_yaw_deg}, {cfg.max_abs_pitch_deg})")

    def _one(self, rgb: np.ndarray, f: FaceDetection, index: int, label: np.ndarray | None) -> AlignedFace:
        cfg = self.config
        s = cfg.output_size
        five_src = five_points(f.landmarks)
        pose = pose_from_matrix(f.matrix, math.radians(cfg.pitch_offset_deg), math.radians(cfg.yaw_offset_deg),
                                pitch_gain=cfg.pitch_gain, yaw_knots=cfg.yaw_knots_deg, yaw_values=cfg.yaw_values_deg)
        self._check(f, pose, five_src, label is None)
        h, w = rgb.shape[:2]
        if cfg.already_aligned:
            sx, sy = s / w, s / h
            fwd = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
            t = CropTransform(fwd, cv2.invertAffineTransform(fwd), s, float(1 / sx))
            crop = rgb if (h, w) == (s, s) else cv2.resize(rgb, (s, s), interpolation=cv2.INTER_AREA)
        else:
            t = crop_transform(five_src, s)
            crop = warp(rgb, t)
        lm = np.concatenate([t.to_crop(f.landmarks), f.landmarks[:, 2:] / t.scale], axis=1)
        reg = face_regions(lm, s, cfg.box_pad)
        if label is None:
            label_out, source = label_from_pose(pose, cfg.focal, cfg.label_roll), "estimated"
        else:
            label_out, source = np.asarray(label, np.float32).reshape(25), "known"
            pose = pose_from_label(label_out)
        return AlignedFace(
            image=np.ascontiguousarray(crop), label=label_out, yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll,
            landmarks=lm.astype(np.float32), five_points=t.to_crop(five_src).astype(np.float32),
            affine=t.affine, inverse_affine=t.inverse, face_mask=reg.face_mask, regions=reg.regions,
            left_eye_box=reg.left_eye_box, right_eye_box=reg.right_eye_box, mouth_box=reg.mouth_box,
            confidence=f.confidence, bbox=f.bbox, source_size=(h, w), face_index=index, camera_source=source,
        )

    def align_all(self, image: ImageInput, label: np.ndarray | None = None) -> list[AlignedFace]:
        """Every usable face, largest first; faces failing a check are skipped (logged), and an image
        with none usable raises the largest face's error."""
        cfg = self.config
        rgb = load_image(image, cfg.max_pixels, cfg.min_side)
        faces = self._lm.detect(rgb)
        if not faces:
            raise NoFaceError("no face found in the image")
        out: list[AlignedFace] = []
        first: AlignError | None = None
        for i, f in enumerate(faces):
            try:
                out.append(self._one(rgb, f, i, label))
            except AlignError as exc:
                log.info("face %d skipped: %s", i, exc)
                first = first or exc
        if not out:
            assert first is not None
            raise first
        return out

    def align(self, image: ImageInput, label: np.ndarray | None = None) -> AlignedFace:
        """The largest face (a known ``label`` skips camera estimation and the pose check)."""
        cfg = self.config
        rgb = load_image(image, cfg.max_pixels, cfg.min_side)
        faces = self._lm.detect(rgb)
        if not faces:
            raise NoFaceError("no face found in the image")
        return self._one(rgb, faces[0], 0, label)


def align(image: ImageInput, config: AlignConfig | None = None, label: np.ndarray | None = None) -> AlignedFace:
    """One-off convenience; batch code should keep a :class:`FaceAligner` open instead."""
    with FaceAligner(config) as a:
        return a.align(image, label)


def align_all(image: ImageInput, config: AlignConfig | None = None) -> list[AlignedFace]:
    with FaceAligner(config) as a:
        return a.align_all(image)


__all__ = ["AlignedFace", "FaceAligner", "align", "align_all", "load_image"]
