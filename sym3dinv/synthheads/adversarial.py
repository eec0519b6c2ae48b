"""A small residual image discriminator with StyleGAN2's losses, for the generator's sharpening phase.

Reconstruction losses (MSE, even LPIPS) are minimised by the conditional mean, which is blurred; a
critic that tells rendered from real SynthHeads images penalises exactly that blur. The losses are the
non-saturating logistic loss and the lazy R1 penalty on real images (Mescheder et al. 2018; StyleGAN2
applies it every 16 steps scaled by the interval), which keep a small D stable without tuning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ResBlock(nn.Module):
    """Two 3x3 convs then average-pool to half resolution, with a 1x1 pooled skip (scaled by 1/sqrt 2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class Discriminator(nn.Module):
    """Image -> one real/fake logit per image; ``channels`` gives the width after each halving."""

    def __init__(self, resolution: int = 128, channels: tuple[int, ...] = (16, 32, 64, 128, 128)) -> None:
        super().__init__()
        final = resolution >> len(channels)
        if final < 1 or final << len(channels) != resolution:
            raise ValueError(f"{len(channels)} halvings do not fit resolution {resolution}")
        self.stem = nn.Conv2d(3, channels[0], 1)
        widths = (channels[0], *channels)
        self.blocks = nn.Sequential(*(_ResBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.head = nn.Linear(channels[-1] * final * final, 1)

    def forward(self, img: Tensor) -> Tensor:
        x = self.blocks(F.leaky_relu(self.stem(img), 0.2))
        return self.head(x.flatten(1))[:, 0]


def g_loss(logits_fake: Tensor) -> Tensor:
    """Non-saturating generator loss: softplus(-D(G(z)))."""
    return F.softplus(-logits_fake).mean()


def d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Logistic discriminator loss: softplus(D(G(z))) + softplus(-D(x))."""
    return F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()


def r1_penalty(D: nn.Module, real: Tensor) -> Tensor:
    """Squared gradient norm of D at real images, per image, averaged (the R1 regulariser)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
