"""SynthHeads ground-truth attributes, and meters that read attributes back from rendered images.

Ground truth: :func:`gt_attributes` flattens :class:`~sym3dinv.synthheads.HeadParams` (every numeric field)
and adds perceptual summaries that a linear model can target: ``hair_lightness`` / ``skin_lightness``
(Rec. 601 luma of the albedo) and ``hair_redness`` (R - B of the hair albedo).

Meters (:func:`measure`) read four attributes from one frontal render (camera yaw 0, pitch 0 around
EG3D's pivot): colour from fixed regions, parting and width from geometry (the z-depth map).

- ``hair_lightness``: luma of the mean colour of a box on the crown (world x in [-0.08, 0.08], y in
  [0.19, 0.24]); every SynthHeads head has hair there (the hairline is at most 0.18).
- ``skin_lightness``: luma of the mean colour of two cheek boxes (x in +-[0.055, 0.085], y in
  [-0.045, -0.02]).
- ``parting_side``: mean world z over the subject's right half of the forehead (world x in [-0.10, -0.02], y in
  [0.10, 0.20]) minus the left half: a side parting sweeps a hair volume in front of one side.
- ``face_width``: half-width, in world units, of the surface that lies in front of the plane z = 0.02
  along the row y = -0.07 (between nose and mouth), from the z-depth map unprojected to world points.
  SynthHeads cuts hair off at z < 0 in front, so long hair falling beside the face does not count; the
  plane sits just in front of that cut. It reads the lower-face ellipsoid (plus jaw corners), i.e.
  ``HeadParams.face_width``.

:func:`validate_meters` renders world heads and correlates the meters with the ground truth (numbers
in docs/editing.md). The same function reads generator renders (``render_for_meter``), which is how the
edit tests measure what an edit changed. The embedded generator does not resolve face width (see
docs/editing.md), so that meter is only meaningful on world renders and for relative changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sym3dinv.eg3d_constants import RADIUS

if TYPE_CHECKING:
    import torch

    from sym3dinv.generator import TriPlaneGenerator

LUMA = np.array([0.299, 0.587, 0.114])
METERS: tuple[str, ...] = ("hair_lightness", "skin_lightness", "parting_side", "face_width")
"""Attributes :func:`measure` reads from a frontal render (same names as their ground truth)."""
DERIVED: tuple[str, ...] = ("hair_lightness", "hair_redness", "skin_lightness")

HAIR_BOX = (-0.08, 0.08, 0.19, 0.24, 0.10)  # x0, x1, y0, y1, z of the box's plane (world units)
CHEEK_BOXES = ((0.055, 0.085, -0.045, -0.02, 0.14), (-0.085, -0.055, -0.045, -0.02, 0.14))
PARTING_BOXES = ((-0.10, -0.02, 0.10, 0.20, 0.10), (0.02, 0.10, 0.10, 0.20, 0.10))  # subject's right, left
WIDTH_ROW_Y = -0.07
WIDTH_PLANE_Z = 0.02
WIDTH_SOFTNESS = 0.01  # world units over which a pixel goes from "behind" to "in front of" the plane


def gt_attributes(seed: int, asymmetry_rate: float = 0.5) -> dict[str, float]:
    """Every numeric ground-truth attribute of SynthHeads identity ``seed`` (bools as 0/1) + derived ones."""
    from sym3dinv.synthheads import sample_head_params

    p = sample_head_params(seed, asymmetry_rate)
    out = {k: float(v) for k, v in p.attributes().items() if k != "seed"}
    hair, skin = np.asarray(p.hair_colour), np.asarray(p.skin_tone)
    out["hair_lightness"] = float(hair @ LUMA)
    out["hair_redness"] = float(hair[0] - hair[2])
    out["skin_lightness"] = float(skin @ LUMA)
    return out


@lru_cache(maxsize=4)
def _frontal(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(camera label [25], ray directions [R, R, 3] in world) of the frontal meter camera."""
    from sym3dinv.cameras import camera_label, pixel_rays

    c = camera_label(0.0, 0.0).reshape(1, 25)
    _, dirs = pixel_rays(c, resolution)
    return c[0].numpy(), dirs[0].reshape(resolution, resolution, 3).numpy()


