"""The camera-conditioned mean w: the projector's start (stage 1) and the point encoder offsets add to."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn


@torch.no_grad()
def mean_w(G: nn.Module, c: Float[Tensor, "n 25"], samples: int,
           generator: torch.Generator) -> tuple[Float[Tensor, "n 1 w"], Float[Tensor, " n"]]:
    """Camera-conditioned mean w and the projector's scalar w_std (RMS distance to the mean) per camera.

    Every camera maps the same ``samples`` latents (one draw from ``generator``), so an image's mean does
    not depend on which other images share its batch. A generator that ignores its camera
    (``c_gen_conditioning_zero``) maps them once: the same values, without one mapping per camera."""
    means, stds = [], []
    z = torch.randn(samples, G.z_dim, generator=generator, device=generator.device).to(c.device)
    unconditioned = bool(G.rendering_kwargs.get("c_gen_conditioning_zero"))
    for i in range(c.shape[0]):
        if i and (unconditioned or torch.equal(c[i], c[i - 1])):  # same latents, same (unused) camera: same mean
            means.append(means[-1])
            stds.append(stds[-1])
            continue
        w = G.mapping(z, c[i:i + 1].expand(samples, -1))[:, :1]  # [S, 1, W]
        mu = w.mean(0, keepdim=True)
        means.append(mu)
        stds.append(((w - mu).square().sum() / samples).sqrt())
    return torch.cat(means), torch.stack(stds)
