"""Poor-fit thresholds (issue 21): when a done item's fit is flagged ``poor_fit`` in its index row.

Not part of ``config_hash``: the flag is a judgement over metrics every row already carries, so changing a
threshold never redoes an inversion. The defaults separate the demo's failed fit (the astronaut photo:
input-view LPIPS 0.60, SSIM 0.17) from ordinary ones (0.42 on the first embedded generator's ``cpu``
preset, 0.15-0.17 on synthheads-v2; docs/benchmarks.md). The pose limits are the edge of the
FFHQ-like pose range EG3D is trained on, where its renders turn unreliable.
"""

from __future__ import annotations

from dataclasses import dataclass

from sym3dinv.config.core import PYDANTIC_CONFIG


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the poor-fit flag; a metric that did not run (no ID model) never flags."""

    __pydantic_config__ = PYDANTIC_CONFIG

    max_input_lpips: float = 0.5
    """Input-view LPIPS-Alex above this flags the item (the reconstruction does not look like the photo)."""
    min_identity: float = 0.1
    """Face-embedding cosine similarity (input view) below this flags the item, where an ID model ran.
    Far below SFace's same-person threshold (about 0.36) on purpose: a photo against its own 128-px
    reconstruction scores lower than two photos do, and cartoon inputs lower still (see docs/store.md)."""
    max_abs_yaw_deg: float = 60.0
    """Inverted camera |yaw| above this (degrees) flags the item: the edge of the generator's pose range."""
    max_abs_pitch_deg: float = 35.0
    """Inverted camera |pitch| above this (degrees) flags the item."""

    def __post_init__(self) -> None:
        from sym3dinv.errors import ConfigError

        if not (self.max_input_lpips > 0 and -1 <= self.min_identity <= 1 and 0 < self.max_abs_yaw_deg <= 180
                and 0 < self.max_abs_pitch_deg <= 90):
            raise ConfigError(f"invalid quality thresholds {self}: max_input_lpips > 0, min_identity in [-1, 1], "
                              "max_abs_yaw_deg in (0, 180], max_abs_pitch_deg in (0, 90]")
