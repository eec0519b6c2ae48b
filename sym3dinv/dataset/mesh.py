"""Meshes from a generator's density field: density grid -> marching cubes -> vertex colours -> PLY/GLB.

As EG3D's ``extract_shapes.py``: the raw density (the decoder's sigma, before the renderer's
``softplus(sigma - 1)``) is sampled on a regular grid filling the cube of side ``box_warp`` centred at
the world origin, and the surface is the level set ``sigma = threshold`` (EG3D: 10 on 512^3; here the
resolution is configurable). The grid is padded with empty space so the surface closes at the box
boundary (a closed, watertight-by-construction surface), and by default only the largest connected
component is kept (floaters dropped). Vertex colours are the decoder's first three feature channels
at the vertex, which are exactly what the volume renderer composites into ``image_raw`` (the
view-independent colour at that point of the field).

Coordinates are world coordinates of the generator (y up, the face looking towards +z), the same
frame as every camera in ``dataset.json`` / ``transforms.json``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sym3dinv.config.dataset import MESH_FORMATS
from sym3dinv.generator import TriPlaneGenerator
from sym3dinv.generator.volume import sample_planes_mean


@dataclass(frozen=True)
class DensityGrid:
    """Raw density on ``resolution^3`` grid points; point (i, j, k) = origin + voxel * (i, j, k) in (x, y, z)."""

    sigma: np.ndarray  # [N, N, N] float32, indexed [x, y, z]
    origin: tuple[float, float, float]
    voxel: float


def grid_points(resolution: int, box: float) -> tuple[Tensor, tuple[float, float, float], float]:
    """``resolution^3`` points spanning ``[-box/2, box/2]^3`` (corners included), x-major order."""
    t = torch.linspace(-box / 2, box / 2, resolution)
    x, y, z = torch.meshgrid(t, t, t, indexing="ij")
    pts = torch.stack((x, y, z), dim=-1).reshape(-1, 3)
    return pts, (-box / 2, -box / 2, -box / 2), box / (resolution - 1)


def _decode(G: TriPlaneGenerator, planes: Tensor, pts: Tensor) -> tuple[Tensor, Tensor]:
    out = G.decoder(sample_planes_mean(planes, pts[None], G.rendering_kwargs["box_warp"]))
    return out.sigma[0, :, 0], out.rgb[0, :, :3]


def density_grid(
    G: TriPlaneGenerator,
    ws: np.ndarray | Tensor,
    *,
    tensors: Mapping[str, Tensor] | None = None,
    resolution: int = 128,
    box: float | None = None,
    chunk: int = 1 << 18,
    planes: Tensor | None = None,
) -> DensityGrid:
    """Raw sigma of the (tuned) generator on a grid, in chunks of ``chunk`` points.

    This is ``G.sample_mixed(points, dirs, ws)['sigma']`` with the tri-planes computed once instead of
    once per chunk (or given: ``render.compute_planes``); ``box`` defaults to the generator's ``box_warp``
    (the tri-plane cube).
    """
    from sym3dinv.dataset.render import call_tuned, compute_planes

    dev = next(G.parameters()).device
    planes = planes if planes is not None else compute_planes(G, ws, tensors)
    box = float(box if box is not None else G.rendering_kwargs["box_warp"])
    pts, origin, voxel = grid_points(resolution, box)

    def run(G_: TriPlaneGenerator) -> Tensor:
        return torch.cat([_decode(G_, planes, pts[s:s + chunk].to(dev))[0] for s in range(0, pts.shape[0], chunk)])

    with torch.inference_mode():
        sigma = call_tuned(G, tensors, run)
    return DensityGrid(sigma.reshape(resolution, resolution, resolution).float().cpu().numpy(), origin, voxel)


def mesh_from_density(
    sigma: np.ndarray,
    threshold: float,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    voxel: float = 1.0,
    *,
    keep_largest: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a density grid (high inside) at ``threshold``: vertices [V, 3] (world), faces [F, 3].

    The grid is padded by one cell of "empty" so surfaces touching the box are closed; faces are wound
    so normals point outwards (towards lower density). Raises ``ValueError`` if nothing crosses the level.
    """
    import trimesh
    from skimage import measure

    s = np.asarray(sigma, dtype=np.float32)
    if s.ndim != 3:
        raise ValueError(f"density grid must be 3-D, got shape {s.shape}")
    finite_min = float(np.nanmin(s)) if np.isfinite(s).any() else threshold - 1.0
    empty = min(finite_min, threshold) - 1.0
    s = np.nan_to_num(s, nan=empty, posinf=threshold + 1.0, neginf=empty)
    if not s.max() > threshold:
        raise ValueError(f"no surface: density range [{s.min():.3g}, {s.max():.3g}] does not cross {threshold}")
    padded = np.pad(s, 1, mode="constant", constant_values=empty)
    verts, faces, _, _ = measure.marching_cubes(padded, level=threshold, spacing=(voxel, voxel, voxel),
                                                gradient_direction="descent")
    verts = verts - voxel + np.asarray(origin, dtype=np.float64)  # undo the padding offset
    mesh = trimesh.Trimesh(verts, faces, process=True)
    if keep_largest and len(mesh.faces):
        parts = mesh.split(only_watertight=False)
        if len(parts) > 1:
            mesh = max(parts, key=lambda m: len(m.faces))
    if len(mesh.faces) and mesh.volume < 0:  # keep outward normals whatever skimage's winding
        mesh.invert()
    return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.int64)


