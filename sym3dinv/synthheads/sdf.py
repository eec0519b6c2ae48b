"""Signed-distance primitives in torch, vectorised over K primitives of one kind.

Every function takes points ``[P, 3]`` and returns distances ``[P, K]`` so a whole head is a handful of
tensor ops per query. The ellipsoid distance is the usual approximation k0 (k0 - 1) / k1, which is exact
for spheres and close to the true distance near the surface, so relaxed sphere tracing stays safe.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> Float[Tensor, "3 3"]:
    """Rotation matrix R = Rz @ Ry @ Rx (radians); columns are the primitive's local axes in world."""
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    r_x = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    r_y = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    r_z = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    return (r_z @ r_y @ r_x).float()


def to_local(
    p: Float[Tensor, "p 3"], centres: Float[Tensor, "k 3"], rot: Float[Tensor, "k 3 3"]
) -> Float[Tensor, "p k 3"]:
    """Coordinates of points in each primitive's frame: R^T (p - c)."""
    d = p[:, None, :] - centres[None]  # [P, K, 3]
    return torch.einsum("pkj,kji->pki", d, rot)


class EllipsoidSet:
    """K rotated ellipsoids as two quadratic forms, so all K distances cost two small matmuls.

    With local axes R (columns), radii r and u = (x - c) R / r, the approximate distance is
    k0 (k0 - 1) / k1 with k0 = |u| and k1 = |u / r|. Both squared norms are quadratics in x, so they are
    one product of the 10 monomials of x with a [10, K] coefficient matrix: no [P, K, 3] tensors.
    """

    def __init__(self, centres: Float[Tensor, "k 3"], rot: Float[Tensor, "k 3 3"], radii: Float[Tensor, "k 3"]) -> None:
        c, rot, r = centres.double(), rot.double(), radii.double()
        self.k = c.shape[0]
        self.coef0 = self._quadratic(c, rot / r[:, None, :]).float()  # |u|^2
        self.coef1 = self._quadratic(c, rot / (r * r)[:, None, :]).float()  # |u / r|^2

    @staticmethod
    def _quadratic(c: Tensor, a: Tensor) -> Tensor:
        m = a @ a.transpose(1, 2)  # [K, 3, 3]: |(x - c) A|^2 = (x - c) M (x - c)^T
        lin = -(c[:, None, :] @ m)[:, 0]  # [K, 3]
        const = (c[:, None, :] @ m @ c[:, :, None])[:, 0, 0]
        return torch.stack((m[:, 0, 0], m[:, 1, 1], m[:, 2, 2], m[:, 0, 1], m[:, 0, 2], m[:, 1, 2],
                            lin[:, 0], lin[:, 1], lin[:, 2], const), 0)  # [10, K]

    @staticmethod
    def monomials(x: Float[Tensor, "p 3"]) -> Float[Tensor, "p 10"]:
        a, b, c = x[:, 0], x[:, 1], x[:, 2]
        return torch.stack((a * a, b * b, c * c, 2 * a * b, 2 * a * c, 2 * b * c, 2 * a, 2 * b, 2 * c,
                            torch.ones_like(a)), -1)

    def __call__(self, x: Float[Tensor, "p 3"], mono: Tensor | None = None) -> Float[Tensor, "p k"]:
        f = self.monomials(x) if mono is None else mono
        k0 = (f @ self.coef0).clamp_min(0).sqrt()
        k1 = (f @ self.coef1).clamp_min(1e-18).sqrt()
        return k0 * (k0 - 1.0) / k1


def tori(q: Float[Tensor, "p k 3"], major: Float[Tensor, " k"], minor: Float[Tensor, " k"]) -> Float[Tensor, "p k"]:
    """Exact distance to tori lying in the local xy-plane (axis = local z)."""
    ring = torch.sqrt(q[..., 0] ** 2 + q[..., 1] ** 2) - major
    return torch.sqrt(ring * ring + q[..., 2] ** 2) - minor


def capsules(
    p: Float[Tensor, "p 3"], a: Float[Tensor, "k 3"], b: Float[Tensor, "k 3"], radius: Float[Tensor, " k"]
) -> Float[Tensor, "p k"]:
    """Exact distance to capsules (segments a-b thickened by radius)."""
    pa = p[:, None, :] - a[None]
    ba = (b - a)[None]
    h = ((pa * ba).sum(-1) / (ba * ba).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (pa - ba * h[..., None]).norm(dim=-1) - radius


def smooth_union(d: Float[Tensor, "p k"], k: float) -> Float[Tensor, " p"]:
    """Soft minimum over the K columns (log-sum-exp); order-independent, so mirrored heads stay exact."""
    return -k * torch.logsumexp(-d / k, dim=-1)
