"""Train the embedded default generator on SynthHeads, on CPU, from one command.

Objective: an auto-decoder with a latent prior (GLO-style), not a GAN. Every training identity owns a
learnable z; the EG3D-architecture generator maps it (camera conditioning off) and renders it at
ground-truth cameras, and we minimise multi-view reconstruction (super-resolved and raw images) plus
ground-truth z-depth on the head. A moment-matching prior makes ``mapping(z ~ N(0, I))`` land where the
identity codes live, so ``G(z, c)`` samples plausible heads and ``G.mapping`` gives a meaningful mean w
and spread. Why not adversarial: on 2 CPU cores a GAN would not converge in the budget, while direct
multi-view + depth supervision gives correct geometry quickly, and geometry is what the symmetry
prior's warping relies on.

Training checkpoints every ``checkpoint_every`` steps (model, codes, optimiser, RNG, step) and resumes
from the newest checkpoint in ``out`` when started again with the same configuration.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.eg3d_constants import PIVOT, RADIUS, RAY_END, RAY_START

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Default-generator training (SynthHeads issue); sizes are the reduced EG3D architecture."""

    identities: int = 256
    """Training identities (seeds 0..identities-1; the eval split uses a disjoint seed range)."""
    views: int = 8
    """Ground-truth views per identity rendered into the training cache."""
    resolution: int = 128
    """Output (super-resolved) image resolution."""
    neural_rendering_resolution: int = 32
    """Volume-rendered resolution before super-resolution."""
    triplane_resolution: int = 64
    """Side of each tri-plane."""
    channel_base: int = 4096
    """Backbone width budget (EG3D's channel_base), reduced for CPU."""
    channel_max: int = 64
    """Backbone maximum channels, reduced for CPU."""
    sr_channels: tuple[int, int] = (32, 16)
    """Super-resolution block widths (EG3D's fixed 128/64 widths are too slow to train on CPU)."""
    z_dim: int = 64
    """Latent size; small so random z cover the space of a few hundred identity codes."""
    depth_samples: int = 24
    """Stratified and (again) importance samples per ray."""
    yaw_range: float = 1.2
    """Training yaws are uniform in [-yaw_range, yaw_range] rad (covers the eval split's +-60 deg)."""
    pitch_range: float = 0.35
    """Training pitches are uniform in [-pitch_range, pitch_range] rad."""
    steps: int = 2000
    batch: int = 4
    lr: float = 2e-3
    code_lr: float = 1e-2
    raw_weight: float = 1.0
    """Weight of the raw (neural-rendering) image loss; keeps the tri-plane colours right."""
    depth_weight: float = 2.0
    """Weight of the z-depth L1 on head pixels (ground truth from the world)."""
    prior_weight: float = 0.1
    """Moment-matching weight between mapped random z and mapped identity codes."""
    checkpoint_every: int = 250
    seed: int = 0

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


@dataclass(frozen=True)
class TrainingCache:
    """Pre-rendered ground truth: images in [-1, 1], z-depth and head masks at neural resolution."""

    images: Tensor  # [I, V, 3, R, R] float16
    depth: Tensor  # [I, V, 1, r, r] float16 z-depth
    mask: Tensor  # [I, V, 1, r, r] bool, head (not background)
    labels: Tensor  # [I, V, 25] float32


RenderFn = Callable[[int, Tensor, int], tuple[Tensor, Tensor, Tensor]]
"""(identity seed, labels [V, 25], resolution) -> (rgb [V,3,R,R] in [0,1], z-depth [V,1,R,R], mask [V,1,R,R])."""