def vertex_colors(
    G: TriPlaneGenerator,
    ws: np.ndarray | Tensor,
    vertices: np.ndarray,
    *,
    tensors: Mapping[str, Tensor] | None = None,
    chunk: int = 1 << 18,
    planes: Tensor | None = None,
) -> np.ndarray:
    """uint8 RGB per vertex: the decoder's first three feature channels there (``image_raw``'s colour)."""
    from sym3dinv.dataset.render import call_tuned, compute_planes

    dev = next(G.parameters()).device
    pts = torch.from_numpy(np.asarray(vertices, dtype=np.float32))
    if len(pts) == 0:
        return np.zeros((0, 3), np.uint8)
    planes = planes if planes is not None else compute_planes(G, ws, tensors)

    def run(G_: TriPlaneGenerator) -> Tensor:
        return torch.cat([_decode(G_, planes, pts[s:s + chunk].to(dev))[1] for s in range(0, pts.shape[0], chunk)])

    with torch.inference_mode():
        rgb = call_tuned(G, tensors, run)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@dataclass(frozen=True)
class MeshStats:
    vertices: int
    faces: int
    watertight: bool
    boundary_edge_fraction: float


def mesh_stats(vertices: np.ndarray, faces: np.ndarray) -> MeshStats:
    """Size and closedness: fraction of edges used by exactly one face (0 for a closed surface)."""
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0:
        return MeshStats(len(vertices), 0, False, 1.0)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    boundary = float((counts == 1).sum()) / len(counts)
    return MeshStats(len(vertices), len(f), bool(boundary == 0.0 and (counts == 2).all()), boundary)


