"""Depth-guided backward warping between cameras (METHOD.md "Stage 2", depth-guided warping).

For every pixel of the *target* view we know its z-depth; unprojecting it gives a world point, which is
projected into the *source* camera, where the source image is sampled bilinearly. A pixel is valid when
its point lands inside the source frame, in front of the source camera, inside the optional source mask,
and (when the source depth is given) when its z in the source camera agrees with the source depth there
within ``tolerance`` (the visibility test: otherwise the source saw something else in front of it).

Depths are true z-depths along the optical axis. EG3D renders expected *ray distance*; convert it with
:func:`sym3dinv.cameras.ray_distance_to_z` first (the authors' code skips this, which bends off-axis rays).
Depth maps and images may have different resolutions: pixel centres are always ``(j + 0.5) / size`` in
normalised coordinates, so each map is sampled in its own grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from sym3dinv.cameras import decode_label, inverse_3x3, world_to_pixel


@dataclass(frozen=True)
class WarpResult:
    """Backward-warped source image in the target view."""

    image: Float[Tensor, "n c h w"]  # source sampled at each target pixel (0 where invalid)
    valid: Bool[Tensor, "n 1 h w"]  # in frame & in front & in mask & depth-consistent
    source_uv: Float[Tensor, "n h w 2"]  # where each target pixel lands in the source, normalised [0, 1]
    source_z: Float[Tensor, "n 1 h w"]  # the target pixel's point's z-depth in the source camera
    points: Float[Tensor, "n h w 3"]  # the unprojected world points


def unproject(depth_z: Float[Tensor, "n 1 h w"], c: Float[Tensor, "n 25"]) -> Float[Tensor, "n h w 3"]:
    """World points of every pixel centre at its z-depth: cam2world @ (z * K^-1 [u, v, 1])."""
    n, _, h, w = depth_z.shape
    m, K = decode_label(c)
    dt, dev = depth_z.dtype, depth_z.device
    v = (torch.arange(h, dtype=dt, device=dev) + 0.5) / h
    u = (torch.arange(w, dtype=dt, device=dev) + 0.5) / w
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    pix = torch.stack((uu, vv, torch.ones_like(uu)), dim=-1).reshape(1, h * w, 3)  # [1, HW, 3]
    rays = (inverse_3x3(K.to(dt)) @ pix.transpose(1, 2)).transpose(1, 2)  # [N, HW, 3], z = 1
    pts_cam = rays * depth_z.reshape(n, h * w, 1)
    pts = (m[:, :3, :3].to(dt) @ pts_cam.transpose(1, 2)).transpose(1, 2) + m[:, None, :3, 3].to(dt)
    return pts.reshape(n, h, w, 3)


def _sample(img: Tensor, uv: Tensor) -> Tensor:
    """Bilinear sample at normalised uv (pixel centres at (j + 0.5) / size <=> align_corners=False)."""
    return F.grid_sample(img, uv * 2.0 - 1.0, mode="bilinear", padding_mode="border", align_corners=False)


def backward_warp(
    source_image: Float[Tensor, "n c hs ws"],
    source_camera: Float[Tensor, "n 25"],
    target_depth_z: Float[Tensor, "n 1 hd wd"],
    target_camera: Float[Tensor, "n 25"],
    *,
    source_depth_z: Float[Tensor, "n 1 hz wz"] | None = None,
    source_mask: Float[Tensor, "n 1 hm wm"] | Bool[Tensor, "n 1 hm wm"] | None = None,
    tolerance: float = 0.05,
    resolution: int | None = None,
) -> WarpResult:
    """Warp ``source_image`` into the target camera using the target's z-depth.

    ``resolution``: output side; the target depth is bilinearly resized to it (default: the depth's own
    resolution). Depth-consistency uses ``|z_src(point) - source_depth_z(uv)| < tolerance``.
    """
    n = source_image.shape[0]
    for name, t in (("source_camera", source_camera), ("target_camera", target_camera)):
        if t.shape != (n, 25):
            raise ValueError(f"{name} must be [{n}, 25], got {tuple(t.shape)}")
    if target_depth_z.ndim != 4 or target_depth_z.shape[:2] != (n, 1):
        raise ValueError(f"target_depth_z must be [{n}, 1, H, W], got {tuple(target_depth_z.shape)}")
    depth = target_depth_z
    if resolution is not None and depth.shape[-1] != resolution:
        depth = F.interpolate(depth, size=(resolution, resolution), mode="bilinear", align_corners=False)
    _, _, h, w = depth.shape
    pts = unproject(depth, target_camera)  # [N, H, W, 3]
    uv, z = world_to_pixel(pts.reshape(n, h * w, 3), source_camera)
    uv = uv.reshape(n, h, w, 2)
    z = z.reshape(n, 1, h, w)
    valid = (uv >= 0).all(-1) & (uv <= 1).all(-1)  # [N, H, W] inside the source frame
    valid = valid.unsqueeze(1) & (z > 0)
    if source_depth_z is not None:
        zs = _sample(source_depth_z.to(z.dtype), uv)
        valid = valid & ((z - zs).abs() < tolerance)
    if source_mask is not None:
        valid = valid & (_sample(source_mask.to(z.dtype), uv) > 0.5)
    image = _sample(source_image, uv.to(source_image.dtype)) * valid.to(source_image.dtype)
    return WarpResult(image=image, valid=valid, source_uv=uv, source_z=z, points=pts)
