"""The symmetry prior's pieces: yaw-dependent mirror weight, image/box flips (METHOD.md "Stage 1/2")."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import yaw_pitch_roll
from sym3dinv.config.invert import Stage1Config

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in normalised image coords, x right, y down
_S1 = Stage1Config()  # the method's mirror-weight numbers, written once in the config


def mirror_weight(yaw: float, threshold: float = _S1.mirror_yaw_threshold, sigma: float = _S1.mirror_sigma,
                  norm: float = _S1.mirror_norm) -> float:
    """w_m = 0 if |yaw| < threshold, else (1 - N(|yaw|; 0, sigma) / norm) / 2 (authors' implementation).

    N(0; 0, 0.29) = 1.376 < 2.7, so w_m lies in (0.245, 0.5): larger for more sideways faces.
    """
    a = abs(yaw)
    if a < threshold:
        return 0.0
    pdf = math.exp(-0.5 * (a / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
    return (1.0 - pdf / norm) / 2.0


def mirror_weights(c: Float[Tensor, "n 25"], threshold: float = _S1.mirror_yaw_threshold,
                   sigma: float = _S1.mirror_sigma, norm: float = _S1.mirror_norm) -> Float[Tensor, " n"]:
    """:func:`mirror_weight` of each camera's yaw."""
    yaws = yaw_pitch_roll(c)[:, 0].tolist()
    return torch.tensor([mirror_weight(y, threshold, sigma, norm) for y in yaws], dtype=c.dtype, device=c.device)


def flip(image: Float[Tensor, "*b c h w"]) -> Float[Tensor, "*b c h w"]:
    """Horizontal flip (the image seen by the mirrored camera)."""
    return torch.flip(image, dims=(-1,))


def flip_box(box: Box) -> Box:
    """The box's place in the horizontally flipped image."""
    x0, y0, x1, y1 = box
    return (1.0 - x1, y0, 1.0 - x0, y1)
