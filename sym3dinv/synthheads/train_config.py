"""Configuration of the embedded-generator trainer: one frozen dataclass, no torch import.

The defaults are the shipped v2 generator's recipe (``synthheads-v2``); v1's recipe is kept as
:data:`V1` so its model card stays reproducible. Sizes are a reduced EG3D architecture chosen for
detail at 128 px within a 2-core CPU budget; the measured per-step costs are in ``docs/performance.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from sym3dinv.eg3d_constants import PIVOT, RADIUS, RAY_END, RAY_START


@dataclass(frozen=True)
class TrainConfig:
    """Default-generator training on SynthHeads (generator issue); numbers are the v2 recipe."""

    identities: int = 1536
    """Training identities (seeds 0..identities-1; the eval split uses a disjoint seed range)."""
    views: int = 4
    """Ground-truth views per identity: many identities with few views each cover unseen faces better."""
    resolution: int = 128
    """Output (super-resolved) image resolution."""
    neural_rendering_resolution: int = 32
    """Volume-rendered resolution before super-resolution."""
    triplane_resolution: int = 128
    """Side of each tri-plane: 128 keeps features for facial detail that 64 averages away."""
    channel_base: int = 4096
    """Backbone width budget (EG3D's channel_base), reduced for CPU."""
    channel_max: int = 64
    """Backbone maximum channels, reduced for CPU."""
    sr_channels: tuple[int, int] = (64, 32)
    """Super-resolution block widths (EG3D uses 128/64; v1 used 32/16)."""
    z_dim: int = 64
    """Latent size; small so random z cover the space of the identity codes."""
    depth_samples: int = 24
    """Stratified and (again) importance samples per ray."""
    yaw_range: float = 1.2
    """Training yaws are uniform in [-yaw_range, yaw_range] rad (covers the eval split's +-60 deg)."""
    pitch_range: float = 0.35
    """Training pitches are uniform in [-pitch_range, pitch_range] rad."""
    steps: int = 2500
    batch: int = 4
    lr: float = 2e-3
    code_lr: float = 1e-2
    raw_weight: float = 1.0
    """Weight of the raw (neural-rendering) image loss; keeps the tri-plane colours right."""
    depth_weight: float = 2.0
    """Weight of the z-depth L1 on head pixels (ground truth from the world)."""
    prior_weight: float = 0.1
    """Moment-matching weight between mapped random z and mapped identity codes."""
    lpips_weight: float = 1.0
    """LPIPS-VGG on the 128-px image: the term that removes the blur MSE alone leaves."""
    lpips_crop: int = 64
    """LPIPS is taken on one random crop of this side per image (0 = whole image): 4x cheaper at 128 px."""
    adv_start: float = 0.6
    """Fraction of the steps after which the adversarial phase starts (after the reconstruction warm-up)."""
    adv_ramp: float = 0.1
    """Fraction of the steps over which the adversarial weight ramps linearly from 0 to ``adv_weight``."""
    adv_weight: float = 0.02
    """Weight of the non-saturating generator loss once ramped up."""
    d_lr: float = 1e-3
    """Discriminator learning rate (Adam, betas 0/0.99 as StyleGAN2)."""
    r1_gamma: float = 4.0
    """R1 penalty weight on real images (lazy: every ``r1_every`` D steps, scaled by that interval)."""
    r1_every: int = 16
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 128)
    """Discriminator widths per resolution halving (128 px -> 4 px)."""
    ema_decay: float = 0.998
    """Exponential moving average of G's weights; the EMA is what gets exported."""
    checkpoint_every: int = 250
    seed: int = 0
    init_from: str = ""
    """Weights to fine-tune from instead of a random init: an embedded generator name or a
    ``.safetensors`` path whose ``<stem>_codes.safetensors`` sits beside it (same architecture and
    identities). G, its EMA and the identity codes start there; D, the optimisers and the schedule start
    fresh, so ``adv_start``/``lr`` of the continuation are chosen for it. Empty: random init."""

    def init_kwargs(self) -> dict:
        """EG3D-style constructor kwargs of the default generator (plus our tri-plane extensions)."""
        sr = {128: "training.superresolution.SuperresolutionHybrid2X",
              256: "training.superresolution.SuperresolutionHybrid4X",
              512: "training.superresolution.SuperresolutionHybrid8XDC"}
        if self.resolution not in sr:
            raise ValueError(f"resolution must be 128, 256 or 512, got {self.resolution}")
        module = sr[self.resolution]
        return {
            "z_dim": self.z_dim,
            "w_dim": 512,
            "c_dim": 25,
            "img_resolution": self.resolution,
            "img_channels": 3,
            "mapping_kwargs": {"num_layers": 2},
            "channel_base": self.channel_base,
            "channel_max": self.channel_max,
            "fused_modconv_default": "inference_only",
            "num_fp16_res": 0,
            "sr_num_fp16_res": 0,
            "conv_clamp": None,
            "sr_kwargs": {"channel_base": self.channel_base, "channel_max": self.channel_max,
                          "fused_modconv_default": "inference_only"},
            "triplane_resolution": self.triplane_resolution,
            "triplane_channels": 32,
            "neural_rendering_resolution": self.neural_rendering_resolution,
            "sr_channels": list(self.sr_channels),
            "rendering_kwargs": {
                "image_resolution": self.resolution,
                "disparity_space_sampling": False,
                "clamp_mode": "softplus",
                "superresolution_module": module,
                "c_gen_conditioning_zero": True,
                "gpc_reg_prob": 0.0,
                "c_scale": 1.0,
                "superresolution_noise_mode": "none",
                "density_reg": 0.0,
                "density_reg_p_dist": 0.004,
                "reg_type": "l1",
                "decoder_lr_mul": 1.0,
                "sr_antialias": True,
                "depth_resolution": self.depth_samples,
                "depth_resolution_importance": self.depth_samples,
                "ray_start": RAY_START,
                "ray_end": RAY_END,
                "box_warp": 1,
                "avg_camera_radius": RADIUS,
                "avg_camera_pivot": list(PIVOT),
            },
        }


V1 = TrainConfig(identities=256, views=8, triplane_resolution=64, sr_channels=(32, 16), steps=2000,
                 lpips_weight=0.0, adv_weight=0.0, ema_decay=0.0)
"""The recipe of the v1 weights (``default_G``): MSE + depth + prior only, no EMA."""

RESUME_FREE_FIELDS = ("steps", "checkpoint_every")
"""Fields a run may change when it is resumed (extend the budget, checkpoint more often)."""


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over 2% then cosine decay to 10% of the peak: a pure function of the step."""
    warm = max(1, int(0.02 * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def adv_weight_at(cfg: TrainConfig, step: int) -> float:
    """Adversarial weight at ``step``: 0 in the warm-up, then a linear ramp to ``cfg.adv_weight``."""
    start = cfg.adv_start * cfg.steps
    if cfg.adv_weight <= 0 or step < start:
        return 0.0
    ramp = max(1.0, cfg.adv_ramp * cfg.steps)
    return cfg.adv_weight * min(1.0, (step - start + 1) / ramp)


def config_json(cfg: TrainConfig) -> str:
    """Canonical JSON of the whole config (stored in checkpoints and the exported weights)."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def resume_key(config: str) -> dict:
    """What must match to resume: the stored config minus :data:`RESUME_FREE_FIELDS`."""
    d = json.loads(config)
    for k in RESUME_FREE_FIELDS:
        d.pop(k, None)
    return d