def sample_training_labels(cfg: TrainConfig, identity: int) -> Tensor:
    """Deterministic per-identity views: stratified yaws so both sides are always seen."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + identity)
    strata = (torch.arange(cfg.views) + torch.rand(cfg.views, generator=g)) / cfg.views
    yaw = (2 * strata - 1) * cfg.yaw_range
    pitch = (2 * torch.rand(cfg.views, generator=g) - 1) * cfg.pitch_range
    return cameras.camera_label(yaw, pitch)


def build_cache(cfg: TrainConfig, render: RenderFn, path: Path | None = None) -> TrainingCache:
    """Render (or load) the training ground truth; cached as one safetensors file."""
    from safetensors.torch import load_file, save_file

    if path is not None and path.is_file():
        d = load_file(str(path))
        return TrainingCache(d["images"], d["depth"], d["mask"].bool(), d["labels"])
    r = cfg.neural_rendering_resolution
    imgs, depths, masks, labels = [], [], [], []
    t0 = time.perf_counter()
    for i in range(cfg.identities):
        lab = sample_training_labels(cfg, i)
        rgb, z, m = render(i, lab, cfg.resolution)
        imgs.append((rgb * 2 - 1).half())
        zr = F.interpolate(z, size=(r, r), mode="area")
        mr = F.interpolate(m.float(), size=(r, r), mode="area") > 0.99
        depths.append(torch.where(mr, zr, torch.zeros_like(zr)).half())
        masks.append(mr)
        labels.append(lab)
        if (i + 1) % 16 == 0:
            log.info("rendered %d/%d identities (%.0f s)", i + 1, cfg.identities, time.perf_counter() - t0)
    cache = TrainingCache(torch.stack(imgs), torch.stack(depths), torch.stack(masks), torch.stack(labels))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        save_file({"images": cache.images.contiguous(), "depth": cache.depth.contiguous(),
                   "mask": cache.mask.to(torch.uint8).contiguous(), "labels": cache.labels.contiguous()}, str(tmp))
        tmp.replace(path)
    return cache


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over 2% then cosine decay to 10% of the peak: a pure function of the step."""
    warm = max(1, int(0.02 * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _moment_prior(w_codes: Tensor, w_rand: Tensor) -> Tensor:
    return (w_codes.mean(0) - w_rand.mean(0)).pow(2).mean() + (w_codes.std(0) - w_rand.std(0)).pow(2).mean()


def _config_json(cfg: TrainConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def _without_steps(config_json: str) -> dict:
    """What must match to resume: the stored TrainConfig minus the step budget (a run may be extended)."""
    d = json.loads(config_json)
    d.pop("steps", None)
    return d


def _checkpoint_paths(out: Path) -> list[Path]:
    return sorted(out.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def train(cfg: TrainConfig, cache: TrainingCache, out: Path,
          progress: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Train (or resume) and write ``out/default_G.safetensors`` + ``.json``; returns the weights path."""
    from sym3dinv.generator import TriPlaneGenerator, save_generator

    torch.set_flush_denormal(True)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    G = TriPlaneGenerator(**cfg.init_kwargs()).train().requires_grad_(True)
    n_id = cache.images.shape[0]
    codes = torch.nn.Parameter(torch.randn(n_id, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed)))
    opt = torch.optim.Adam([{"params": G.parameters(), "lr": cfg.lr},
                            {"params": [codes], "lr": cfg.code_lr}], betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(cfg.seed + 1)
    start = 0
    ckpts = _checkpoint_paths(out)
    if ckpts:
        state = torch.load(ckpts[-1], weights_only=True)
        if _without_steps(state["config"]) != _without_steps(_config_json(cfg)):
            raise ValueError(f"{ckpts[-1]} was written with another TrainConfig; use a fresh output directory")
        G.load_state_dict(state["G"])
        codes.data.copy_(state["codes"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["rng"])
        start = int(state["step"])
        log.info("resumed from %s at step %d", ckpts[-1], start)
    c_zero = torch.zeros(cfg.batch, 25)
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        for i, group in enumerate(opt.param_groups):
            group["lr"] = lr_at(step, cfg.steps, cfg.lr if i == 0 else cfg.code_lr)
        ids = torch.randint(0, n_id, (cfg.batch,), generator=g)
        views = torch.randint(0, cache.images.shape[1], (cfg.batch,), generator=g)
        target = cache.images[ids, views].float()
        depth_gt = cache.depth[ids, views].float()
        mask = cache.mask[ids, views]
        c = cache.labels[ids, views]
        ws = G.mapping(codes[ids], c_zero)
        outp = G.synthesis(ws, c, noise_mode="const")
        raw_target = F.interpolate(target, size=outp["image_raw"].shape[-2:], mode="area")
        z_pred = cameras.ray_distance_to_z(outp["image_depth"], c)
        losses = {
            "image": F.mse_loss(outp["image"], target),
            "raw": cfg.raw_weight * F.mse_loss(outp["image_raw"], raw_target),
            "depth": cfg.depth_weight * (z_pred - depth_gt).abs()[mask].mean() if mask.any() else z_pred.sum() * 0,
        }
        z_rand = torch.randn(cfg.batch * 4, cfg.z_dim, generator=g)
        w_rand = G.mapping(z_rand, torch.zeros(z_rand.shape[0], 25))[:, 0]
        losses["prior"] = cfg.prior_weight * _moment_prior(G.mapping(codes, torch.zeros(n_id, 25))[:, 0], w_rand)
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if progress is not None:
            progress(step, {k: float(v.detach()) for k, v in losses.items()})
        if step % 50 == 0:
            log.info("step %d/%d %s (%.1f s/step)", step, cfg.steps,
                     " ".join(f"{k}={float(v.detach()):.4f}" for k, v in losses.items()),
                     (time.perf_counter() - t0) / max(1, step - start + 1))
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            tmp = out / f".ckpt-{step + 1}.tmp"
            torch.save({"G": G.state_dict(), "codes": codes.detach(), "opt": opt.state_dict(),
                        "rng": g.get_state(), "step": step + 1,
                        "config": _config_json(cfg)}, tmp)
            tmp.replace(out / f"ckpt-{step + 1}.pt")
            for old in _checkpoint_paths(out)[:-2]:
                old.unlink()
    G.eval().requires_grad_(False)
    with torch.no_grad():  # EG3D keeps w_avg as a tracked mean; set it to the mean of mapped random z
        zs = torch.randn(4096, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        G.backbone.mapping.w_avg.copy_(G.mapping(zs, torch.zeros(4096, 25), truncation_psi=1)[:, 0].mean(0))
    weights = out / "default_G.safetensors"
    save_generator(G, weights, metadata={"training": json.dumps(dataclasses.asdict(cfg)),
                                         "seconds": f"{time.perf_counter() - t0:.0f}"})
    return weights


def render_synthheads(identity: int, labels: Tensor, resolution: int) -> tuple[Tensor, Tensor, Tensor]:
    """Training ground truth from the SynthHeads world: black background (the volume's empty colour)."""
    from sym3dinv.synthheads.head import Head
    from sym3dinv.synthheads.params import sample_head_params
    from sym3dinv.synthheads.tracer import render_head

    r = render_head(Head(sample_head_params(identity)), labels, resolution, background=(0.0, 0.0, 0.0))
    return r.rgb, r.z_depth, r.mask


def main(argv: list[str] | None = None) -> int:
    """``python -m sym3dinv.synthheads.train OUT [--steps N] [--identities N]``: cache, train, export."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", type=Path)
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "float"):
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=int if f.type == "int" else float, default=None)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    args = ap.parse_args(argv)
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}
    cfg = dataclasses.replace(TrainConfig(), **over)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)  # sphere tracing: one thread per process is far faster on a busy machine
    cache = build_cache(cfg, render_synthheads, args.out / f"cache-{cfg.identities}x{cfg.views}-{cfg.resolution}.safetensors")
    torch.set_num_threads(args.threads)
    print(train(cfg, cache, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
