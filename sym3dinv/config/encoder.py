"""The image encoder and its training (issue 17): architecture and recipe, the numbers as defaults.

No torch import (the CLI and flows read these before any model loads). The encoder maps an aligned image
(and its camera label) to W+ offsets from the camera-conditioned mean w of the generator it was trained
for; :mod:`sym3dinv.encoder` builds it, ``sym3dinv encoder train`` trains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sym3dinv.config.core import PYDANTIC_CONFIG


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture: a residual CNN pyramid (stride-2 stages), pooled per stage, to per-layer W+ offsets."""

    __pydantic_config__ = PYDANTIC_CONFIG

    resolution: int = 128
    """Side the input image is resized to (the embedded generator's output; 512-px inputs are area-resized)."""
    channels: tuple[int, ...] = (32, 64, 96, 128, 192)
    """Width of each stride-2 stage (128 px -> 4 px after five stages)."""
    blocks: int = 1
    """Residual blocks per stage after its strided one."""
    pyramid: int = 3
    """How many of the last stages' pooled features feed the heads (coarse-to-fine, as pSp's pyramid)."""
    feature: int = 256
    """Width of the fused feature vector."""
    use_camera: bool = True
    """Condition the W+ head on the input's camera label (known or aligned): the pose is then no guess."""
    predict_camera: bool = True
    """Also estimate (yaw, pitch) in radians from the image alone (not from the given label)."""
    w_avg_samples: int = 2000
    """Random z mapped (camera-conditioned) for the mean w that the offsets are added to."""
    w_avg_seed: int = 0
    """Seed of those z: the same mean at training and inference."""

    def validate(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.resolution < 16 or not self.channels or min(self.channels) < 1:
            raise ConfigError("encoder resolution must be >= 16 and channels non-empty and positive")
        if not 1 <= self.pyramid <= len(self.channels) or self.blocks < 0 or self.feature < 1:
            raise ConfigError(f"encoder pyramid must be in 1..{len(self.channels)}, blocks >= 0, feature >= 1")
        if self.w_avg_samples < 2:
            raise ConfigError("encoder w_avg_samples must be >= 2")

    def __post_init__(self) -> None:
        self.validate()


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Training on the generator's own samples (+ SynthHeads renders with the shipped identity codes).

    Defaults: the recipe of the shipped encoder for synthheads-v2 on 2 CPU cores (docs/encoder.md)."""

    __pydantic_config__ = PYDANTIC_CONFIG

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Architecture."""
    steps: int = 700
    """Adam steps in all (about 5 s each on 2 CPU cores with the image terms on, batch 8)."""
    image_phase_start: int = 100
    """Steps of W+ and camera regression alone (no renders with gradients: ~1/5 of a full step's cost)
    before the image and novel-view terms join. Kept short: the camera head learns there in ~50 steps,
    but W+ regression alone hardly moves (most directions of w barely change the image)."""
    batch: int = 8
    """Samples per step."""
    lr: float = 5e-4
    """Peak Adam learning rate (linear warm-up, cosine decay to 10%)."""
    warmup: int = 50
    """Warm-up steps."""
    yaw_std: float = 0.3
    """Input yaw ~ N(0, this) rad, clipped to +-yaw_max: FFHQ's pose distribution, roughly."""
    yaw_max: float = 1.05
    """Clip of input and novel yaws (60 degrees)."""
    pitch_std: float = 0.1
    """Input pitch ~ N(0, this) rad, clipped to +-pitch_max."""
    pitch_max: float = 0.3
    """Clip of pitches."""
    novel_yaw: float = 1.05
    """Novel-view camera: yaw uniform in +-this, pitch like the input's."""
    truncation: float = 1.0
    """Truncation psi of the sampled z (1 = the whole distribution)."""
    synthheads_fraction: float = 0.5
    """Share of each batch taken from SynthHeads renders of the generator's training identities (when it
    ships identity codes; otherwise every sample comes from the generator)."""
    synthheads_identities: int = 512
    """Training identities rendered for that share (seeds 0..N-1; at most as many as ship codes)."""
    synthheads_views: int = 4
    """Views rendered per identity (the input-pose distribution above)."""
    ws_weight: float = 1.0
    """Weight of the W+ regression (MSE against the true ws per element, in units of the per-element
    spread of w: 1 is what predicting the mean scores)."""
    ws_weight_image_phase: float = 0.1
    """Weight of the W+ regression once the image terms are on (they should lead from there)."""
    mse_weight: float = 1.0
    """Weight of the image MSE at the input camera."""
    lpips_weight: float = 0.8
    """Weight of the LPIPS-VGG term at the input camera."""
    novel_weight: float = 1.0
    """Weight of the novel-view term (MSE + LPIPS of the render of the predicted ws at another camera
    against the generator's render of the true ws there)."""
    camera_weight: float = 1.0
    """Weight of the (yaw, pitch) regression of the camera estimate."""
    lpips_net: str = "alex"
    """LPIPS backbone of the training losses: AlexNet costs 1/25 of VGG's backward on CPU (0.13 against
    3.4 s for 16 images at 128 px), and VGG would double the step."""
    checkpoint_every: int = 100
    """Steps between resumable checkpoints (model, optimiser, RNG)."""
    seed: int = 0
    """Seed of the weights and of every random draw (z, cameras, sample order)."""

    def validate(self) -> None:
        from sym3dinv.errors import ConfigError

        if self.steps < 0 or self.batch < 1 or self.lr <= 0 or self.checkpoint_every < 1:
            raise ConfigError("encoder training needs steps >= 0, batch >= 1, lr > 0, checkpoint_every >= 1")
        if self.image_phase_start < 0:
            raise ConfigError("image_phase_start must be >= 0")
        if not 0 <= self.synthheads_fraction <= 1:
            raise ConfigError("synthheads_fraction must be in [0, 1]")
        if self.lpips_net not in ("vgg", "alex"):
            raise ConfigError(f"lpips_net must be 'vgg' or 'alex', got {self.lpips_net!r}")

    def __post_init__(self) -> None:
        self.validate()
