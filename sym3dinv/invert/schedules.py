"""Stage-1 schedules as pure functions of the step (StyleGAN2 projector recipe, METHOD.md "Stage 1")."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, peak: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up over the first ``rampup`` fraction, flat at
    ``peak``, cosine ramp-down to 0 over the last ``rampdown`` fraction (projector's formula)."""
    if total <= 0:
        return peak
    t = step / total
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return peak * ramp


def noise_scale_at(step: int, total: int, initial: float = 0.05, ramp: float = 0.75) -> float:
    """Std of the Gaussian added to w (in units of w_std): ``initial`` fading quadratically to 0 at
    ``ramp * total`` steps and 0 afterwards (projector's formula)."""
    if total <= 0 or ramp <= 0:
        return 0.0
    t = step / total
    return initial * max(0.0, 1.0 - t / ramp) ** 2
