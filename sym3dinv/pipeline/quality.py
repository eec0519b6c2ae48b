"""The poor-fit flag of a done item (issue 21): ``ok``, or ``poor_fit`` with every reason that applies.

A done row without the flag is still a result: the inversion ran and its files are there. The flag tells a
reader (``sym3dinv store summary``/``failed``, the report, ``dataset build --skip-poor``) which results
should not be trusted, and why, from the metrics the row already has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sym3dinv.config.quality import QualityConfig

OK = "ok"
POOR_FIT = "poor_fit"


def camera_angles(camera: Sequence[float]) -> tuple[float | None, float | None]:
    """(yaw, pitch) in radians of a 25-d camera label; (None, None) when it cannot be decoded (the angles are
    a convenience column and a pose check, never a reason to lose a result)."""
    import torch

    from sym3dinv.cameras import yaw_pitch_roll

    try:
        yaw, pitch, _ = (float(v) for v in yaw_pitch_roll(torch.tensor(list(camera), dtype=torch.float32).reshape(1, 25))[0])
    except Exception:  # noqa: BLE001
        return None, None
    return yaw, pitch


def assess(metrics: Mapping[str, float], yaw: float | None, pitch: float | None,
           config: QualityConfig | None = None) -> tuple[str, str | None]:
    """(quality, reason) of a fit from its input-view ``metrics`` and camera ``yaw``/``pitch`` (radians)."""
    cfg = config or QualityConfig()
    reasons: list[str] = []
    lp = metrics.get("lpips_alex")
    if lp is not None and math.isfinite(lp) and lp > cfg.max_input_lpips:
        reasons.append(f"input-view LPIPS {lp:.3f} > {cfg.max_input_lpips:g}")
    ident = metrics.get("identity")
    if ident is not None and math.isfinite(ident) and ident < cfg.min_identity:
        reasons.append(f"identity similarity {ident:.3f} < {cfg.min_identity:g}")
    for name, angle, limit in (("yaw", yaw, cfg.max_abs_yaw_deg), ("pitch", pitch, cfg.max_abs_pitch_deg)):
        if angle is not None and math.isfinite(angle) and abs(math.degrees(angle)) > limit:
            reasons.append(f"{name} {math.degrees(angle):+.1f} deg beyond ±{limit:g} (edge of the generator's poses)")
    return (POOR_FIT, "; ".join(reasons)) if reasons else (OK, None)
