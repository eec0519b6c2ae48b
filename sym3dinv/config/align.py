"""Alignment configuration (METHOD.md "Pre-processing")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from sym3dinv.eg3d_constants import FFHQ_FOCAL, RADIUS

CameraFormat = Literal["eg3d", "opencv", "opengl", "nerfstudio", "instant-ngp", "colmap", "deep3dface"]
CAMERA_FORMATS: tuple[str, ...] = get_args(CameraFormat)
"""Conventions of known camera labels (``sym3dinv.camera_formats`` converts each to the EG3D label)."""


@dataclass(frozen=True)
class AlignConfig:
    """Face detection, EG3D-style crop and camera estimation."""

    output_size: int = 512
    """Side of the aligned crop (EG3D's FFHQ resolution)."""
    max_pixels: int = 100_000_000
    """Decoded images above this many pixels are refused (decompression-bomb guard)."""
    min_side: int = 32
    """Images with a side below this are refused as too small."""
    min_face_size: int = 64
    """Faces whose crop side in source pixels (~4x the larger of eye-to-eye and eye-to-mouth distance) is
    below this are refused (``face_too_small``)."""
    min_confidence: float = 0.5
    """Detection confidence below this is refused (``low_confidence``)."""
    max_abs_yaw_deg: float = 80.0
    """Estimated |yaw| above this is refused (``extreme_pose``)."""
    max_abs_pitch_deg: float = 50.0
    """Estimated |pitch| above this is refused (``extreme_pose``)."""
    multi_face: str = "largest"
    """``largest``: one item per image; ``all``: every face becomes its own item."""
    landmarker_model: str | None = None
    """Path of MediaPipe's ``face_landmarker.task``; None = the model directory."""
    detector_threshold: float = 0.5
    """MediaPipe's own face detection/presence threshold (its default); low values admit spurious faces."""
    max_faces: int = 8
    """Most faces the landmarker reports per image (``multi_face='all'``)."""
    pitch_offset_deg: float = 13.7
    """Added to the estimated pitch: MediaPipe's raw pitch is 13.7 deg low on SynthHeads renders at known
    cameras (60 views, docs/alignment.md); not yet checked against EG3D's FFHQ labels."""
    yaw_offset_deg: float = 0.0
    """Added to the estimated yaw (calibration; the mirror test requires 0)."""
    yaw_knots_deg: tuple[float, ...] = field(default=(), metadata={"hash": "non_default"})
    """Raw |yaw| knots of the odd monotone yaw calibration (sym3dinv/align/calibration.py); empty = none."""
    yaw_values_deg: tuple[float, ...] = field(default=(), metadata={"hash": "non_default"})
    """Calibrated |yaw| at each knot (the first knot and value are 0)."""
    pitch_gain: float = field(default=1.0, metadata={"hash": "non_default"})
    """Pitch = gain * raw pitch + pitch_offset_deg."""
    focal: float = FFHQ_FOCAL
    """Normalised focal written into labels (FFHQ dataset.json)."""
    label_roll: bool = False
    """Keep the estimated roll in the label; off because the crop already levels the eye line."""
    box_pad: float = 0.25
    """Eye/mouth boxes grow by this fraction of their size on each side."""
    already_aligned: bool = False
    """Inputs are EG3D crops already: resize to ``output_size`` and skip the crop."""
    camera_format: CameraFormat = field(default="eg3d", metadata={"hash": "non_default"})
    """Convention of known cameras (dataset.json labels, sidecars): eg3d (25 floats), opencv ([R|t] world to
    camera), opengl / nerfstudio / instant-ngp (cam2world), colmap (qvec, tvec), deep3dface (angle, trans as
    EG3D's FFHQ preprocessing uses them); intrinsics (9, normalised) may follow the pose (docs/alignment.md)."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.multi_face not in ("largest", "all"):
            raise ConfigError(f"multi_face must be 'largest' or 'all', got {self.multi_face!r}")
        if self.output_size < 16 or self.max_pixels <= 0 or self.min_side < 1 or self.max_faces < 1:
            raise ConfigError("output_size >= 16, max_pixels > 0, min_side >= 1 and max_faces >= 1 are required")
        if self.camera_format not in CAMERA_FORMATS:
            raise ConfigError(f"camera_format must be one of {', '.join(CAMERA_FORMATS)}, got {self.camera_format!r}")
        if len(self.yaw_knots_deg) != len(self.yaw_values_deg) or len(self.yaw_knots_deg) == 1:
            raise ConfigError("yaw_knots_deg and yaw_values_deg need the same length, 0 or at least 2")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must lie in [0, 1], got {self.min_confidence}")


@dataclass(frozen=True)
class CameraCheckConfig:
    """Tolerances of ``sym3dinv cameras check`` (:func:`sym3dinv.camera_check.check_label`); the defaults
    accept FFHQ's labels (radius 2.7, focal 4.26) and SynthHeads'."""

    orthonormal_tol: float = 1e-3
    """Largest entry of |R^T R - I| accepted (float32 labels are ~1e-7 off)."""
    look_deg: float = 15.0
    """Largest angle between the camera's +z axis and the direction to the pivot."""
    radius: float = RADIUS
    """Orbit radius the cameras should have (FFHQ's)."""
    radius_tol: float = 0.15
    """Relative deviation of |camera position| from ``radius`` accepted."""
    principal_tol: float = 0.25
    """Largest |cx - 0.5|, |cy - 0.5| of normalised intrinsics."""
    focal_range: tuple[float, float] = (0.5, 50.0)
    """Normalised focal lengths outside this range are not normalised (or not a portrait camera)."""
