"""One training run of the embedded generator: models, optimisers, one step, checkpoints, export.

Objective (generator issue): multi-view reconstruction of SynthHeads renders (MSE on the 128-px and raw
images, z-depth L1 on head pixels) for identity codes that an MLP predicts from each head's attributes
(:mod:`codes`), a moment prior so ``G(z ~ N(0, I), c)`` samples plausible heads, LPIPS-VGG against blur,
and after a warm-up a non-saturating adversarial term with lazy R1 (:mod:`adversarial`). An EMA of G is
what gets exported. Every random draw comes from one explicit generator whose state is checkpointed,
so a resumed run continues exactly where the interrupted one would have gone.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.synthheads.adversarial import Discriminator, d_loss, g_loss, r1_penalty
from sym3dinv.synthheads.codes import IdentityCodes, attribute_matrix, codes_beside, moment_prior, set_codes
from sym3dinv.synthheads.train_config import TrainConfig, adv_weight_at, config_json, lr_at, resume_key
from sym3dinv.synthheads.train_data import TrainingCache

log = logging.getLogger(__name__)


def checkpoint_paths(out: Path) -> list[Path]:
    """Checkpoints in ``out``, oldest first."""
    return sorted(out.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def random_crops(a: Tensor, b: Tensor, size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """The same random ``size`` crop of each pair (a_i, b_i); ``size`` 0 or >= the image returns them whole."""
    n, _, h, w = a.shape
    if size <= 0 or size >= min(h, w):
        return a, b
    ys = torch.randint(0, h - size + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, w - size + 1, (n,), generator=g).tolist()
    ca = torch.stack([a[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys, xs, strict=True))])
    cb = torch.stack([b[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys, xs, strict=True))])
    return ca, cb


class Trainer:
    """Holds G, its EMA, the identity codes, D, both optimisers and the RNG of one run."""

    def __init__(self, cfg: TrainConfig, cache: TrainingCache) -> None:
        from sym3dinv.generator import TriPlaneGenerator

        self.cfg, self.cache = cfg, cache
        torch.manual_seed(cfg.seed)
        self.G = TriPlaneGenerator(**cfg.init_kwargs()).train().requires_grad_(True)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.codes = IdentityCodes(attribute_matrix(range(cache.images.shape[0])), cfg.z_dim, seed=cfg.seed)
        self.D = Discriminator(cfg.resolution, cfg.d_channels)
        self.opt = torch.optim.Adam([{"params": self.G.parameters(), "lr": cfg.lr},
                                     {"params": self.codes.parameters(), "lr": cfg.code_lr}], betas=(0.9, 0.99))
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr, betas=(0.0, 0.99))
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self._lpips = None
        self.init_fingerprint = self._init_from(cfg.init_from) if cfg.init_from else ""

    def _init_from(self, source: str) -> str:
        """Start G, G_ema and the codes from ``source`` (fine-tuning); returns its fingerprint for the record."""
        from sym3dinv.errors import ConfigError
        from sym3dinv.generator import load_generator
        from sym3dinv.generator.fingerprint import canonical_kwargs, generator_fingerprint

        src = load_generator(source)
        if canonical_kwargs(getattr(src, "init_kwargs", {})) != canonical_kwargs(self.cfg.init_kwargs()):
            raise ConfigError(f"init_from={source!r} has another architecture than this TrainConfig")
        self.G.load_state_dict(src.state_dict())
        self.G_ema.load_state_dict(src.state_dict())
        set_codes(self.codes, codes_beside(source))
        log.info("initialised from %s (%s)", source, generator_fingerprint(src))
        return generator_fingerprint(src)

    # --- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "codes": self.codes.state_dict(),
                "D": self.D.state_dict(), "opt": self.opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(), "step": self.step, "config": config_json(self.cfg),
                "init_fingerprint": self.init_fingerprint}

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=True)
        if resume_key(state["config"]) != resume_key(config_json(self.cfg)):
            raise ValueError(f"{path} was written with another TrainConfig; use a fresh output directory")
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.codes.load_state_dict(state["codes"])
        self.D.load_state_dict(state["D"])
        self.opt.load_state_dict(state["opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])  # the renderer's stratified depth jitter draws from it
        self.step = int(state["step"])
        self.init_fingerprint = state.get("init_fingerprint", self.init_fingerprint)

    def save(self, out: Path, keep: int = 2) -> Path:
        """Write ``ckpt-STEP.pt`` atomically and keep the newest ``keep``."""
        tmp = out / f".ckpt-{self.step}.tmp"
        torch.save(self.state(), tmp)
        path = out / f"ckpt-{self.step}.pt"
        tmp.replace(path)
        for old in checkpoint_paths(out)[:-keep]:
            old.unlink()
        return path

    # --- one step ---------------------------------------------------------------------------------
    def _batch(self) -> tuple[Tensor, ...]:
        c, g = self.cache, self.rng
        ids = torch.randint(0, c.images.shape[0], (self.cfg.batch,), generator=g)
        views = torch.randint(0, c.images.shape[1], (self.cfg.batch,), generator=g)
        return ids, c.images[ids, views].float(), c.depth[ids, views].float(), c.mask[ids, views], c.labels[ids, views]

    def _lpips_net(self):
        if self._lpips is None:
            from sym3dinv.metrics.lpips import load_lpips

            self._lpips = load_lpips("vgg")
        return self._lpips

    def _g_losses(self, ids: Tensor, target: Tensor, depth_gt: Tensor, mask: Tensor, c: Tensor,
                  adv_w: float) -> tuple[dict[str, Tensor], Tensor]:
        cfg, G = self.cfg, self.G
        n = ids.shape[0]
        ws = G.mapping(self.codes(ids), torch.zeros(n, 25))
        outp = G.synthesis(ws, c, noise_mode="const")
        img = outp["image"]
        raw_target = F.interpolate(target, size=outp["image_raw"].shape[-2:], mode="area")
        z_pred = cameras.ray_distance_to_z(outp["image_depth"], c)
        losses = {
            "image": F.mse_loss(img, target),
            "raw": cfg.raw_weight * F.mse_loss(outp["image_raw"], raw_target),
            "depth": cfg.depth_weight * (z_pred - depth_gt).abs()[mask].mean() if mask.any() else z_pred.sum() * 0,
        }
        if cfg.lpips_weight > 0:
            a, b = random_crops(img, target, cfg.lpips_crop, self.rng)
            losses["lpips"] = cfg.lpips_weight * self._lpips_net()(a, b).mean()
        z_rand = torch.randn(n * 4, cfg.z_dim, generator=self.rng)
        w_rand = G.mapping(z_rand, torch.zeros(z_rand.shape[0], 25))[:, 0]
        w_codes = G.mapping(self.codes(), torch.zeros(self.codes.residual.shape[0], 25))[:, 0]
        losses["prior"] = cfg.prior_weight * moment_prior(w_codes, w_rand)
        if adv_w > 0:
            self.D.requires_grad_(False)
            losses["adv"] = adv_w * g_loss(self.D(img))
            self.D.requires_grad_(True)
        return losses, img

    def _d_step(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        logits_real, logits_fake = self.D(real), self.D(fake.detach())
        loss = d_loss(logits_real, logits_fake)
        out = {"d": float(loss.detach())}
        d_steps = self.step - int(self.cfg.adv_start * self.cfg.steps)
        if self.cfg.r1_gamma > 0 and d_steps % self.cfg.r1_every == 0:
            r1 = r1_penalty(self.D, real)
            loss = loss + 0.5 * self.cfg.r1_gamma * self.cfg.r1_every * r1
            out["r1"] = float(r1.detach())
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.cfg.ema_decay
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            pe.lerp_(p, 1 - d) if d > 0 else pe.copy_(p)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            be.copy_(b)

    def train_step(self) -> dict[str, float]:
        """One G step (and, in the adversarial phase, one D step); returns the loss values."""
        cfg = self.cfg
        for i, group in enumerate(self.opt.param_groups):
            group["lr"] = lr_at(self.step, cfg.steps, cfg.lr if i == 0 else cfg.code_lr)
        ids, target, depth_gt, mask, c = self._batch()
        adv_w = adv_weight_at(cfg, self.step)
        losses, img = self._g_losses(ids, target, depth_gt, mask, c, adv_w)
        self.opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt.step()
        self._update_ema()
        out = {k: float(v.detach()) for k, v in losses.items()}
        if adv_w > 0:
            out |= self._d_step(target, img)
        self.step += 1
        return out

    # --- export -----------------------------------------------------------------------------------
    def export(self, out: Path, name: str = "default_G", seconds: float = 0.0) -> Path:
        """Write the EMA generator with ``w_avg`` = mean of mapped random z (what inversion starts from)."""
        from sym3dinv.generator import save_generator

        G = copy.deepcopy(self.G_ema).eval().requires_grad_(False)
        with torch.no_grad():
            zs = torch.randn(4096, self.cfg.z_dim, generator=torch.Generator().manual_seed(self.cfg.seed + 2))
            G.backbone.mapping.w_avg.copy_(G.mapping(zs, torch.zeros(4096, 25), truncation_psi=1)[:, 0].mean(0))
        path = out / f"{name}.safetensors"
        meta = {"training": config_json(self.cfg), "step": str(self.step), "seconds": f"{seconds:.0f}"}
        if self.init_fingerprint:
            meta["init_fingerprint"] = self.init_fingerprint
        save_generator(G, path, metadata=meta)
        return path

    def export_codes(self, out: Path, name: str = "identity_codes") -> Path:
        """The learned identity codes (z of every training seed) next to the weights, for the encoder."""
        from safetensors.torch import save_file

        path = out / f"{name}.safetensors"
        with torch.no_grad():
            save_file({"z": self.codes().contiguous()}, str(path),
                      metadata={"identities": json.dumps([0, int(self.codes.residual.shape[0])])})
        return path


def train(cfg: TrainConfig, cache: TrainingCache, out: Path, progress=None, stop_at: int | None = None) -> Path:
    """Train (or resume from the newest checkpoint in ``out``) and export ``out/default_G``; returns its path.

    ``stop_at`` ends the run early at that step (checkpointed) without changing the schedule, which is
    how a run is interrupted on purpose; the export then holds the EMA at that step. Every checkpoint
    also leaves ``ema-STEP.safetensors`` (+ ``ema-STEP_codes``) so the best step can be chosen after
    the run on held-out views: an adversarial phase can get worse late, and only its EMA shows it.
    """
    out.mkdir(parents=True, exist_ok=True)
    tr = Trainer(cfg, cache)
    ckpts = checkpoint_paths(out)
    if ckpts:
        tr.load(ckpts[-1])
        log.info("resumed from %s at step %d", ckpts[-1], tr.step)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    t0, start = time.perf_counter(), tr.step
    while tr.step < end:
        losses = tr.train_step()
        if progress is not None:
            progress(tr.step - 1, losses)
        if (tr.step - 1) % 50 == 0:
            log.info("step %d/%d %s (%.2f s/step)", tr.step - 1, cfg.steps,
                     " ".join(f"{k}={v:.4f}" for k, v in losses.items()),
                     (time.perf_counter() - t0) / max(1, tr.step - start))
        if tr.step % cfg.checkpoint_every == 0 or tr.step == end:
            tr.save(out)
            tr.export(out, seconds=time.perf_counter() - t0)
            tr.export(out, name=f"ema-{tr.step:05d}", seconds=time.perf_counter() - t0)
            tr.export_codes(out, name=f"ema-{tr.step:05d}_codes")
    tr.export_codes(out)
    return tr.export(out, seconds=time.perf_counter() - t0)
