"""Stage 1's trainable latents: one W+ pivot per image, or one shared pivot for a group of photos.

Independent images (:func:`sym3dinv.invert.invert_batch`) each own a pivot, noise buffers and a random
stream. A group (:func:`sym3dinv.invert.invert_group`) shares one pivot, one set of noise buffers and one
stream, with optional small per-photo offsets on the last ws. Stage 1's loop is the same for both: it asks
this object for the step's per-image ws and the noise tensors of a render. A group of one is exactly one
independent image (same start, same random draws), so ``invert_group`` of one photo equals ``invert``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import camera_label
from sym3dinv.config.invert import InversionConfig
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.generator.latents import mean_w

NOISE_PREFIX = "backbone.synthesis."


def noise_buffers(G: TriPlaneGenerator) -> dict[str, Tensor]:
    """The backbone's ``noise_const`` buffers (the super-resolution's are unused: its noise mode is none)."""
    return {NOISE_PREFIX + k: b for k, b in G.backbone.synthesis.named_buffers() if k.endswith("noise_const")}


@dataclass
class Latents:
    """The trainable state of a stage-1 batch: ``p`` pivots (p = n images, or 1 for a group), their noise
    buffers, w_std and random streams, and (groups only) per-photo offsets of the last ws."""

    base: Float[Tensor, "p k w"]
    noise: dict[str, Tensor]  # state-dict name -> [p, 1, r, r]
    w_std: Float[Tensor, " p"]
    streams: list[torch.Generator]  # one per pivot
    n: int  # images (photos) rendered per view
    offsets: Float[Tensor, "n l w"] | None = None
    offset_weight: float = 0.0

    @property
    def shared(self) -> bool:
        return self.base.shape[0] == 1 and self.n > 1

    @property
    def distinct(self) -> int:
        """How many different latents a view's n renders hold (their tri-planes are computed that often)."""
        return 1 if self.shared and self.offsets is None else self.n

    def params(self) -> list[Tensor]:
        """What Adam optimises at stage 1's ``lr``."""
        return [self.base, *([self.offsets] if self.offsets is not None else []), *self.noise.values()]

    def step_ws(self, scale: float) -> Float[Tensor, "n k w"]:
        """This step's ws of every image: the pivot plus the projector's decaying noise (``scale`` x w_std,
        drawn from each pivot's own stream) plus the image's offset."""
        base = self.base
        eps = torch.stack([torch.randn(base.shape[1:], generator=g, device=g.device) for g in self.streams])
        ws = base + eps.to(base.device) * (self.w_std * scale).reshape(-1, 1, 1)
        return self._per_image(ws)

    def final_ws(self) -> Float[Tensor, "n k w"]:
        """Each image's pivot after optimisation (a group: the shared pivot plus the photo's offset)."""
        return self._per_image(self.base).detach()

    def _per_image(self, ws: Tensor) -> Tensor:
        if self.shared:
            ws = ws.expand(self.n, -1, -1)
        if self.offsets is not None:
            k = self.offsets.shape[1]
            ws = ws + F.pad(self.offsets, (0, 0, ws.shape[1] - k, 0))
        return ws

    def render_noise(self, batch: int, planes_batch: int | None) -> dict[str, Tensor]:
        """The noise tensors of a render of ``batch`` latents (copies of the first ``planes_batch`` when the
        tri-planes are shared, :func:`sym3dinv.invert.render.synthesize`)."""
        want = planes_batch or batch
        out = {}
        for k, v in self.noise.items():  # [p, 1, r, r]
            out[k] = v if v.shape[0] == want else (v.expand(want, -1, -1, -1) if v.shape[0] == 1
                                                     else v.repeat(want // v.shape[0], 1, 1, 1))
        return out

    def prior(self) -> Float[Tensor, " n"]:
        """Per-photo prior on the offsets: weight x mean squared offset in units of w_std (0 without)."""
        if self.offsets is None:
            return self.base.new_zeros(self.n)
        return self.offset_weight * self.offsets.square().mean(dim=(1, 2)) / self.w_std.mean().square()

    @torch.no_grad()
    def normalise_noise(self) -> None:
        """Projector: keep the noise buffers zero-mean, unit-variance per pivot."""
        for v in self.noise.values():
            v -= v.mean(dim=(1, 2, 3), keepdim=True)
            v /= v.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()


def start_latents(G: TriPlaneGenerator, cameras: Float[Tensor, "n 25"], config: InversionConfig,
                  generator: torch.Generator, init_ws: Tensor | None = None, *, shared: bool = False) -> Latents:
    """The start of a batch: W+ at the camera-conditioned mean w (or ``init_ws``, an encoder's answer),
    normalised copies of the noise buffers (when optimised), w_std and the random streams.

    ``shared``: one pivot for all n cameras (a group of photos of one person): the mean over the photos of
    their starts, one noise set, one stream, and per-photo offsets of the last ``group.offset_layers`` ws
    (zero at the start) when there are two photos or more. Independent: image i's start and random draws
    are what it would get alone.
    """
    cfg = config.stage1
    n, dev = cameras.shape[0], cameras.device
    c_avg = cameras if cfg.w_avg_camera == "input" else camera_label(0.0, 0.0).to(dev).expand(n, -1)
    w_avg, w_std = mean_w(G, c_avg, cfg.w_avg_samples, generator)
    if init_ws is not None and init_ws.shape != (n, G.num_ws, G.w_dim):
        raise ValueError(f"init_ws must be [{n}, {G.num_ws}, {G.w_dim}], got {tuple(init_ws.shape)}")
    start = w_avg.repeat(1, G.num_ws, 1) if init_ws is None else init_ws.detach().to(dev, w_avg.dtype)
    p = 1 if shared else n
    if shared:
        start, w_std = start.mean(0, keepdim=True), w_std.mean().reshape(1)
    # per-pivot copies of the generator's state: image i's w noise is what it would draw alone
    streams = [generator] + [torch.Generator(device=generator.device).set_state(generator.get_state())
                             for _ in range(p - 1)]
    noise: dict[str, Tensor] = {}
    if cfg.optimize_noise:
        for k, b in noise_buffers(G).items():  # per-pivot copies [p, 1, r, r], normalised like the projector
            x = b.detach().reshape(1, 1, *b.shape).repeat(p, 1, 1, 1)
            mean, std = x.mean(dim=(1, 2, 3), keepdim=True), x.std(dim=(1, 2, 3), keepdim=True)
            noise[k] = ((x - mean) / std).requires_grad_(True)
    layers = min(config.group.offset_layers, G.num_ws) if shared and n > 1 else 0
    offsets = torch.zeros(n, layers, G.w_dim, device=dev, requires_grad=True) if layers else None
    return Latents(start.clone().requires_grad_(True), noise, w_std, streams, n, offsets,
                   config.group.offset_weight)
