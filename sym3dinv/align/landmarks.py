"""MediaPipe Face Landmarker wrapper: 478 landmarks + head-pose matrix per face, loaded once.

Only ``mediapipe.tasks.python`` is imported (IMAGE running mode, CPU); that path needs neither
sounddevice nor OpenCV's GUI, so the single headless OpenCV install is enough. The landmarker does
not report a per-face detection score, so confidence comes from OpenCV's YuNet detector (shipped
offline) matched to the landmarker's face by box overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sym3dinv.models import find_model

log = logging.getLogger(__name__)
MAX_DETECT_SIDE = 1600  # huge photos are downscaled for detection; landmarks are mapped back


@dataclass(frozen=True)
class FaceDetection:
    """One face in source-pixel coordinates."""

    landmarks: np.ndarray  # [478, 3] x, y in source pixel-centre coordinates, z in the same (x) pixel scale
    matrix: np.ndarray  # [4, 4] facial transformation matrix (canonical face -> camera, OpenGL)
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks in source pixels
    confidence: float  # YuNet score of the matching box, NaN when YuNet found no overlapping face

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Landmarker:
    """Holds the MediaPipe landmarker (and YuNet) for a process; use as a context manager or close()."""

    def __init__(self, model: str | Path | None = None, max_faces: int = 8, min_detection: float = 0.3) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        path = find_model("face_landmarker.task", model)
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=min_detection,
            min_face_presence_confidence=min_detection,
            output_facial_transformation_matrixes=True,
        )
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        try:
            self._yunet_path: Path | None = find_model("face_detection_yunet_2023mar_int8bq.onnx")
        except FileNotFoundError:
            self._yunet_path = None
            log.warning("YuNet model not found; detection confidence will be NaN")

    def close(self) -> None:
        if self._lm is not None:
            self._lm.close()
            self._lm = None  # type: ignore[assignment]

    def __enter__(self) -> Landmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scores(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        if self._yunet_path is None:
            return []
        h, w = rgb.shape[:2]
        det = cv2.FaceDetectorYN.create(str(self._yunet_path), "", (w, h), 0.05, 0.3, 50)
        _, faces = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        return [((f[0], f[1], f[0] + f[2], f[1] + f[3]), float(f[-1])) for f in faces]

    def _detect_region(self, rgb: np.ndarray, x_off: int, y_off: int) -> list[FaceDetection]:
        import mediapipe as mp

        h, w = rgb.shape[:2]
        s = min(1.0, MAX_DETECT_SIDE / max(h, w))
        small = rgb if s == 1.0 else cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        res = self._lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(small)))
        scores = self._scores(small)
        out = []
        for pts, mat in zip(res.face_landmarks, res.facial_transformation_matrixes, strict=True):
            # normalised image coordinates (0 = left edge) -> pixel-centre coordinates of the source photo
            a = np.array([(p.x * sw, p.y * sh, p.z * sw) for p in pts], dtype=np.float64) / s
            a[:, :2] -= 0.5
            box_local = (a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max())
            sbox = tuple((v + 0.5) * s for v in box_local)
            best = max(scores, key=lambda t: _iou(sbox, t[0]), default=None)
            conf = best[1] if best is not None and _iou(sbox, best[0]) > 0.3 else float("nan")
            a[:, 0] += x_off
            a[:, 1] += y_off
            box = (a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max())
            out.append(FaceDetection(a, np.asarray(mat, dtype=np.float64), box, conf))
        return out

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        """All faces in an HxWx3 uint8 image, largest first.

        MediaPipe's detector letterboxes the whole photo into a small square, so faces in wide/tall
        photos (group shots, side-by-side portraits) vanish; such photos are also scanned in square
        tiles along the long side (half-overlapping) and duplicates are merged by box overlap.
        """
        if self._lm is None:
            raise RuntimeError("Landmarker is closed")
        h, w = rgb.shape[:2]
        found = self._detect_region(rgb, 0, 0)
        side = min(h, w)
        if max(h, w) > 1.2 * side:
            starts = list(range(0, max(h, w) - side + 1, side // 2))
            if starts[-1] != max(h, w) - side:
                starts.append(max(h, w) - side)
            for o in starts:
                tile = rgb[:, o:o + side] if w > h else rgb[o:o + side]
                found += self._detect_region(tile, o if w > h else 0, 0 if w > h else o)
        kept: list[FaceDetection] = []
        for f in sorted(found, key=lambda f: -f.area):
            if all(_iou(f.bbox, k.bbox) < 0.3 for k in kept):
                kept.append(f)
        return kept
