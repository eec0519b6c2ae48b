"""The one place that defines the aligned crop: FFHQ's eye/mouth quad, as a similarity transform.

Recipe (FFHQ ``recreate_aligned_images``, which EG3D's in-the-wild FFHQ data starts from):
``eye_avg``/``eye_to_eye``/``eye_to_mouth`` from the eye centres and mouth corners,
``x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1]``, normalised and scaled to
``max(|eye_to_eye| * 2.0, |eye_to_mouth| * 1.8)``, ``y = flipud(x) * [-1, 1]``, centre
``eye_avg + 0.1 * eye_to_mouth``; the quad ``c +- x +- y`` maps onto the output square. EG3D's own
re-crop (Deep3DFaceRecon 5-point alignment + fixed crop) is not reproduced: its scale/centre differ
slightly and have not been measured here (docs/alignment.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# MediaPipe 478-landmark indices for the five points (subject's right = image left when frontal).
RIGHT_EYE = (33, 133, 159, 145, 160, 144, 158, 153)
LEFT_EYE = (263, 362, 386, 374, 387, 373, 385, 380)
NOSE_TIP = 1
MOUTH_RIGHT, MOUTH_LEFT = 61, 291


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[5, 2]: eye centre (image left), eye centre (image right), nose tip, mouth corners (left, right)."""
    xy = landmarks[:, :2]
    return np.stack([
        xy[list(RIGHT_EYE)].mean(0), xy[list(LEFT_EYE)].mean(0), xy[NOSE_TIP], xy[MOUTH_RIGHT], xy[MOUTH_LEFT],
    ])


@dataclass(frozen=True)
class CropTransform:
    """``affine`` maps source pixels to crop pixels (2x3); ``inverse`` maps back."""

    affine: np.ndarray
    inverse: np.ndarray
    size: int
    scale: float  # source pixels per crop pixel

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        return pts[..., :2] @ self.affine[:, :2].T + self.affine[:, 2]

    def to_source(self, pts: np.ndarray) -> np.ndarray:
        return pts[..., :2] @ self.inverse[:, :2].T + self.inverse[:, 2]


def ffhq_quad(five: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre c and half-axes x (crop right), y (crop down) of the FFHQ quad in source pixels."""
    eye_l, eye_r, _, m_l, m_r = five
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (m_l + m_r) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * np.array([-1.0, 1.0])
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def crop_transform(five: np.ndarray, size: int) -> CropTransform:
    """Similarity mapping the quad onto the crop square; ``five`` and the affines use pixel-centre coordinates."""
    c, x, y = ffhq_quad(five)
    # crop point (u, v) -> source: c - x - y + (2x/size) u + (2y/size) v   (edges at 0 and size)
    inv = np.array([[2 * x[0] / size, 2 * y[0] / size, c[0] - x[0] - y[0]],
                    [2 * x[1] / size, 2 * y[1] / size, c[1] - x[1] - y[1]]])
    # All points are in pixel-centre coordinates (cv2's); the quad's corners are pixel edges, so crop
    # centre u maps to edge u + 0.5; the source's half-pixel shifts cancel (quad built from centre coords).
    inv[:, 2] += inv[:, :2] @ np.array([0.5, 0.5])
    fwd = cv2.invertAffineTransform(inv)
    return CropTransform(fwd, inv, size, float(np.hypot(*x) * 2 / size))


def warp(rgb: np.ndarray, t: CropTransform) -> np.ndarray:
    """Resample the crop; large shrinks are pre-filtered with INTER_AREA to avoid aliasing."""
    shrink = int(np.floor(t.scale))
    if shrink >= 2:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(1, w // shrink), max(1, h // shrink)), interpolation=cv2.INTER_AREA)
        sx, sy = w / small.shape[1], h / small.shape[0]
        inv = t.inverse.copy()
        inv[0] = (inv[0] + np.array([0, 0, 0.5])) / sx - np.array([0, 0, 0.5])
        inv[1] = (inv[1] + np.array([0, 0, 0.5])) / sy - np.array([0, 0, 0.5])
        rgb, m = small, cv2.invertAffineTransform(inv)
    else:
        m = t.affine
    return cv2.warpAffine(rgb, m, (t.size, t.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
