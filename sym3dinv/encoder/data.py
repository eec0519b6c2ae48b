"""Training samples of the encoder: the generator's own renders at known ws and cameras, plus SynthHeads.

Two sources, drawn per step from an explicit RNG seeded by (seed, step), so a resumed run sees exactly
the batches the uninterrupted one would have seen:

- **generator samples**: random z (FFHQ-like input pose, a novel camera anywhere in +-60 deg), the true
  ws, and the generator's renders of them at both cameras (no gradients). Their input image goes to the
  encoder with its empty background replaced by a random grey, as aligned photos have one.
- **SynthHeads renders** (embedded generators that ship identity codes): ground-truth renders of the
  training identities, rendered once on a black background with their masks, composited on a random
  grey each step. Their "true ws" are the mapped identity codes, so the W+ and novel-view targets stay
  the generator's own. This is the domain of synthheads-eval inputs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.config.encoder import EncoderTrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One training batch; images in [-1, 1] at the generator's output resolution."""

    inputs: Float[Tensor, "b 3 r r"]  # what the encoder sees (background replaced)
    targets: Float[Tensor, "b 3 r r"]  # what the render of the predicted ws at the input camera should match
    cameras: Float[Tensor, "b 25"]
    yaw_pitch: Float[Tensor, "b 2"]  # the input camera's angles (radians)
    ws: Float[Tensor, "b k w"]  # the true ws
    novel_cameras: Float[Tensor, "b 25"]
    novel_targets: Float[Tensor, "b 3 r r"] | None  # G's render of the true ws at the novel camera (image phase)


@dataclass(frozen=True)
class SynthHeadsBank:
    """Pre-rendered SynthHeads views of training identities (black background) with masks and angles."""

    rgb: Tensor  # [I, V, 3, R, R] float16 in [0, 1]
    mask: Tensor  # [I, V, 1, R, R] float16 coverage
    yaw_pitch: Tensor  # [I, V, 2] radians
    z: Tensor  # [I, z_dim] identity codes

    @property
    def identities(self) -> int:
        return int(self.rgb.shape[0])


