"""Inversion configuration (METHOD.md "Stage 1", "Stage 2", "Baselines"); defaults = the authors' code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["w+", "pti", "spi"]


@dataclass(frozen=True)
class Stage1Config:
    """Latent optimisation in W+ (METHOD.md "Stage 1")."""

    steps: int = 500
    """Adam steps on ws [1, 14, 512]."""
    lr: float = 0.01
    """Peak learning rate."""
    lr_rampup: float = 0.05
    """Fraction of steps of linear warm-up."""
    lr_rampdown: float = 0.25
    """Fraction of steps (at the end) of cosine ramp-down."""
    noise_scale: float = 0.05
    """Initial Gaussian noise on w, in units of w_std."""
    noise_ramp: float = 0.75
    """Fraction of steps over which that noise fades to zero (quadratically, StyleGAN projector)."""
    noise_reg_weight: float = 1e5
    """Noise-buffer regularisation weight (StyleGAN projector)."""
    w_avg_samples: int = 10000
    """Random z mapped (camera-conditioned) to estimate the mean w and its std."""
    mirror: bool = True
    """Add the flipped image at the mirrored camera (off for the "w+" and "pti" baselines)."""
    mirror_yaw_threshold: float = 0.2
    """|yaw| (rad) below which the mirror weight is 0: a frontal face adds nothing."""
    mirror_sigma: float = 0.29
    """Sigma of the Gaussian in the yaw-dependent mirror weight (implementation's value)."""
    mirror_norm: float = 2.7
    """Divisor of the Gaussian density in the mirror weight: w_m = (1 - N(|yaw|; sigma) / 2.7) / 2."""
    batch_size: int = 4
    """Images optimised together where memory allows (independent ws, shared generator)."""


@dataclass(frozen=True)
class Stage2Config:
    """Generator tuning around the pivot with pseudo labels (METHOD.md "Stage 2")."""

    steps: int = 1000
    """Maximum Adam steps on the generator parameters."""
    lr: float = 3e-4
    """Adam learning rate."""
    lpips_threshold: float = 0.05
    """Early stop once input-view LPIPS is at or below this."""
    mse_weight: float = 1.0
    lpips_weight: float = 1.0
    pseudo_every: int = 4
    """The pseudo-label terms (warp, mirror, depth reg.) run every this many steps."""
    warp: bool = True
    """Depth-guided warping pseudo labels (off for "pti")."""
    warp_yaw: float = 0.2
    """Nearby views at yaw +-this (rad) around the input pose."""
    warp_pitch: float = 0.1
    """Nearby views at pitch +-this (rad)."""
    warp_weight: float = 0.1
    """Loss weight per warped view (LPIPS on masked images)."""
    visibility_tolerance: float = 0.05
    """Depth agreement (world units, true z-depth) for a warped pixel to count as visible."""
    mirror: bool = True
    """Mirror branch with a contextual loss on eye/mouth regions (only when |yaw| >= threshold)."""
    mirror_weight: float = 0.05
    asymmetry_threshold: float = 0.25
    """Per-pixel error (in [-1,1] image units, mean over channels) between the flipped input and the
    mirror-view reconstruction above which the flipped pixel counts as asymmetric and is masked out."""
    depth_reg: bool = True
    """Depth regularisation against the frozen original generator at views around the input."""
    depth_reg_weight: float = 1.0
    depth_reg_views: int = 4


@dataclass(frozen=True)
class InversionConfig:
    """One inversion; ``mode`` switches the baselines on the same code path (METHOD.md "Baselines")."""

    mode: Mode = "spi"
    """``w+``: stage 1 without mirror; ``pti``: + tuning on the input view only; ``spi``: everything."""
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    seed: int = 0
    """Seed of the inversion's own torch.Generator (noise, sampling)."""
    resolution: int = 512
    """Resolution at which losses are computed (the generator's output resolution by default)."""
    lpips_net: str = "vgg"
    """Backbone of the LPIPS loss (the metric reported uses AlexNet)."""

    def validate(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.mode not in ("w+", "pti", "spi"):
            raise ConfigError(f"mode must be one of 'w+', 'pti', 'spi', got {self.mode!r}")
        if self.stage1.steps < 0 or self.stage2.steps < 0:
            raise ConfigError("step counts must be >= 0")
        if self.stage1.lr <= 0 or self.stage2.lr <= 0:
            raise ConfigError("learning rates must be > 0")

    def __post_init__(self) -> None:
        self.validate()