def frontal_camera() -> np.ndarray:
    """The 25-float EG3D label the meters expect (yaw 0, pitch 0, radius 2.7, FFHQ focal)."""
    return _frontal(8)[0].copy()


def _project(x: float, y: float, z: float, resolution: int) -> tuple[float, float]:
    """Pixel coordinates (column, row; continuous, pixel centres at +0.5) of a world point."""
    import torch

    from sym3dinv.cameras import world_to_pixel

    c = torch.from_numpy(_frontal(8)[0]).reshape(1, 25)
    uv, _ = world_to_pixel(torch.tensor([[[x, y, z]]], dtype=torch.float32), c)
    u, v = (uv[0, 0] * resolution).tolist()
    return u, v


def _box_mean(rgb: np.ndarray, box: tuple[float, float, float, float, float]) -> np.ndarray:
    r = rgb.shape[0]
    x0, x1, y0, y1, z = box
    u0, v0 = _project(x0, y1, z, r)
    u1, v1 = _project(x1, y0, z, r)
    i0, i1 = int(round(v0)), max(int(round(v1)), int(round(v0)) + 1)
    j0, j1 = int(round(u0)), max(int(round(u1)), int(round(u0)) + 1)
    return rgb[i0:i1, j0:j1].reshape(-1, 3).mean(0)


def _edge(score: np.ndarray, x: np.ndarray, start: int, step: int) -> float:
    """World x where ``score`` falls below 0.5 walking from ``start`` in direction ``step``."""
    n = len(score)
    j = start
    if score[j] < 0.5:  # start outside the surface: walk back toward the centre
        while 0 <= j - step < n and score[j] < 0.5:
            j -= step
        if score[j] < 0.5:
            return float(x[start])
    while 0 <= j + step < n and score[j + step] >= 0.5:
        j += step
    if not 0 <= j + step < n:
        return float(x[j])
    t = (score[j] - 0.5) / max(score[j] - score[j + step], 1e-6)
    dx = x[j] - x[j - step] if 0 <= j - step < n else 0.0  # the outer pixel's x is behind the plane
    return float(x[j] + t * dx)


def world_points(z_depth: np.ndarray) -> np.ndarray:
    """[R, R, 3] world points of a frontal z-depth map (the camera sits at (0, 0, 2.7) looking down -z)."""
    r = z_depth.shape[0]
    _, dirs = _frontal(r)
    dist = z_depth / np.maximum(-dirs[..., 2], 1e-6)  # z-depth -> distance along each ray
    return np.array([0.0, 0.0, RADIUS]) + dirs * dist[..., None]


def parting_side(z_depth: np.ndarray) -> float:
    """Mean world z over the forehead's right half minus its left half (world units; 0 = symmetric).

    A side parting sweeps a hair volume over the forehead on the side away from the parting, which
    moves the surface toward the camera there; the sign follows ``HeadParams.parting_side`` (+1 =
    parted on the subject's left, world +x, so the volume sits on the right, world -x).
    """
    r = z_depth.shape[0]
    pts = world_points(z_depth)
    means = []
    for x0, x1, y0, y1, z in PARTING_BOXES:
        u0, v0 = _project(x0, y1, z, r)
        u1, v1 = _project(x1, y0, z, r)
        means.append(float(pts[int(round(v0)):int(round(v1)), int(round(u0)):int(round(u1)), 2].mean()))
    return means[0] - means[1]