def sample_angles(cfg: EncoderTrainConfig, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Input yaw and pitch (radians): clipped normals, FFHQ's pose distribution roughly."""
    yaw = (torch.randn(n, generator=g) * cfg.yaw_std).clamp(-cfg.yaw_max, cfg.yaw_max)
    pitch = (torch.randn(n, generator=g) * cfg.pitch_std).clamp(-cfg.pitch_max, cfg.pitch_max)
    return yaw, pitch


def novel_cameras(cfg: EncoderTrainConfig, n: int, g: torch.Generator) -> Tensor:
    """Novel-view cameras: yaw uniform in +-novel_yaw, pitch like an input's."""
    yaw = (2 * torch.rand(n, generator=g) - 1) * cfg.novel_yaw
    pitch = (torch.randn(n, generator=g) * cfg.pitch_std).clamp(-cfg.pitch_max, cfg.pitch_max)
    return cameras.camera_label(yaw, pitch)


def random_grey(n: int, g: torch.Generator) -> Tensor:
    """Per-sample flat background colours in [-1, 1] ([N, 3, 1, 1]): black (the generator's own empty colour,
    and the SynthHeads benchmark's) for a third, otherwise greys with a slight tint, as photos have."""
    level = torch.rand(n, 1, 1, 1, generator=g) * 1.8 - 1.0
    tint = (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 0.2
    black = torch.rand(n, 1, 1, 1, generator=g) < 1 / 3
    return torch.where(black, torch.full_like(level, -1.0), (level + tint).clamp(-1, 1)).expand(n, 3, 1, 1)


def _render_identities(args: tuple[list[int], EncoderTrainConfig, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Worker: render identities ``ids`` at their seeded views (one torch thread)."""
    from sym3dinv.synthheads.head import Head
    from sym3dinv.synthheads.params import sample_head_params
    from sym3dinv.synthheads.tracer import render_head

    ids, cfg, resolution = args
    torch.set_num_threads(1)
    rgbs, masks, angles = [], [], []
    for i in ids:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + i)
        yaw, pitch = sample_angles(cfg, cfg.synthheads_views, g)
        r = render_head(Head(sample_head_params(i)), cameras.camera_label(yaw, pitch), resolution,
                        background=(0.0, 0.0, 0.0))
        rgbs.append(r.rgb.half())
        masks.append(r.mask.half())
        angles.append(torch.stack((yaw, pitch), -1))
    return torch.stack(rgbs), torch.stack(masks), torch.stack(angles)


def build_bank(cfg: EncoderTrainConfig, z: Tensor, resolution: int, path: Path | None = None,
               workers: int = 1) -> SynthHeadsBank:
    """Render (or read back from ``path``) the SynthHeads share: identities 0..N-1 of ``z``."""
    from safetensors.torch import load_file, save_file

    n = min(cfg.synthheads_identities, int(z.shape[0]))
    if path is not None and path.is_file():
        t = load_file(str(path))
        if t["rgb"].shape[0] == n and t["rgb"].shape[-1] == resolution and t["rgb"].shape[1] == cfg.synthheads_views:
            return SynthHeadsBank(t["rgb"], t["mask"], t["yaw_pitch"], z[:n])
        log.info("SynthHeads bank %s has another shape; rendering it again", path)
    chunks = [list(range(k, n, max(1, workers))) for k in range(max(1, workers))]
    jobs = [(c, cfg, resolution) for c in chunks if c]
    if workers > 1:
        with mp.get_context("spawn").Pool(len(jobs)) as pool:
            parts = pool.map(_render_identities, jobs)
    else:
        parts = [_render_identities(j) for j in jobs]
    order = torch.tensor([i for c in chunks if c for i in c]).argsort()
    rgb, mask, yp = (torch.cat([p[k] for p in parts])[order] for k in range(3))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"rgb": rgb.contiguous(), "mask": mask.contiguous(), "yaw_pitch": yp.contiguous()}, str(path))
    return SynthHeadsBank(rgb, mask, yp, z[:n])


class SampleSource:
    """Draws :class:`Batch` es for step ``k`` from the generator (frozen) and the optional SynthHeads bank."""

    def __init__(self, G: torch.nn.Module, cfg: EncoderTrainConfig, bank: SynthHeadsBank | None = None) -> None:
        self.G, self.cfg, self.bank = G, cfg, bank
        self.n_synth = 0 if bank is None or bank.identities == 0 else round(cfg.batch * cfg.synthheads_fraction)

    def rng(self, step: int) -> torch.Generator:
        """The one random stream of step ``step``."""
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + 7919 * step + 1)

    @torch.no_grad()
    def batch(self, step: int, images: bool = True) -> Batch:
        """Step ``step``'s batch; without ``images`` the novel-view targets are not rendered (W+ phase)."""
        cfg, G, g = self.cfg, self.G, self.rng(step)
        n_gen = cfg.batch - self.n_synth
        z = torch.randn(n_gen, G.z_dim, generator=g)
        yaw, pitch = sample_angles(cfg, n_gen, g)
        bg = random_grey(cfg.batch, g)
        c_in = cameras.camera_label(yaw, pitch)
        c_nv = novel_cameras(cfg, cfg.batch, g)
        ws = G.mapping(z, c_in, truncation_psi=cfg.truncation)
        inputs, targets, yps = [], [], [torch.stack((yaw, pitch), -1)]
        if n_gen:
            out = G.synthesis(ws, c_in, noise_mode="const", sampling="deterministic")
            img = out.image.clamp(-1, 1)
            alpha = F.interpolate(out.weight_sum, size=img.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
            inputs.append(img * alpha + bg[:n_gen] * (1 - alpha))
            targets.append(img)
        cams, all_ws = [c_in], [ws]
        if self.n_synth:
            assert self.bank is not None
            b = self.bank
            ids = torch.randint(0, b.identities, (self.n_synth,), generator=g)
            views = torch.randint(0, b.rgb.shape[1], (self.n_synth,), generator=g)
            rgb = b.rgb[ids, views].float() * 2 - 1
            mask = b.mask[ids, views].float()
            inputs.append(rgb * mask + bg[n_gen:] * (1 - mask))
            targets.append(rgb)
            yp = b.yaw_pitch[ids, views].float()
            yps.append(yp)
            cams.append(cameras.camera_label(yp[:, 0], yp[:, 1]))
            all_ws.append(G.mapping(b.z[ids], cams[-1], truncation_psi=1.0))
        ws_all = torch.cat(all_ws)
        novel = G.synthesis(ws_all, c_nv, noise_mode="const", sampling="deterministic").image.clamp(-1, 1) \
            if images else None
        return Batch(torch.cat(inputs), torch.cat(targets), torch.cat(cams), torch.cat(yps), ws_all, c_nv, novel)
