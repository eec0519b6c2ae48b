"""Alignment configuration (METHOD.md "Pre-processing")."""

from __future__ import annotations

from dataclasses import dataclass


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
    """Faces whose eye-to-mouth scale in source pixels is below this are refused (``face_too_small``)."""
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
