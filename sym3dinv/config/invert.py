"""Inversion configuration (METHOD.md "Stage 1", "Stage 2", "Baselines"); defaults = the authors' code.

No torch import here: flows validate these objects before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["w+", "pti", "spi"]
WAvgCamera = Literal["input", "frontal"]
PseudoDepth = Literal["current", "pivot", "given"]
Sampling = Literal["stochastic", "deterministic"]
Toggle = Literal["auto", "on", "off"]
Stage1Init = Literal["w_avg", "encoder"]
Autocast = Literal["auto", "off", "bf16", "fp16"]


@dataclass(frozen=True)
class PerformanceConfig:
    """Speed switches that keep the method's function; each one can be turned off, so the throughput
    benchmark measures before/after in one run. ``auto`` settings are resolved per device by
    :func:`sym3dinv.perf.resolve` (CPU and CUDA want different things)."""

    cache_target_features: bool = True
    """LPIPS features of fixed targets (stage-1 input and its mirror, stage-2 input view) computed once per
    item instead of every step. Same values (to float rounding) as recomputing them."""
    share_planes: bool = True
    """Renders of one latent at several cameras in one call (stage-1 mirror view, stage-2 pseudo-label views,
    frozen depths) compute its tri-planes once and tile them, instead of running the backbone per camera.
    Same values and gradients (the backbone's gradient is the sum over the tiled copies either way)."""
    unfused_modconv: Toggle = "auto"
    """Modulated convolutions as activation scaling around one shared conv instead of per-sample grouped
    weights (same function, ~1e-6 rounding). ``auto``: on for CPU (faster, much faster in stage-1 backward
    where the weights are frozen), off for CUDA (EG3D's fused default)."""
    channels_last: Toggle = "auto"
    """NHWC (channels-last) conv weights for the loss networks (LPIPS VGG/Alex, the contextual loss's VGG),
    so their whole forward/backward runs NHWC; same values. ``auto``: on for CUDA (cuDNN's NHWC kernels),
    off on CPU, where interleaved runs disagreed (stage 1 1.00-1.10x, stage 2 0.86-1.10x: noise;
    docs/performance.md)."""
    autocast: Autocast = "auto"
    """Mixed precision of the synthesis and losses. ``auto``: bf16 on CUDA devices that support it, else
    off; CPU always runs fp32 (bf16 on CPU is slower here and changes results)."""
    tf32: Toggle = "auto"
    """TF32 matmuls/convs on Ampere+ GPUs (``auto``: on for CUDA). No effect on CPU."""
    compile: Toggle = "off"
    """``torch.compile`` the LPIPS network (static shapes: the same every step) with an eager fallback if
    compilation fails. Off by default: compile time only pays back over many steps on a GPU."""
    inference_mode: bool = True
    """Pure renders (final metric render, :func:`render_views`) run under ``torch.inference_mode``."""
    cuda_graphs: Toggle = "off"
    """Stage-2 steps captured as CUDA graphs after a few eager ones and replayed (one launch instead of
    thousands per step; same kernels, same result; a failed capture falls back to eager steps). ``auto``/``on``:
    on for CUDA, never on CPU. Off by default until verified on a GPU: in this project's only GPU session
    the capture failed (a host-to-device index copy, fixed since) and fell back (docs/performance.md)."""
    views_per_pass: int = -1
    """Cameras rendered with gradients in one pass of a stage-2 pseudo-label step (input, nearby views,
    mirror: 6); the passes accumulate gradients into one optimiser step, with the tri-planes computed once.
    Same gradients, bounded memory: at 512 px all six at once need ~24 GB of CPU RAM. ``0``: all in one
    pass; ``-1`` (auto): all on CUDA, 2 per pass on CPU."""


@dataclass(frozen=True)
class Stage1Config:
    """Latent optimisation in W+ (METHOD.md "Stage 1")."""

    steps: int = 500
    """Adam steps on ws [N, 14, 512] (METHOD.md "Stage 1": 500)."""
    init: Stage1Init = field(default="w_avg", metadata={"hash": "non_default"})
    """Where ws start: the camera-conditioned mean w (METHOD.md, the projector) or the trained encoder's
    prediction for the image (``sym3dinv.encoder``; the ``instant`` and ``quick`` presets). With ``encoder``
    and 0 steps, the encoder's answer is the pivot."""
    lr: float = 0.01
    """Peak learning rate (METHOD.md "Stage 1": 0.01)."""
    lr_rampup: float = 0.05
    """Fraction of steps of linear warm-up (METHOD.md: 5%)."""
    lr_rampdown: float = 0.25
    """Fraction of steps (at the end) of cosine ramp-down (METHOD.md: last 25%)."""
    noise_scale: float = 0.05
    """Initial Gaussian noise on w, in units of w_std (METHOD.md: 0.05 * w_std)."""
    noise_ramp: float = 0.75
    """Fraction of steps over which that noise fades to zero (quadratically, StyleGAN projector; METHOD: 75%)."""
    noise_reg_weight: float = 1e5
    """Weight of the projector's multi-scale autocorrelation penalty on the optimised noise buffers (1e5)."""
    optimize_noise: bool = True
    """Optimise the backbone's ``noise_const`` buffers with ws, as the StyleGAN/PTI projector does; the
    regulariser above acts on them. They are per image (stored in the result's weight delta). Off: the
    buffers stay at the checkpoint's values and the regulariser is inactive."""
    w_avg_samples: int = 10000
    """Random z mapped (camera-conditioned) to estimate the mean w and its std (projector: 10000)."""
    w_avg_camera: WAvgCamera = "input"
    """Camera label the mean-w mapping is conditioned on: the input's own camera or the frontal one
    (METHOD.md says only "camera-conditioned"; the input camera keeps the start pose-consistent)."""
    lpips_resolution: int = 256
    """Renders and targets larger than this are area-downsampled to it before LPIPS (StyleGAN projector)."""
    mirror: bool = True
    """Add the flipped image at the mirrored camera (forced off by the "w+" and "pti" modes)."""
    mirror_yaw_threshold: float = 0.2
    """|yaw| (rad) below which the mirror weight is 0: a frontal face adds nothing (METHOD.md)."""
    mirror_sigma: float = 0.29
    """Sigma of the Gaussian in the yaw-dependent mirror weight (implementation's value)."""
    mirror_norm: float = 2.7
    """Divisor of the Gaussian density in the mirror weight: w_m = (1 - N(|yaw|; 0, sigma) / 2.7) / 2."""
    batch_size: int = 4
    """Images optimised together where memory allows (independent ws, shared generator)."""
    refine_camera: bool = field(default=False, metadata={"hash": "non_default"})
    """Optimise small yaw/pitch/roll corrections of each input camera jointly with ws, from the given (aligner's)
    camera, under a Gaussian prior; the mirror camera follows, and stage 2 and the renders use the corrected
    camera (sym3dinv/invert/camera_refine.py; measured in docs/alignment.md)."""
    camera_lr: float = field(default=0.01, metadata={"hash": "non_default"})
    """Peak Adam learning rate of the corrections (radians; same warm-up/ramp-down as ``lr``); 0.01 beat
    0.004 on SynthHeads (yaw error 4.2 -> 1.4 deg instead of 3.1 at 60 steps, docs/alignment.md)."""
    camera_sigma_deg: float = field(default=5.0, metadata={"hash": "non_default"})
    """Sigma of the prior on each correction (degrees): the aligner's typical error."""
    camera_prior_weight: float = field(default=0.003, metadata={"hash": "non_default"})
    """Weight of the prior ``sum((delta / sigma)^2)`` in the per-image loss (LPIPS is ~0.1-0.5)."""


@dataclass(frozen=True)
class Stage2Config:
    """Generator tuning around the pivot with pseudo labels (METHOD.md "Stage 2")."""

    steps: int = 1000
    """Maximum Adam steps on the generator parameters (METHOD.md: up to 1000)."""
    lr: float = 3e-4
    """Adam learning rate (METHOD.md: 3e-4)."""
    lpips_threshold: float = 0.05
    """Early stop once input-view LPIPS is at or below this (METHOD.md: 0.05)."""
    mse_weight: float = 1.0
    """Weight of the input-view MSE (PTI: 1)."""
    lpips_weight: float = 1.0
    """Weight of the input-view LPIPS-VGG (PTI: 1)."""
    lpips_resolution: int = 512
    """Input-view LPIPS (and the early-stop test) runs at this resolution, area-downsampled if the images
    are larger; 512 = full resolution, as PTI's tuning loss (stage 1 uses 256 like the projector)."""
    pseudo_every: int = 4
    """The pseudo-label terms (warp, mirror, depth reg.) run on steps where step % this == 0 (METHOD: 4)."""
    warp: bool = True
    """Depth-guided warping pseudo labels (forced off by "pti")."""
    warp_yaw: float = 0.2
    """Nearby views at yaw +-this (rad) around the input pose (METHOD.md)."""
    warp_pitch: float = 0.1
    """Nearby views at pitch +-this (rad) (METHOD.md)."""
    warp_weight: float = 0.1
    """Loss weight per warped view (LPIPS on masked images; METHOD.md: 0.1)."""
    warp_depth: PseudoDepth = "current"
    """Which generator renders the depths used for warping: the tuned one at that step (``current``, as the
    authors' loop does) or the untuned generator at the pivot, computed once (``pivot``). ``given``: true
    z-depths from the caller (``invert(..., warp_depth_fn=...)``), for benchmarks that know the geometry
    (the ablation "warps with ground-truth depth"); no photo pipeline has them."""
    visibility_tolerance: float = 0.05
    """Depth agreement (world units, true z-depth) for a warped pixel to count as visible (METHOD.md)."""
    mirror: bool = True
    """Mirror branch with a contextual loss on eye/mouth regions (only when |yaw| >= threshold)."""
    mirror_weight: float = 0.05
    """Weight of the mirror-branch contextual loss (METHOD.md: 0.05)."""
    mirror_yaw_threshold: float = 0.2
    """|yaw| (rad) below which the mirror branch is skipped (METHOD.md)."""
    asymmetry_threshold: float = 0.25
    """Per-pixel error (in [-1,1] image units, mean over channels) between the flipped input and the
    mirror-view render of the generator at that step, above which the flipped pixel counts as asymmetric
    and is masked out of both images before the contextual loss. Not a number in METHOD.md (it only
    says conflicting regions are masked); chosen as ~1/8 of the value range."""
    region_size: int = 64
    """Eye/mouth crops are resized to this side before the contextual loss."""
    depth_reg: bool = True
    """Depth regularisation against the frozen original generator at views around the input."""
    depth_reg_weight: float = 1.0
    """Weight of the depth MSE (METHOD.md: 1)."""
    depth_reg_yaw: float = 0.2
    """The 4 depth-regularisation views sit at yaw +-this and pitch +-``depth_reg_pitch`` around the input."""
    depth_reg_pitch: float = 0.1
    """See ``depth_reg_yaw``."""


@dataclass(frozen=True)
class GroupConfig:
    """Joint inversion of several photos of one person into one head (:func:`sym3dinv.invert.invert_group`).

    Not in METHOD.md (single-image); the mirror and warp terms are the method's, applied to every photo.
    """

    offset_layers: int = 4
    """Per-photo offsets on the last this many ws (the high-resolution tri-plane layers and the
    super-resolution's w: texture and fine detail, for expression and lighting), on top of the shared
    pivot. 0: every photo has exactly the shared ws. A group of one has none (they would duplicate the pivot)."""
    offset_weight: float = 1.0
    """Weight of the offsets' prior: mean squared offset in units of the mean-w spread (w_std), per photo,
    added to that photo's stage-1 loss (LPIPS is ~0.1-0.5), so offsets stay small."""
    cross_warp: bool = True
    """Stage-2 pseudo labels from the other photos: each photo warped by depth into the nearby views of
    every other photo, next to that photo's own warp (``spi`` with ``stage2.warp`` only)."""
    cross_warp_weight: float = 0.1
    """Loss weight per cross-photo warped view (as ``stage2.warp_weight`` for a photo's own warps)."""
    conflict_threshold: float = 0.25
    """A cross-warped pixel is dropped where it disagrees with the current render of that view by more than
    this (mean abs channel error in [-1, 1] units): where photos conflict (expression, lighting, an
    occlusion) the disagreeing pixels go, as the mirror branch drops asymmetric ones
    (``stage2.asymmetry_threshold``)."""


@dataclass(frozen=True)
class InversionConfig:
    """One inversion; ``mode`` switches the baselines on the same code path (METHOD.md "Baselines")."""

    mode: Mode = "spi"
    """``w+``: stage 1 without mirror, no stage 2; ``pti``: w+ pivot + tuning on the input view only;
    ``spi``: everything."""
    stage1: Stage1Config = field(default_factory=Stage1Config)
    """Stage-1 settings."""
    stage2: Stage2Config = field(default_factory=Stage2Config)
    """Stage-2 settings."""
    seed: int = 0
    """Seed of the inversion's own torch.Generator (mean-w samples, w noise)."""
    resolution: int = 512
    """Resolution the input is resized to; must equal the generator's output resolution."""
    lpips_net: str = "vgg"
    """Backbone of the LPIPS loss (the metric reported uses AlexNet)."""
    sampling: Sampling = "deterministic"
    """Ray sampling of every render during inversion; ``deterministic`` makes runs repeatable."""
    perf: PerformanceConfig = field(default_factory=PerformanceConfig, metadata={"hash": False})
    """Speed switches (same function within tolerance; see docs/performance.md)."""
    group: GroupConfig = field(default=GroupConfig(), metadata={"hash": "non_default"})
    """Joint inversion of a group of photos (:func:`sym3dinv.invert.invert_group`); unused by single photos."""

    def validate(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.mode not in ("w+", "pti", "spi"):
            raise ConfigError(f"mode must be one of 'w+', 'pti', 'spi', got {self.mode!r}")
        if self.stage1.steps < 0 or self.stage2.steps < 0:
            raise ConfigError("step counts must be >= 0")
        if self.stage1.init not in ("w_avg", "encoder"):
            raise ConfigError(f"stage1.init must be 'w_avg' or 'encoder', got {self.stage1.init!r}")
        if self.stage1.camera_lr <= 0 or self.stage1.camera_sigma_deg <= 0 or self.stage1.camera_prior_weight < 0:
            raise ConfigError("stage1.camera_lr and camera_sigma_deg must be > 0, camera_prior_weight >= 0")
        if self.stage1.lr <= 0 or self.stage2.lr <= 0:
            raise ConfigError("learning rates must be > 0")
        if self.stage2.pseudo_every < 1 or self.stage1.batch_size < 1 or self.stage1.w_avg_samples < 2:
            raise ConfigError("pseudo_every and batch_size must be >= 1, w_avg_samples >= 2")
        if self.stage2.warp_depth not in ("current", "pivot", "given"):
            raise ConfigError(f"stage2.warp_depth must be 'current', 'pivot' or 'given', got {self.stage2.warp_depth!r}")
        if self.lpips_net not in ("vgg", "alex"):
            raise ConfigError(f"lpips_net must be 'vgg' or 'alex', got {self.lpips_net!r}")
        if self.sampling not in ("stochastic", "deterministic"):
            raise ConfigError(f"sampling must be 'stochastic' or 'deterministic', got {self.sampling!r}")
        g = self.group
        if g.offset_layers < 0 or g.offset_weight < 0 or g.cross_warp_weight < 0 or g.conflict_threshold <= 0:
            raise ConfigError("group.offset_layers, offset_weight and cross_warp_weight must be >= 0, "
                              "conflict_threshold > 0")
        p = self.perf
        for name in ("unfused_modconv", "channels_last", "tf32", "compile", "cuda_graphs"):
            if getattr(p, name) not in ("auto", "on", "off"):
                raise ConfigError(f"perf.{name} must be 'auto', 'on' or 'off', got {getattr(p, name)!r}")
        if p.views_per_pass < -1:
            raise ConfigError(f"perf.views_per_pass must be >= 0 (or -1 = auto), got {p.views_per_pass}")
        if p.autocast not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"perf.autocast must be 'auto', 'off', 'bf16' or 'fp16', got {p.autocast!r}")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def use_mirror_stage1(self) -> bool:
        """Stage-1 mirror term: only in ``spi``."""
        return self.mode == "spi" and self.stage1.mirror

    @property
    def run_stage2(self) -> bool:
        """Stage 2 runs in ``pti`` and ``spi``, when it has steps (``instant`` has none)."""
        return self.mode != "w+" and self.stage2.steps > 0

    @property
    def use_pseudo(self) -> bool:
        """Warp, mirror branch and depth reg. are ``spi`` only."""
        return self.mode == "spi"
