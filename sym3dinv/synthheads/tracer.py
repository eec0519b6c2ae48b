"""Render a SynthHeads head at EG3D camera labels: colour, z-depth, ray distance, part masks, landmarks.

Batched sphere tracing over all rays of all views (fixed step budget, finished rays dropped every step),
along ``cameras.pixel_rays`` so images, depth and labels share the generator's camera model. Shading is
Lambert + ambient with lights fixed in head coordinates on the x = 0 plane: a head without asymmetric
details then renders at ``mirror_label(c)`` as the horizontal flip of its render at ``c``.

Background pixels: colour ``background``, part ``BACKGROUND``, ray distance ``RAY_END`` and z-depth the
z of that far point (EG3D clamps its depth to the sample range the same way), so depth is finite.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int64
from torch import Tensor

from sym3dinv import cameras
from sym3dinv.eg3d_constants import RAY_END, RAY_START  # noqa: F401 - RAY_START/RAY_END re-exported for tests
from sym3dinv.synthheads.head import Head, Part

log = logging.getLogger(__name__)

BOUND_RADIUS = 0.62  # every head fits in this origin-centred sphere: rays start where they enter it
LIGHTS = ((0.0, 0.45, 1.0, 0.70), (0.0, 1.0, -0.3, 0.20))  # (direction xyz, intensity), all on x = 0
AMBIENT = 0.35
CHUNK = 8192  # points per field query: keeps the [P, K] temporaries in cache
FACE_PARTS = (Part.SKIN, Part.EYES, Part.BROWS, Part.NOSE, Part.LIPS)


@dataclass(frozen=True)
class HeadRender:
    """Ground truth of one head seen from V cameras at resolution R."""

    rgb: Float[Tensor, "v 3 r r"]
    """Colour in [0, 1]."""
    z_depth: Float[Tensor, "v 1 r r"]
    """Depth along the optical axis (background: z of the point at RAY_END)."""
    distance: Float[Tensor, "v 1 r r"]
    """Distance along each unit ray, EG3D's ``image_depth`` quantity (background: RAY_END)."""
    parts: Int64[Tensor, "v r r"]
    """:class:`Part` label per pixel."""
    labels: Float[Tensor, "v 25"]
    landmarks: Float[Tensor, "v l 2"]
    """2-D landmarks (names in ``head.LANDMARKS``) in pixel units: x right, y down, pixel centres at +0.5."""
    landmarks_visible: Bool[Tensor, "v l"]
    """Inside the image and not occluded (z-test against the rendered depth)."""

    @property
    def mask(self) -> Bool[Tensor, "v 1 r r"]:
        """Head pixels (anything but background)."""
        return (self.parts != Part.BACKGROUND)[:, None]

    @property
    def face_mask(self) -> Bool[Tensor, "v 1 r r"]:
        """Skin, eyes, brows, nose, lips (METHOD.md's face mask)."""
        return torch.isin(self.parts, torch.tensor([int(p) for p in FACE_PARTS]))[:, None]

    def as_eg3d(self) -> Float[Tensor, "v 3 r r"]:
        """Images in EG3D's [-1, 1] convention."""
        return self.rgb * 2 - 1


def _trace(head: Head, o: Tensor, d: Tensor, steps: int, eps: float) -> tuple[Tensor, Tensor]:
    """Sphere-trace rays; returns (ray distance t, hit) for every ray."""
    n = o.shape[0]
    # enter at the bounding sphere (or RAY_START): rays that miss it are background without a query
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - BOUND_RADIUS**2)
    t = torch.clamp(-b - torch.sqrt(disc.clamp_min(0)), min=RAY_START)
    hit = torch.zeros(n, dtype=torch.bool)
    idx = (disc > 0).nonzero().squeeze(1)
    t_far = torch.clamp(-b + torch.sqrt(disc.clamp_min(0)), max=RAY_END)
    for _ in range(steps):
        if idx.numel() == 0:
            break
        dist = torch.cat([head.sdf(o[c] + t[c, None] * d[c]) for c in idx.split(CHUNK)])
        t[idx] = t[idx] + dist * 0.95
        done = dist < eps
        hit[idx[done]] = True
        idx = idx[~done & (t[idx] < t_far[idx])]
    if idx.numel():  # rays out of budget (grazing): accept if close to the surface
        close = head.sdf(o[idx] + t[idx, None] * d[idx]).abs() < 20 * eps
        hit[idx[close]] = True
    return t, hit


