"""EG3D camera labels: build, encode/decode, mirror, read angles, and cast pixel rays.

Convention (METHOD.md "Generator", fixtures/eg3d/README.md): a label is 25 floats, the row-major 4x4
cam2world matrix (OpenCV camera: x right, y down, z forward; world y up) followed by the row-major 3x3
intrinsics normalised by image size. Cameras sit on a sphere of radius 2.7 *around the world origin*
looking at the pivot (0, 0, 0.2), exactly as EG3D's ``LookAtPoseSampler`` places them.

Angles follow EG3D's sampler parameters: horizontal ``h = pi/2 + yaw`` and vertical ``v = pi/2 + pitch``,
where the polar angle is ``arccos(1 - 2 v / pi)`` (so ``pitch`` is close to, not equal to, the geometric
elevation). ``yaw > 0`` puts the camera on the world's +x side. Everything is batched over a leading N.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from sym3dinv.eg3d_constants import FFHQ_FOCAL, FOV_DEG, PIVOT, RADIUS  # the one definition; re-exported

MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))  # S in S @ cam2world @ S


def _as_batch(x: float | Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    t = torch.as_tensor(x, dtype=dtype)
    return t.reshape(-1)


def focal_from_fov(fov_deg: float = FOV_DEG) -> float:
    """Normalised focal from a field of view, with EG3D's constants (3.14159, 1.414) kept for parity."""
    return float(1.0 / (math.tan(fov_deg * 3.14159 / 360.0) * 1.414))


def intrinsics(focal: float = FFHQ_FOCAL, n: int = 1, dtype: torch.dtype = torch.float32) -> Float[Tensor, "n 3 3"]:
    """Normalised pinhole intrinsics (principal point 0.5, no skew)."""
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return k.expand(n, 3, 3).clone()


def lookat_cam2world(
    forward: Float[Tensor, "n 3"],
    origin: Float[Tensor, "n 3"],
) -> Float[Tensor, "n 4 4"]:
    """cam2world of cameras at ``origin`` looking along ``forward``, world +y up (EG3D's construction)."""
    f = torch.nn.functional.normalize(forward, dim=-1)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=f.dtype, device=f.device).expand_as(f)
    right = -torch.nn.functional.normalize(torch.linalg.cross(up, f, dim=-1), dim=-1)
    down = torch.nn.functional.normalize(torch.linalg.cross(f, right, dim=-1), dim=-1)
    m = torch.eye(4, dtype=f.dtype, device=f.device).repeat(f.shape[0], 1, 1)
    m[:, :3, :3] = torch.stack((right, down, f), dim=-1)  # columns = camera axes in world
    m[:, :3, 3] = origin
    return m


def orbit_origin(yaw: Tensor, pitch: Tensor, radius: float | Tensor = RADIUS) -> Float[Tensor, "n 3"]:
    """Camera position for sampler angles (EG3D's ``LookAtPoseSampler`` math, origin-centred sphere)."""
    h = math.pi / 2 + yaw
    v = torch.clamp(math.pi / 2 + pitch, 1e-5, math.pi - 1e-5)
    phi = torch.arccos(1 - 2 * v / math.pi)
    r = torch.as_tensor(radius, dtype=yaw.dtype)
    x = r * torch.sin(phi) * torch.cos(math.pi - h)
    y = r * torch.cos(phi)
    z = r * torch.sin(phi) * torch.sin(math.pi - h)
    return torch.stack((x, y, z), dim=-1)


def cam2world_from_angles(
    yaw: float | Tensor,
    pitch: float | Tensor = 0.0,
    radius: float | Tensor = RADIUS,
    lookat: tuple[float, float, float] = PIVOT,
    roll: float | Tensor = 0.0,
) -> Float[Tensor, "n 4 4"]:
    """cam2world for yaw/pitch (rad, sampler convention) and an optional roll about the view axis."""
    yaw_t, pitch_t = torch.broadcast_tensors(_as_batch(yaw), _as_batch(pitch))
    origin = orbit_origin(yaw_t, pitch_t, radius)
    target = torch.tensor(lookat, dtype=origin.dtype, device=origin.device).expand_as(origin)
    m = lookat_cam2world(target - origin, origin)
    roll_t = _as_batch(roll).expand(m.shape[0])
    if torch.any(roll_t != 0):
        c, s = torch.cos(roll_t), torch.sin(roll_t)
        rz = torch.eye(4, dtype=m.dtype, device=m.device).repeat(m.shape[0], 1, 1)
        rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1] = c, -s, s, c
        m = m @ rz  # rotate the camera about its own z (forward) axis
    return m