def extract_mesh(
    G: TriPlaneGenerator,
    ws: np.ndarray | Tensor,
    *,
    tensors: Mapping[str, Tensor] | None = None,
    resolution: int = 128,
    threshold: float = 10.0,
    keep_largest: bool = True,
    planes: Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [V, 3] float32 world, faces [F, 3] int64, colours [V, 3] uint8) of the tuned generator."""
    from sym3dinv.dataset.render import compute_planes

    planes = planes if planes is not None else compute_planes(G, ws, tensors)
    grid = density_grid(G, ws, tensors=tensors, resolution=resolution, planes=planes)
    verts, faces = mesh_from_density(grid.sigma, threshold, grid.origin, grid.voxel, keep_largest=keep_largest)
    return verts, faces, vertex_colors(G, ws, verts, tensors=tensors, planes=planes)


def mesh_bytes(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None, fmt: str) -> bytes:
    """Encode a coloured mesh as binary PLY or GLB with trimesh."""
    import trimesh

    if fmt not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; use one of {MESH_FORMATS}")
    vc = None if colors is None else np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=vc, process=False)
    if fmt == "ply":
        return mesh.export(file_type="ply", encoding="binary")
    buf = io.BytesIO()
    mesh.export(buf, file_type="glb")
    return buf.getvalue()



def depth_map(vertices: np.ndarray, faces: np.ndarray, label: np.ndarray, resolution: int) -> np.ndarray:
    """z-depth of the first surface hit by the ray through each pixel centre of an EG3D camera (inf = miss).

    A z-buffer rasteriser, exact for a pinhole camera: each triangle is projected with the label's
    cam2world/intrinsics, every pixel centre (j + 0.5, i + 0.5) inside it gets the perspective-correct
    depth (1/z interpolated linearly in screen space), and the nearest one is kept, which is what a
    ray cast through the pixel centres returns. Triangles behind the camera are skipped.
    """
    lab = np.asarray(label, np.float64).reshape(25)
    c2w, K = lab[:16].reshape(4, 4), lab[16:].reshape(3, 3)
    w2c = np.linalg.inv(c2w)
    v = np.asarray(vertices, np.float64)
    pc = v @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    uvw = pc @ K.T
    with np.errstate(divide="ignore", invalid="ignore"):
        px = uvw[:, :2] / uvw[:, 2:3] * resolution  # continuous pixel coords, centre of (i, j) at (j + .5, i + .5)
    f = np.asarray(faces, np.int64)
    f = f[(z[f] > 1e-6).all(axis=1)]
    zbuf = np.full(resolution * resolution, np.inf)
    if len(f) == 0:
        return zbuf.reshape(resolution, resolution)
    p0, p1, p2 = px[f[:, 0]], px[f[:, 1]], px[f[:, 2]]
    lo = np.floor(np.minimum(np.minimum(p0, p1), p2) - 0.5).astype(np.int64) + 1  # first centre >= min
    hi = np.floor(np.maximum(np.maximum(p0, p1), p2) - 0.5).astype(np.int64)  # last centre <= max
    lo = np.clip(lo, 0, resolution - 1)
    hi = np.clip(hi, -1, resolution - 1)
    span = np.maximum(hi - lo + 1, 0)
    keep = (span > 0).all(axis=1)
    f, p0, p1, p2, lo, span = f[keep], p0[keep], p1[keep], p2[keep], lo[keep], span[keep]
    area = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])
    ok = np.abs(area) > 1e-12
    f, p0, p1, p2, lo, span, area = f[ok], p0[ok], p1[ok], p2[ok], lo[ok], span[ok], area[ok]
    inv_z = 1.0 / z[f]  # [F, 3]
    for size in np.unique(np.maximum(span[:, 0], span[:, 1])):  # group by bbox size: vectorised per group
        g = np.flatnonzero(np.maximum(span[:, 0], span[:, 1]) == size)
        for start in range(0, len(g), max(1, (1 << 22) // int(size * size))):
            idx = g[start:start + max(1, (1 << 22) // int(size * size))]
            oy, ox = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
            cx = lo[idx, 0, None] + ox.reshape(1, -1)  # [n, size^2] pixel columns
            cy = lo[idx, 1, None] + oy.reshape(1, -1)
            inside_box = (cx < lo[idx, 0, None] + span[idx, 0, None]) & (cy < lo[idx, 1, None] + span[idx, 1, None])
            qx, qy = cx + 0.5, cy + 0.5
            a0, a1, a2 = p0[idx], p1[idx], p2[idx]
            w0 = ((a1[:, 0, None] - qx) * (a2[:, 1, None] - qy) - (a2[:, 0, None] - qx) * (a1[:, 1, None] - qy)) / area[idx, None]
            w1 = ((a2[:, 0, None] - qx) * (a0[:, 1, None] - qy) - (a0[:, 0, None] - qx) * (a2[:, 1, None] - qy)) / area[idx, None]
            w2 = 1.0 - w0 - w1
            eps = -1e-9
            inside = inside_box & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
            iz = w0 * inv_z[idx, 0, None] + w1 * inv_z[idx, 1, None] + w2 * inv_z[idx, 2, None]
            pix = (cy * resolution + cx)[inside]
            np.minimum.at(zbuf, pix, 1.0 / iz[inside])
    return zbuf.reshape(resolution, resolution)
