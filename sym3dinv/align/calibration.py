"""Yaw calibration of the pose estimate, fitted on real-face-mesh renders at known angles.

MediaPipe's yaw runs short at large angles (docs/alignment.md). The calibration is an odd, monotone,
piecewise-linear map of the raw yaw: ``yaw = sign(r) * f(|r|)`` with ``f(0) = 0`` and ``f`` linear between
knots (``AlignConfig.yaw_knots_deg`` -> ``yaw_values_deg``; past the last knot it goes on with the last
slope). Odd, so the mirror test stays exact: ``cal(-r) = -cal(r)``. Pitch gets a gain around the
estimate (``pitch_gain``); its offset stays ``pitch_offset_deg``, because the renders' pitch 0 is the
mesh's own frame, not EG3D's (the offset was measured on SynthHeads, whose frame is EG3D's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BUCKETS = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0), (45.0, 60.0))
FACE_MESH_KNOTS_DEG = (0.0, 15.0, 30.0, 45.0, 60.0)
FACE_MESH_VALUES_DEG = (0.0, 15.174, 31.863, 51.875, 60.012)
"""The fit of ``sym3dinv align calibrate --train 100 --test 100`` (docs/alignment.md). Opt-in
(``AlignConfig(yaw_knots_deg=FACE_MESH_KNOTS_DEG, yaw_values_deg=FACE_MESH_VALUES_DEG)``): it halves the
large-yaw error on the mesh renders but makes SynthHeads' yaw worse (3.19 -> 5.81 deg mean), so it is not
the default."""


def calibrate_yaw(yaw: float, knots_deg: Sequence[float], values_deg: Sequence[float]) -> float:
    """The calibrated yaw (rad) of a raw one; identity without knots."""
    if not knots_deg:
        return yaw
    k, v = np.asarray(knots_deg, float), np.asarray(values_deg, float)
    a = abs(math.degrees(yaw))
    if a <= k[-1]:
        out = float(np.interp(a, k, v))
    else:
        out = float(v[-1] + (a - k[-1]) * (v[-1] - v[-2]) / (k[-1] - k[-2]))
    return math.copysign(math.radians(out), yaw)


def fit_yaw(raw_deg: np.ndarray, true_deg: np.ndarray, knots: Sequence[float] = (0, 15, 30, 45, 60)) -> tuple[float, ...]:
    """Values at ``knots`` (first 0) of the odd monotone map that best takes |raw| to sign-matched truth.

    Least squares on the increments between knots with non-negative increments (monotone), i.e. NNLS on
    the hat-function basis; samples are folded onto |raw| (the map is odd)."""
    from scipy.optimize import nnls

    k = np.asarray(knots, float)
    a = np.abs(raw_deg)
    t = np.sign(raw_deg) * true_deg
    # f(a) = sum_j d_j * min(max(a - k_j, 0), k_{j+1} - k_j) (the last piece extends): d_j >= 0 slopes
    cols = []
    for j in range(len(k) - 1):
        width = k[j + 1] - k[j] if j < len(k) - 2 else np.inf
        cols.append(np.clip(a - k[j], 0, width))
    slopes, _ = nnls(np.stack(cols, 1), t)
    values = np.concatenate([[0.0], np.cumsum(slopes * np.diff(k))])
    return tuple(float(round(v, 3)) for v in values)


def fit_pitch_gain(raw_deg: np.ndarray, true_deg: np.ndarray) -> float:
    """Gain g of ``true - mean ~ g (raw - mean)``: the slope only (the offset is not this frame's business)."""
    r, t = raw_deg - raw_deg.mean(), true_deg - true_deg.mean()
    return float(round((r * t).sum() / (r * r).sum(), 4))


@dataclass(frozen=True)
class BucketStats:
    bucket: str
    n: int
    yaw_mean: float
    yaw_max: float
    pitch_mean: float
    pitch_max: float


def bucket_table(true_yaw_deg: np.ndarray, yaw_err: np.ndarray, pitch_err: np.ndarray) -> list[BucketStats]:
    """Mean/max |error| per |true yaw| bucket (0-15, 15-30, 30-45, 45-60 deg, the last closed) and over all."""
    rows = []
    a = np.abs(true_yaw_deg)
    for lo, hi in (*BUCKETS, (0.0, math.inf)):
        sel = (a >= lo) & ((a <= hi) if hi == BUCKETS[-1][1] else (a < hi))
        name = f"{lo:.0f}-{hi:.0f}" if math.isfinite(hi) else "all"
        y, p = np.abs(yaw_err[sel]), np.abs(pitch_err[sel])
        rows.append(BucketStats(name, int(sel.sum()), _m(y), _x(y), _m(p), _x(p)))
    return rows


def _m(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def _x(x: np.ndarray) -> float:
    return float(x.max()) if x.size else math.nan
