"""Small camera corrections optimised with the stage-1 latent (``Stage1Config.refine_camera``).

The aligner's yaw/pitch are a few degrees off on real photos (docs/alignment.md), and a wrong camera
makes the mirror view, the warps and every novel view wrong. Stage 1 can fix part of it: it optimises
per-image corrections ``delta = (d_yaw, d_pitch, d_roll)`` (radians, EG3D's sampler angles) jointly with
ws, under a Gaussian prior ``(delta / sigma)^2`` that keeps them small, since a latent and a camera can
explain the same pixels and the prior decides in favour of the estimate.

A correction is applied as a rigid motion: the on-orbit cameras at the label's own angles and at the
corrected ones, ``L0`` and ``L1``, give ``G = L1 L0^-1``, and the corrected cam2world is ``G @ c2w``. For
an on-orbit label (every estimated one) that is exactly the corrected orbit camera; an off-orbit known
label keeps its offset from the orbit. Intrinsics are unchanged. The mirror camera of the symmetry
prior is built from the corrected camera every step, so it follows.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from sym3dinv.cameras import cam2world_from_angles, decode_label, encode_label, inverse_affine, yaw_pitch_roll


def _roll(m: Float[Tensor, "n 4 4"], roll: Float[Tensor, " n"]) -> Float[Tensor, "n 4 4"]:
    """``m`` rotated about its own viewing axis (differentiable in ``roll``, also at 0)."""
    c, s = torch.cos(roll), torch.sin(roll)
    z, o = torch.zeros_like(roll), torch.ones_like(roll)
    rz = torch.stack((c, -s, z, z, s, c, z, z, z, z, o, z, z, z, z, o), dim=-1).reshape(-1, 4, 4)
    return m @ rz


def _orbit(ypr: Float[Tensor, "n 3"], radius: Float[Tensor, " n"]) -> Float[Tensor, "n 4 4"]:
    return _roll(cam2world_from_angles(ypr[:, 0], ypr[:, 1], radius=radius), ypr[:, 2])


def refine_labels(c: Float[Tensor, "n 25"], delta: Float[Tensor, "n 3"]) -> Float[Tensor, "n 25"]:
    """Labels ``c`` corrected by ``delta`` (yaw, pitch, roll in radians); differentiable in ``delta``."""
    m, K = decode_label(c.detach())
    ypr = yaw_pitch_roll(c.detach())
    radius = m[:, :3, 3].norm(dim=-1)
    g = _orbit(ypr + delta, radius) @ inverse_affine(_orbit(ypr, radius))
    return encode_label(g @ m, K)


def camera_prior(delta: Float[Tensor, "n 3"], sigma_deg: float) -> Float[Tensor, " n"]:
    """``sum((delta / sigma)^2)`` per image: 1 for a one-sigma correction of one angle."""
    return (delta / math.radians(sigma_deg)).square().sum(-1)


def camera_error_deg(a: Float[Tensor, "n 25"], b: Float[Tensor, "n 25"]) -> Float[Tensor, "n 3"]:
    """|yaw, pitch, roll| differences in degrees (wrapped to [-180, 180))."""
    d = yaw_pitch_roll(a) - yaw_pitch_roll(b)
    return torch.rad2deg(torch.remainder(d + math.pi, 2 * math.pi) - math.pi).abs()
