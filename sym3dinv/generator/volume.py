"""Tri-plane volume rendering as EG3D does it: rays, plane lookups, the OSG decoder, and the
importance renderer with MipNeRF-style compositing.

Two sampling modes. ``stochastic`` is EG3D-exact: it draws the stratified jitter with ``rand_like`` and
the importance samples with ``rand`` from the global CPU RNG (or an explicit ``torch.Generator``) in
that order, so renders after ``torch.manual_seed(s)`` match EG3D's. ``deterministic`` uses bin
midpoints and evenly spaced inverse-CDF samples: repeatable renders for inversion and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from sym3dinv.generator.networks import FullyConnectedLayer

Sampling = Literal["stochastic", "deterministic"]

# EG3D's plane axes: planes [[x,y,z]], [[x,z,y]], [[z,x,y]] projected with inverse(plane) -> the sampled
# 2-D coordinates are (x, y), (x, z) and (z, x). The third is EG3D's well-known quirk (meant as zy);
# it is kept exactly, since official weights were trained with it.
PLANE_COORDS = ((0, 1), (0, 2), (2, 0))


def generate_planes() -> Float[Tensor, "3 3 3"]:
    """EG3D's plane-axes matrices (kept for users and for the pickle's ``plane_axes`` attribute)."""
    return torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                         [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
                         [[0, 0, 1], [1, 0, 0], [0, 1, 0]]], dtype=torch.float32)


def sample_rays(c2w: Float[Tensor, "n 4 4"], K: Float[Tensor, "n 3 3"], resolution: int
                ) -> tuple[Float[Tensor, "n m 3"], Float[Tensor, "n m 3"]]:
    """Ray origins and unit directions through pixel centres, row-major (EG3D's RaySampler arithmetic)."""
    n, m = c2w.shape[0], resolution * resolution
    dev = c2w.device
    ar = torch.arange(resolution, dtype=torch.float32, device=dev)
    uv = torch.stack(torch.meshgrid(ar, ar, indexing="ij")) * (1.0 / resolution) + (0.5 / resolution)
    uv = uv.flip(0).reshape(2, -1).transpose(1, 0).unsqueeze(0).expand(n, m, 2)  # [N, M, (x, y)]
    fx, fy, cx, cy, sk = (K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None], K[:, 0, 1, None])
    x_cam, y_cam = uv[..., 0], uv[..., 1]
    z_cam = torch.ones((n, m), device=dev)
    x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx * z_cam
    y_lift = (y_cam - cy) / fy * z_cam
    cam_pts = torch.stack((x_lift, y_lift, z_cam, torch.ones_like(z_cam)), dim=-1)  # [N, M, 4]
    world = torch.bmm(c2w, cam_pts.permute(0, 2, 1)).permute(0, 2, 1)[:, :, :3]
    origins = c2w[:, :3, 3]
    dirs = F.normalize(world - origins[:, None, :], dim=2)
    return origins.unsqueeze(1).repeat(1, m, 1), dirs