@torch.no_grad()
def render_head(
    head: Head,
    labels: Float[Tensor, "v 25"],
    resolution: int,
    *,
    background: tuple[float, float, float] = (0.5, 0.5, 0.5),
    steps: int = 64,
    eps: float = 4e-4,
    antialias: int = 1,
) -> HeadRender:
    """Render one head at V camera labels (float32, CPU).

    ``antialias > 1`` averages the colour of an ``antialias``-times finer render (cost ~1 + antialias^2);
    depth, parts and landmarks always come from the pixel-centre rays, so they stay exact.
    """
    if labels.ndim != 2 or labels.shape[1] != 25:
        raise ValueError(f"labels must have shape [V, 25], got {tuple(labels.shape)}")
    if antialias > 1:
        fine = render_head(head, labels, resolution * antialias, background=background, steps=steps, eps=eps)
        base = render_head(head, labels, resolution, background=background, steps=steps, eps=eps)
        rgb = torch.nn.functional.avg_pool2d(fine.rgb, antialias)  # [V, 3, R, R]
        return dataclasses.replace(base, rgb=rgb)
    v, r = labels.shape[0], resolution
    origins, dirs = cameras.pixel_rays(labels.float(), r)  # [V, R*R, 3]
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    t, hit = _trace(head, o, d, steps, eps)
    t = torch.where(hit, t, torch.full_like(t, RAY_END))
    rgb = torch.tensor(background, dtype=torch.float32).repeat(o.shape[0], 1)
    parts = torch.zeros(o.shape[0], dtype=torch.int64)
    hi = hit.nonzero().squeeze(1)
    if hi.numel():
        ph = o[hi] + t[hi, None] * d[hi]
        _, part = head.query(ph)
        nrm = head.normals(ph)
        shade = torch.full((ph.shape[0],), AMBIENT)
        for lx, ly, lz, w in LIGHTS:
            light = torch.nn.functional.normalize(torch.tensor([lx, ly, lz]), dim=0)
            shade = shade + w * (nrm @ light).clamp_min(0)
        rgb[hi] = (head.colour(ph, part) * shade[:, None]).clamp(0, 1)
        parts[hi] = part
    distance = t.reshape(v, 1, r, r)
    z = cameras.ray_distance_to_z(distance, labels.float())
    uv, visible = project_landmarks(head, labels.float(), r, z)
    return HeadRender(
        rgb=rgb.reshape(v, r, r, 3).permute(0, 3, 1, 2).contiguous(),  # [V, 3, R, R]
        z_depth=z, distance=distance, parts=parts.reshape(v, r, r), labels=labels.float(),
        landmarks=uv, landmarks_visible=visible,
    )


def project_landmarks(
    head: Head, labels: Float[Tensor, "v 25"], resolution: int, z_depth: Float[Tensor, "v 1 r r"] | None = None,
    tol: float = 0.012,
) -> tuple[Float[Tensor, "v l 2"], Bool[Tensor, "v l"]]:
    """Landmarks in pixel units and visibility (inside the image; occlusion test when depth is given)."""
    v = labels.shape[0]
    pts = head.landmark_points[None].expand(v, -1, -1)
    uv, z = cameras.world_to_pixel(pts, labels)
    px = uv * resolution
    visible = (px >= 0).all(-1) & (px < resolution).all(-1)
    if z_depth is not None:  # visible if any pixel of the 3x3 neighbourhood sees (about) the same depth
        zp = torch.nn.functional.pad(z_depth, (1, 1, 1, 1), mode="replicate")
        ij = px.floor().long().clamp(0, resolution - 1)
        best = torch.full(z.shape, float("inf"))
        for di in range(3):
            for dj in range(3):
                zr = zp[torch.arange(v)[:, None], 0, ij[..., 1] + di, ij[..., 0] + dj]
                best = torch.minimum(best, (zr - z).abs())
        visible &= best < tol
    return px, visible