def encode_label(cam2world: Float[Tensor, "n 4 4"], K: Float[Tensor, "n 3 3"] | None = None) -> Float[Tensor, "n 25"]:
    """25-d label = row-major cam2world (16) + row-major normalised intrinsics (9)."""
    n = cam2world.shape[0]
    if K is None:
        K = intrinsics(n=n, dtype=cam2world.dtype)
    return torch.cat((cam2world.reshape(n, 16), K.reshape(n, 9)), dim=1)


def decode_label(c: Float[Tensor, "n 25"]) -> tuple[Float[Tensor, "n 4 4"], Float[Tensor, "n 3 3"]]:
    """Inverse of :func:`encode_label`."""
    if c.ndim != 2 or c.shape[1] != 25:
        raise ValueError(f"camera labels must have shape [N, 25], got {tuple(c.shape)}")
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3)


def camera_label(
    yaw: float | Tensor,
    pitch: float | Tensor = 0.0,
    radius: float | Tensor = RADIUS,
    focal: float = FFHQ_FOCAL,
    lookat: tuple[float, float, float] = PIVOT,
    roll: float | Tensor = 0.0,
) -> Float[Tensor, "n 25"]:
    """EG3D label of a look-at camera; ``camera_label(0, 0)`` is the frontal FFHQ camera."""
    m = cam2world_from_angles(yaw, pitch, radius, lookat, roll)
    return encode_label(m, intrinsics(focal, n=m.shape[0], dtype=m.dtype))


def mirror_label(c: Float[Tensor, "n 25"]) -> Float[Tensor, "n 25"]:
    """Label of the mirrored camera: S @ cam2world @ S with S = diag(-1, 1, 1, 1), intrinsics unchanged.

    Rendering a head at the mirrored camera shows the horizontally flipped image of its mirror twin,
    which is the symmetry prior's pseudo second view (METHOD.md).
    """
    m, K = decode_label(c)
    s = MIRROR.to(dtype=c.dtype, device=c.device)
    return encode_label(s @ m @ s, K)


def yaw_pitch_roll(c: Float[Tensor, "n 25"]) -> Float[Tensor, "n 3"]:
    """(yaw, pitch, roll) in radians, the inverse of :func:`camera_label`'s parameters.

    yaw/pitch come from the camera position (sampler convention); roll is the rotation of the camera's
    x axis about its viewing axis relative to an upright camera at the same place and direction.
    """
    m, _ = decode_label(c)
    origin = m[:, :3, 3]
    r = origin.norm(dim=-1).clamp_min(1e-8)
    phi = torch.arccos((origin[:, 1] / r).clamp(-1, 1))
    v = math.pi * (1 - torch.cos(phi)) / 2
    h = math.pi - torch.atan2(origin[:, 2], origin[:, 0])
    yaw = torch.remainder(h - math.pi / 2 + math.pi, 2 * math.pi) - math.pi
    pitch = v - math.pi / 2
    upright = lookat_cam2world(m[:, :3, 2], origin)
    x_actual, x_upright, fwd = m[:, :3, 0], upright[:, :3, 0], m[:, :3, 2]
    sin_r = (torch.linalg.cross(x_upright, x_actual, dim=-1) * fwd).sum(-1)
    cos_r = (x_upright * x_actual).sum(-1)
    roll = torch.atan2(sin_r, cos_r)
    return torch.stack((yaw, pitch, roll), dim=-1)


