"""Training the encoder for one generator: losses, one step, resumable checkpoints, export.

Losses per sample (encoder issue): W+ regression against the true ws (in units of the generator's w_std),
image reconstruction at the input camera (MSE + LPIPS), the novel-view term (the predicted ws rendered at
another camera against the generator's render of the true ws there: what side views gain from) and the
camera estimate's (yaw, pitch) regression. The generator is frozen; its tri-planes of the predicted ws are
computed once and rendered at both cameras. Batches come from :class:`SampleSource` seeded by step, and
the checkpoint holds the network and Adam, so an interrupted run resumes to the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sym3dinv.cameras import camera_label
from sym3dinv.config.core import to_dict
from sym3dinv.config.encoder import EncoderTrainConfig
from sym3dinv.encoder.data import Batch, SampleSource, SynthHeadsBank
from sym3dinv.encoder.model import TrainedEncoder, mean_w_plus, save_encoder
from sym3dinv.encoder.network import Encoder
from sym3dinv.generator.fingerprint import generator_fingerprint
from sym3dinv.generator.latents import mean_w

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
ENCODER_FILE = "encoder.safetensors"
LOG_FILE = "train_log.jsonl"


def lr_at(step: int, cfg: EncoderTrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, t))))


class EncoderTrainer:
    """The encoder, its optimiser, the frozen generator and the step counter of one run."""

    def __init__(self, G: torch.nn.Module, cfg: EncoderTrainConfig, bank: SynthHeadsBank | None = None,
                 generator_name: str = "") -> None:
        from sym3dinv.metrics.lpips import LPIPS

        self.G = G.eval().requires_grad_(False)
        self.cfg, self.generator_name = cfg, generator_name
        torch.manual_seed(cfg.seed)
        self.net = Encoder(cfg.encoder, G.num_ws, G.w_dim)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.source = SampleSource(G, cfg, bank)
        self.lpips = LPIPS(cfg.lpips_net).requires_grad_(False)
        self.step = 0
        self.fingerprint = generator_fingerprint(G)
        gen = torch.Generator().manual_seed(cfg.encoder.w_avg_seed)
        _, w_std = mean_w(G, camera_label(0.0, 0.0).reshape(1, 25), cfg.encoder.w_avg_samples, gen)
        self.w_std = float(w_std[0])

    def images_on(self, step: int) -> bool:
        """Whether step ``step`` has the image and novel-view terms (after the W+ regression phase)."""
        c = self.cfg
        return step >= c.image_phase_start and bool(c.mse_weight or c.lpips_weight or c.novel_weight)

    def losses(self, b: Batch, images: bool = True) -> dict[str, Tensor]:
        """Every loss term of one batch (weighted; their sum is what is minimised)."""
        cfg, G = self.cfg, self.G
        out = self.net(b.inputs, b.cameras if cfg.encoder.use_camera else None)
        ws = mean_w_plus(G, b.cameras, cfg.encoder) + out.offsets
        n = ws.shape[0]
        w_scale = self.w_std / math.sqrt(G.w_dim)  # per-element spread of w around its mean
        ws_w = cfg.ws_weight_image_phase if images else cfg.ws_weight
        terms: dict[str, Tensor] = {"ws": ws_w * ((ws - b.ws) / w_scale).square().mean()}
        if images:
            assert b.novel_targets is not None
            planes = G.planes(ws, noise_mode="const", fused_modconv=False)
            cams = torch.cat((b.cameras, b.novel_cameras))
            img = G.render(torch.cat((planes, planes)), torch.cat((ws, ws)), cams, sampling="deterministic",
                           fused_modconv=False).image
            rec, nov = img[:n], img[n:]
            dist = self.lpips(img, torch.cat((b.targets, b.novel_targets)))
            terms["mse"] = cfg.mse_weight * F.mse_loss(rec, b.targets)
            terms["lpips"] = cfg.lpips_weight * dist[:n].mean()
            terms["novel"] = cfg.novel_weight * (F.mse_loss(nov, b.novel_targets) + cfg.lpips_weight * dist[n:].mean())
        if out.yaw_pitch is not None and cfg.camera_weight:
            terms["camera"] = cfg.camera_weight * F.mse_loss(out.yaw_pitch, b.yaw_pitch)
        return terms

    def train_step(self) -> dict[str, float]:
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        self.net.train()
        images = self.images_on(self.step)
        terms = self.losses(self.source.batch(self.step, images), images)
        total = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[union-attr]
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        self.opt.step()
        self.step += 1
        return {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach())}  # type: ignore[union-attr]

    # --- checkpoints and export -----------------------------------------------------------------
    def save(self, out: Path) -> Path:
        """Write the resumable state (network, Adam, step) atomically."""
        path = out / CHECKPOINT
        tmp = path.with_suffix(".tmp")
        torch.save({"net": self.net.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                    "fingerprint": self.fingerprint, "config": json.dumps(to_dict(self.cfg), sort_keys=True)}, tmp)
        tmp.replace(path)
        return path

    def load(self, path: Path) -> None:
        """Resume from ``path``; a checkpoint of another generator or recipe is refused."""
        from sym3dinv.errors import ConfigError, EncoderMismatchError

        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["fingerprint"] != self.fingerprint:
            raise EncoderMismatchError(f"{path} was trained for another generator (fingerprint {state['fingerprint'][:12]}, "
                                       f"this one {self.fingerprint[:12]}); use a new OUT directory")
        if state["config"] != json.dumps(to_dict(self.cfg), sort_keys=True):
            raise ConfigError(f"{path} was written with another training config; use the same options or a new OUT")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])

    def export(self, out: Path, seconds: float = 0.0) -> Path:
        """``OUT/encoder.safetensors`` (+ .json) bound to the generator's fingerprint."""
        enc = TrainedEncoder(self.net.eval(), self.fingerprint, self.generator_name)
        meta = {"step": str(self.step), "seconds": f"{seconds:.0f}", "w_std": f"{self.w_std:.6f}"}
        return save_encoder(enc, out / ENCODER_FILE, train_config=to_dict(self.cfg), metadata=meta)


