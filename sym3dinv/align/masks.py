"""Face mask, region masks and eye/mouth boxes from the 478 landmarks (no parsing model ships offline).

Index groups come from MediaPipe's own ``FaceLandmarksConnections`` sets, so they follow the model.
The face mask is the filled face-oval polygon (skin, brows, eyes, nose and lips all lie inside it);
regions are convex hulls of each group. Boxes are ``(x0, y0, x1, y1)`` in crop pixels, padded by a
fraction of their size and clipped to the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

REGIONS = ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "lips")


@cache
def _groups() -> dict[str, tuple[int, ...]]:
    from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections as C

    def idx(conns: list) -> tuple[int, ...]:
        return tuple(sorted({c.start for c in conns} | {c.end for c in conns}))

    def ring(conns: list) -> tuple[int, ...]:
        nxt = {c.start: c.end for c in conns}
        start = conns[0].start
        order, cur = [start], nxt[start]
        while cur != start and len(order) < len(nxt):
            order.append(cur)
            cur = nxt[cur]
        return tuple(order)

    return {
        "face_oval": ring(C.FACE_LANDMARKS_FACE_OVAL),
        "left_eye": idx(C.FACE_LANDMARKS_LEFT_EYE) + idx(C.FACE_LANDMARKS_LEFT_IRIS),
        "right_eye": idx(C.FACE_LANDMARKS_RIGHT_EYE) + idx(C.FACE_LANDMARKS_RIGHT_IRIS),
        "left_brow": idx(C.FACE_LANDMARKS_LEFT_EYEBROW),
        "right_brow": idx(C.FACE_LANDMARKS_RIGHT_EYEBROW),
        "nose": idx(C.FACE_LANDMARKS_NOSE),
        "lips": idx(C.FACE_LANDMARKS_LIPS),
    }


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceRegions:
    face_mask: np.ndarray  # bool [H, W]
    regions: dict[str, np.ndarray]  # name -> bool [H, W]
    left_eye_box: Box  # subject's left eye (image right in a frontal view)
    right_eye_box: Box
    mouth_box: Box


def _hull_mask(xy: np.ndarray, size: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(xy * 16).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def _box(xy: np.ndarray, pad: float, size: int) -> Box:
    lo, hi = xy.min(0), xy.max(0)
    p = (hi - lo) * pad
    x0, y0 = np.floor(np.clip(lo - p, 0, size)).astype(int)
    x1, y1 = np.ceil(np.clip(hi + p, 0, size)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def face_regions(landmarks_xy: np.ndarray, size: int, box_pad: float = 0.25) -> FaceRegions:
    """Masks and boxes for landmarks given in crop pixels ([478, 2+])."""
    g = _groups()
    xy = np.asarray(landmarks_xy, dtype=np.float64)[:, :2]
    face = np.zeros((size, size), np.uint8)
    cv2.fillPoly(face, [np.round(xy[list(g["face_oval"])] * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    regions = {name: _hull_mask(xy[list(g[name])], size) for name in REGIONS}
    return FaceRegions(
        face_mask=face.astype(bool),
        regions=regions,
        left_eye_box=_box(xy[list(g["left_eye"] + g["left_brow"])], box_pad, size),
        right_eye_box=_box(xy[list(g["right_eye"] + g["right_brow"])], box_pad, size),
        mouth_box=_box(xy[list(g["lips"])], box_pad, size),
    )