def pixel_rays(
    c: Float[Tensor, "n 25"], resolution: int
) -> tuple[Float[Tensor, "n hw 3"], Float[Tensor, "n hw 3"]]:
    """World-space ray origins and unit directions through pixel centres, row-major (y then x).

    Pixel (i, j) has normalised coordinates ((j + 0.5) / res, (i + 0.5) / res), as EG3D's RaySampler.
    """
    m, K = decode_label(c)
    n = c.shape[0]
    fx, fy, cx, cy, sk = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 0, 1]
    t = (torch.arange(resolution, dtype=c.dtype, device=c.device) + 0.5) / resolution
    v, u = torch.meshgrid(t, t, indexing="ij")  # v rows (y down), u columns (x right)
    u = u.reshape(1, -1)
    v = v.reshape(1, -1)
    y_lift = (v - cy[:, None]) / fy[:, None]
    x_lift = (u - cx[:, None] + cy[:, None] * sk[:, None] / fy[:, None] - sk[:, None] * v / fy[:, None]) / fx[:, None]
    pts_cam = torch.stack((x_lift, y_lift, torch.ones_like(x_lift), torch.ones_like(x_lift)), dim=-1)  # [N, HW, 4]
    pts_world = (m @ pts_cam.transpose(1, 2)).transpose(1, 2)[..., :3]
    origins = m[:, None, :3, 3].expand(n, pts_world.shape[1], 3)
    dirs = torch.nn.functional.normalize(pts_world - origins, dim=-1)
    return origins, dirs


def inverse_3x3(a: Float[Tensor, "n 3 3"]) -> Float[Tensor, "n 3 3"]:
    """Closed-form inverse (adjugate / determinant) of invertible 3x3 matrices.

    Elementwise arithmetic only: unlike ``torch.linalg.inv`` on CUDA it never reads back from the device,
    so the warps of a stage-2 step can be captured in a CUDA graph; for tiny matrices it is also cheaper.
    """
    r0, r1, r2 = a[:, 0], a[:, 1], a[:, 2]
    cols = torch.stack((torch.linalg.cross(r1, r2, dim=-1), torch.linalg.cross(r2, r0, dim=-1),
                        torch.linalg.cross(r0, r1, dim=-1)), dim=-1)  # adjugate
    det = (r0 * cols[..., 0]).sum(-1)
    return cols / det[:, None, None]


def inverse_affine(m: Float[Tensor, "n 4 4"]) -> Float[Tensor, "n 4 4"]:
    """Inverse of affine 4x4 transforms (last row 0 0 0 1), e.g. cam2world -> world2cam."""
    r_inv = inverse_3x3(m[:, :3, :3])
    out = torch.zeros_like(m)
    out[:, :3, :3] = r_inv
    out[:, :3, 3] = -(r_inv @ m[:, :3, 3:4])[..., 0]
    out[:, 3, 3] = 1.0
    return out


def world_to_pixel(
    points: Float[Tensor, "n p 3"], c: Float[Tensor, "n 25"]
) -> tuple[Float[Tensor, "n p 2"], Float[Tensor, "n p"]]:
    """Project world points: normalised pixel coordinates (u right, v down, in [0, 1]) and z-depth."""
    m, K = decode_label(c)
    w2c = inverse_affine(m)
    ph = torch.cat((points, torch.ones_like(points[..., :1])), dim=-1)
    pc = (w2c @ ph.transpose(1, 2)).transpose(1, 2)[..., :3]  # [N, P, 3] camera coords
    z = pc[..., 2]
    uvw = (K @ pc.transpose(1, 2)).transpose(1, 2)
    uv = uvw[..., :2] / uvw[..., 2:3].clamp_min(1e-8)
    return uv, z


def ray_distance_to_z(
    distance: Float[Tensor, "n 1 h w"], c: Float[Tensor, "n 25"]
) -> Float[Tensor, "n 1 h w"]:
    """Convert EG3D's expected ray distance (its ``image_depth``) to true z-depth along the optical axis."""
    n, _, h, w = distance.shape
    m, _ = decode_label(c)
    _, dirs = pixel_rays(c, h)
    cos = (dirs * m[:, None, :3, 2]).sum(-1)  # [N, HW] cosine to the optical axis
    return distance * cos.reshape(n, 1, h, w)