Progress = Callable[[int, dict[str, float]], None]


def train_encoder(G: torch.nn.Module, cfg: EncoderTrainConfig, out: Path, *, bank: SynthHeadsBank | None = None,
                  generator_name: str = "", stop_at: int | None = None, progress: Progress | None = None) -> Path:
    """Train (or resume from ``out/checkpoint.pt``) and export ``out/encoder.safetensors``; returns its path.

    ``stop_at`` ends this invocation at that step (checkpointed) without changing the schedule; run again
    to go on. Losses go to ``out/train_log.jsonl``, one line per step."""
    out.mkdir(parents=True, exist_ok=True)
    tr = EncoderTrainer(G, cfg, bank, generator_name)
    if (out / CHECKPOINT).is_file():
        tr.load(out / CHECKPOINT)
        log.info("resumed from %s at step %d", out / CHECKPOINT, tr.step)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    t0, start = time.perf_counter(), tr.step
    with open(out / LOG_FILE, "a") as logf:
        while tr.step < end:
            losses = tr.train_step()
            logf.write(json.dumps({"step": tr.step - 1, **{k: round(v, 6) for k, v in losses.items()}}) + "\n")
            if progress is not None:
                progress(tr.step - 1, losses)
            if (tr.step - 1) % 25 == 0:
                logf.flush()
                log.info("step %d/%d %s (%.2f s/step)", tr.step - 1, cfg.steps,
                         " ".join(f"{k}={v:.4f}" for k, v in losses.items()),
                         (time.perf_counter() - t0) / max(1, tr.step - start))
            if tr.step % cfg.checkpoint_every == 0 or tr.step == end:
                tr.save(out)
                tr.export(out, time.perf_counter() - t0)
    tr.save(out)
    return tr.export(out, time.perf_counter() - t0)