def sample_from_planes(planes: Float[Tensor, "n 3 c h w"], coords: Float[Tensor, "n m 3"], box_warp: float
                       ) -> Float[Tensor, "n 3 m c"]:
    """Bilinear features of each plane at the projected points; zeros outside the box."""
    n, p, c, h, w = planes.shape
    m = coords.shape[1]
    coords = (2 / box_warp) * coords
    grid = torch.stack([torch.stack((coords[..., a], coords[..., b]), dim=-1) for a, b in PLANE_COORDS], dim=1)  # [N, 3, M, 2]
    grid = grid.reshape(n * p, 1, m, 2)
    out = F.grid_sample(planes.reshape(n * p, c, h, w), grid.float(), mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # [N*3, C, 1, M]
    return out.permute(0, 3, 2, 1).reshape(n, p, m, c)


def sample_planes_mean(planes: Float[Tensor, "n 3 c h w"], coords: Float[Tensor, "n m 3"], box_warp: float
                       ) -> Float[Tensor, "n m c"]:
    """Plane-averaged features (what the decoder consumes) without EG3D's [N, 3, M, C] transpose copy.

    The mean runs over the same three values per element as EG3D's, so results are identical; the
    returned tensor is a transposed view, which the decoder's matmul reads without copying for N = 1.
    """
    n, p, c, h, w = planes.shape
    m = coords.shape[1]
    coords = (2 / box_warp) * coords
    grid = torch.stack([torch.stack((coords[..., a], coords[..., b]), dim=-1) for a, b in PLANE_COORDS], dim=1).reshape(n * p, 1, m, 2)
    out = F.grid_sample(planes.reshape(n * p, c, h, w), grid.float(), mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # [N*3, C, 1, M]
    return out.view(n, p, c, m).mean(1).transpose(1, 2)  # [N, M, C]


@dataclass(frozen=True)
class DecodedSamples:
    """Decoder outputs at query points: raw density (before softplus(x - 1)) and 32 features in [0, 1]."""

    sigma: Float[Tensor, "n m 1"]
    rgb: Float[Tensor, "n m f"]

    def __getitem__(self, key: str) -> Tensor:  # EG3D scripts index these as a dict
        return getattr(self, key)


class OSGDecoder(nn.Module):
    """Tiny MLP on plane-averaged features: FC 32->64, softplus, FC 64->1+32."""

    def __init__(self, n_features: int, decoder_lr_mul: float = 1.0, decoder_output_dim: int = 32) -> None:
        super().__init__()
        self.hidden_dim = 64
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, self.hidden_dim, lr_multiplier=decoder_lr_mul),
            nn.Softplus(),
            FullyConnectedLayer(self.hidden_dim, 1 + decoder_output_dim, lr_multiplier=decoder_lr_mul),
        )

    def forward(self, features: Float[Tensor, "n 3 m c"] | Float[Tensor, "n m c"]) -> DecodedSamples:
        """Decode per-plane features [N, 3, M, C] (EG3D's layout) or already plane-averaged [N, M, C]."""
        x = features.mean(1) if features.ndim == 4 else features
        n, m, c = x.shape
        x = self.net(x.reshape(n * m, c)).reshape(n, m, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001  # MipNeRF's widened sigmoid
        return DecodedSamples(sigma=x[..., 0:1], rgb=rgb)


def ray_march(colors: Tensor, densities: Tensor, depths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """MipNeRF-style compositing between consecutive samples (EG3D's MipRayMarcher2, softplus mode).

    Returns features in [-1, 1], the expected ray distance clamped to the sampled range, and weights.
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    densities_mid = F.softplus(densities_mid - 1)  # the -1 bias makes the volume start nearly empty
    alpha = 1 - torch.exp(-densities_mid * deltas)
    alpha_shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
    weights = alpha * torch.cumprod(alpha_shifted, -2)[:, :, :-1]
    rgb = torch.sum(weights * colors_mid, -2)
    depth = torch.sum(weights * depths_mid, -2) / weights.sum(2)
    depth = torch.nan_to_num(depth, float("inf"))
    depth = torch.clamp(depth, torch.min(depths), torch.max(depths))
    return rgb * 2 - 1, depth, weights


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, u: Tensor, eps: float = 1e-5) -> Tensor:
    """Inverse-CDF sampling of ``n_samples`` depths per ray from piecewise-constant ``weights``."""
    n_rays, n_bins = weights.shape
    weights = weights + eps
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp_min(inds - 1, 0)
    above = torch.clamp_max(inds, n_bins)
    inds_sampled = torch.stack([below, above], -1).view(n_rays, 2 * n_samples)
    cdf_g = torch.gather(cdf, 1, inds_sampled).view(n_rays, n_samples, 2)
    bins_g = torch.gather(bins, 1, inds_sampled).view(n_rays, n_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def _rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:  # EG3D draws from the global RNG: keep exactly its calls for parity
        return torch.rand(shape, device=like.device, dtype=like.dtype)
    return torch.rand(shape, device=like.device, dtype=like.dtype, generator=generator)


@dataclass(frozen=True)
class RenderOutput:
    """Composited per-ray outputs of the importance renderer."""

    features: Float[Tensor, "n m f"]  # in [-1, 1]
    depth: Float[Tensor, "n m 1"]  # expected ray distance
    weight_sum: Float[Tensor, "n m 1"]  # opacity


def render_planes(
    planes: Float[Tensor, "n 3 c h w"],
    decoder: OSGDecoder,
    origins: Float[Tensor, "n m 3"],
    dirs: Float[Tensor, "n m 3"],
    *,
    ray_start: float,
    ray_end: float,
    depth_resolution: int,
    depth_resolution_importance: int,
    box_warp: float,
    sampling: Sampling = "stochastic",
    generator: torch.Generator | None = None,
) -> RenderOutput:
    """Two-pass (stratified, then importance) volume rendering of tri-planes along given rays."""
    n, m, _ = origins.shape
    s = depth_resolution
    base = torch.linspace(ray_start, ray_end, s, device=origins.device).reshape(1, 1, s, 1).repeat(n, m, 1, 1)
    delta = (ray_end - ray_start) / (s - 1)
    if sampling == "stochastic":
        depths_coarse = base + _rand(base.shape, base, generator) * delta
    else:
        depths_coarse = base + 0.5 * delta  # bin midpoints: the jitter's expectation
    pts = (origins.unsqueeze(-2) + depths_coarse * dirs.unsqueeze(-2)).reshape(n, -1, 3)
    coarse = decoder(sample_planes_mean(planes, pts, box_warp))
    colors_c = coarse.rgb.reshape(n, m, s, -1)
    dens_c = coarse.sigma.reshape(n, m, s, 1)
    k = depth_resolution_importance
    if k <= 0:
        rgb, depth, weights = ray_march(colors_c, dens_c, depths_coarse)
        return RenderOutput(rgb, depth, weights.sum(2))
    with torch.no_grad():
        _, _, weights = ray_march(colors_c, dens_c, depths_coarse)
        z = depths_coarse.reshape(n * m, s)
        w = weights.reshape(n * m, -1)
        w = F.max_pool1d(w.unsqueeze(1).float(), 2, 1, padding=1)  # smooth the weights (EG3D)
        w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
        z_mid = 0.5 * (z[:, :-1] + z[:, 1:])
        if sampling == "stochastic":
            u = _rand((n * m, k), z, generator)
        else:
            u = torch.linspace(0, 1, k, device=z.device).expand(n * m, k)
        depths_fine = sample_pdf(z_mid, w[:, 1:-1], k, u).detach().reshape(n, m, k, 1)
    pts = (origins.unsqueeze(-2) + depths_fine * dirs.unsqueeze(-2)).reshape(n, -1, 3)
    fine = decoder(sample_planes_mean(planes, pts, box_warp))
    colors_f = fine.rgb.reshape(n, m, k, -1)
    dens_f = fine.sigma.reshape(n, m, k, 1)
    all_depths = torch.cat([depths_coarse, depths_fine], dim=-2)
    all_colors = torch.cat([colors_c, colors_f], dim=-2)
    all_dens = torch.cat([dens_c, dens_f], dim=-2)
    _, idx = torch.sort(all_depths, dim=-2)
    all_depths = torch.gather(all_depths, -2, idx)
    all_colors = torch.gather(all_colors, -2, idx.expand(-1, -1, -1, all_colors.shape[-1]))
    all_dens = torch.gather(all_dens, -2, idx)
    rgb, depth, weights = ray_march(all_colors, all_dens, all_depths)
    return RenderOutput(rgb, depth, weights.sum(2))