def face_width(z_depth: np.ndarray, alpha: np.ndarray | None = None) -> float:
    """Half-width (world units) of the surface in front of z = 0.02 on the row y = -0.07 (frontal view)."""
    r = z_depth.shape[0]
    pts = world_points(z_depth)
    _, v = _project(0.0, WIDTH_ROW_Y, 0.035, r)
    row = min(max(int(v), 0), r - 1)
    rows = range(max(row - (r // 64), 0), min(row + (r // 64) + 1, r))
    centre = r // 2
    halves = []
    for i in rows:
        score = np.clip((pts[i, :, 2] - WIDTH_PLANE_Z) / WIDTH_SOFTNESS + 0.5, 0.0, 1.0)
        if alpha is not None:
            score = score * (alpha[i] > 0.5)
        x = pts[i, :, 0]
        halves.append((_edge(score, x, centre, 1) - _edge(score, x, centre - 1, -1)) / 2)
    return float(np.mean(halves))


def measure(rgb: np.ndarray, z_depth: np.ndarray, alpha: np.ndarray | None = None) -> dict[str, float]:
    """The :data:`METERS` of one frontal render.

    ``rgb``: [H, W, 3] in [0, 1] (uint8 is scaled); ``z_depth``: [h, w] z-depth (any resolution; the
    generator's neural-rendering depth is fine); ``alpha``: optional [h, w] coverage (a head mask).
    """
    img = np.asarray(rgb, dtype=np.float64)
    if np.asarray(rgb).dtype == np.uint8:
        img = img / 255.0
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb must be [H, W, 3], got {img.shape}")
    hair = _box_mean(img, HAIR_BOX)
    skin = np.mean([_box_mean(img, b) for b in CHEEK_BOXES], axis=0)
    z = np.asarray(z_depth, dtype=np.float64)
    width = face_width(z, None if alpha is None else np.asarray(alpha))
    return {"hair_lightness": float(hair @ LUMA), "skin_lightness": float(skin @ LUMA),
            "parting_side": parting_side(z), "face_width": width}


# --- renders to measure -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MeterRender:
    """One frontal render for the meters (numpy, CPU)."""

    rgb: np.ndarray  # [H, W, 3] in [0, 1]
    z_depth: np.ndarray  # [h, w]
    alpha: np.ndarray | None  # [h, w] or None

    def measure(self) -> dict[str, float]:
        return measure(self.rgb, self.z_depth, self.alpha)


def render_world(seed: int, resolution: int = 128) -> MeterRender:
    """A SynthHeads world head at the meter camera, on black (the generator's empty colour)."""
    import torch

    from sym3dinv.synthheads import render_views

    c = torch.from_numpy(frontal_camera()).reshape(1, 25)
    r = render_views(seed, c, resolution, background=(0.0, 0.0, 0.0))
    return MeterRender(r.rgb[0].permute(1, 2, 0).numpy(), r.z_depth[0, 0].numpy(), r.mask[0, 0].numpy().astype(np.float32))


def render_for_meter(G: TriPlaneGenerator, ws: torch.Tensor, *, tensors: dict[str, torch.Tensor] | None = None,
                     neural_rendering_resolution: int = 64) -> list[MeterRender]:
    """Generator renders of ws ``[N, num_ws, w_dim]`` at the meter camera (depth at a finer neural
    resolution than training's 32 px, so the width meter resolves sub-centimetre changes)."""
    import torch

    from sym3dinv.cameras import ray_distance_to_z
    from sym3dinv.invert.render import synthesize

    c = torch.from_numpy(frontal_camera()).reshape(1, 25).to(ws.device, ws.dtype).expand(ws.shape[0], -1)
    with torch.no_grad():
        o = synthesize(G, ws, c, tensors=tensors, sampling="deterministic",
                       neural_rendering_resolution=neural_rendering_resolution)
        z = ray_distance_to_z(o.image_depth, c)
    rgb = ((o.image.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    return [MeterRender(rgb[i], z[i, 0].float().cpu().numpy(), None) for i in range(ws.shape[0])]


def validate_meters(seeds: Sequence[int], resolution: int = 128) -> dict[str, dict[str, float]]:
    """Pearson correlation (and n) of each meter with its ground truth on world renders of ``seeds``."""
    readings = [render_world(s, resolution).measure() for s in seeds]
    out = {}
    for name in METERS:
        m = np.array([r[name] for r in readings])
        g = np.array([gt_attributes(s)[name] for s in seeds])
        out[name] = {"pearson_r": float(np.corrcoef(m, g)[0, 1]), "n": len(seeds)}
    return out
