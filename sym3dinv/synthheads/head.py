"""A SynthHeads head as signed-distance and colour fields: ``Head.sdf``, ``Head.query``, ``Head.colour``.

Built from :class:`HeadParams`. Skin pieces (skull, face, cheeks, jaw, chin, neck, ears, nose, lips, brows)
are one soft union so they blend like flesh; eyes, hair and accessories are hard unions on top. The part
at a surface point is the group that is nearest there and, inside the skin group, the nearest primitive,
so masks come straight from the geometry. Every left/right pair is built as the exact mirror of its twin
(x -> -x, rotations conjugated by diag(-1, 1, 1)), so a head without asymmetric details is mirror-exact.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from sym3dinv.synthheads import sdf as S
from sym3dinv.synthheads.params import HeadParams


class Part(enum.IntEnum):
    """Mask labels (uint8 in the saved masks)."""

    BACKGROUND = 0
    SKIN = 1
    EYES = 2
    BROWS = 3
    NOSE = 4
    LIPS = 5
    HAIR = 6
    GLASSES = 7
    EARRING = 8


LANDMARKS: tuple[str, ...] = (
    "eye_right_outer", "eye_right_inner", "eye_left_inner", "eye_left_outer", "nose_tip",
    "mouth_right", "mouth_left", "chin", *(f"outline_{i:02d}" for i in range(9)),
)
"""Landmark names; 'right' is the subject's right (world -x). outline_00 is at the subject's right temple,
outline_04 the chin bottom, outline_08 the left temple."""
LANDMARK_PARTS: tuple[Part, ...] = (Part.EYES,) * 4 + (Part.NOSE, Part.LIPS, Part.LIPS, Part.SKIN) + (Part.SKIN,) * 9
LANDMARK_MIRROR: tuple[int, ...] = (3, 2, 1, 0, 4, 6, 5, 7, 16, 15, 14, 13, 12, 11, 10, 9, 8)
"""Index of each landmark's mirror twin (for flipped images)."""

SKIN_BLEND = 0.010  # soft-union radius of the skin group, world units
HAIR_BLEND = 0.020
SCLERA = (0.93, 0.91, 0.88)
GLASSES_RGB = (0.10, 0.10, 0.12)
EARRING_RGB = (0.95, 0.78, 0.25)


@dataclass
class _Builder:
    """Collects primitives; ``pair`` adds a +x primitive and its exact mirror at -x."""

    centres: list[list[float]] = field(default_factory=list)
    radii: list[list[float]] = field(default_factory=list)
    rots: list[Tensor] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)

    def add(self, c: tuple[float, float, float], r: tuple[float, float, float], part: Part,
            angles: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        self.centres.append(list(c))
        self.radii.append(list(r))
        self.rots.append(S.rotation(*angles))
        self.parts.append(int(part))

    def pair(self, c: tuple[float, float, float], r: tuple[float, float, float], part: Part,
             angles: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        self.add(c, r, part, angles)
        self.add((-c[0], c[1], c[2]), r, part, (angles[0], -angles[1], -angles[2]))

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (torch.tensor(self.centres, dtype=torch.float32), torch.stack(self.rots),
                torch.tensor(self.radii, dtype=torch.float32), torch.tensor(self.parts, dtype=torch.int64))


def _base_skin(p: HeadParams) -> _Builder:
    b = _Builder()
    b.add((0.0, 0.07, -0.03), (p.skull_width, 0.20, 0.21), Part.SKIN)
    b.add((0.0, -0.04, 0.035), (p.face_width, p.face_length, 0.16), Part.SKIN)
    b.pair((0.07, -0.015, 0.105), (0.055, 0.05, 0.06), Part.SKIN)  # cheeks
    b.pair((p.jaw_width, -0.115, 0.045), (0.045, 0.05, 0.08), Part.SKIN, (0.0, 0.0, 0.3))  # jaw corners
    b.add((0.0, -0.165, 0.11), (0.042, 0.035, 0.04), Part.SKIN)  # chin
    b.add((0.0, -0.33, -0.04), (0.08, 0.24, 0.085), Part.SKIN)  # neck
    b.pair((p.skull_width - 0.005, 0.015, -0.03), (0.018, p.ear_size, 0.028), Part.SKIN, (0.0, -0.35, 0.0))  # ears
    return b


def _surface_z(b: _Builder, x: float, y: float, k: float = SKIN_BLEND) -> tuple[float, float]:
    """Front-most z of the soft-unioned builder surface at (x, y), and its slope dz/dx there."""
    c, rot, r, _ = b.tensors()
    ell = S.EllipsoidSet(c, rot, r)

    def f(pts: Tensor) -> Tensor:
        return S.smooth_union(ell(pts), k)

    zs = torch.linspace(0.45, -0.2, 1301)
    out = []
    for dx in (0.0, 0.004):
        pts = torch.stack((torch.full_like(zs, x + dx), torch.full_like(zs, y), zs), -1)
        v = f(pts)
        inside = (v < 0).nonzero()
        i = max(int(inside[0]) if len(inside) else len(zs) - 1, 1)
        w = float(v[i - 1] / (v[i - 1] - v[i]))  # linear interpolation of the crossing on a 0.5 mm grid
        out.append(float(zs[i - 1] + w * (zs[i] - zs[i - 1])))
    return out[0], (out[1] - out[0]) / 0.004


class Head:
    """Signed distance + part + colour of one identity; all queries are batched over points (float32)."""

    def __init__(self, params: HeadParams) -> None:
        self.params = p = params
        b = _base_skin(p)
        # features sit on the base skin surface, oriented along it (rotation about y follows the slope)
        ex, ey = p.eye_spacing, p.eye_height
        z_eye, s_eye = _surface_z(b, ex, ey)
        z_brow, s_brow = _surface_z(b, ex + 0.004, ey + p.brow_height)
        z_nose, _ = _surface_z(b, 0.0, ey - 0.01)
        z_mouth, s_mouth = _surface_z(b, 0.0, -0.11)
        z_cheek, _ = _surface_z(b, 0.075, -0.035)
        self._z_cheek = z_cheek
        # nose: bridge, tip, nostrils
        nl, nw, npro = p.nose_length, p.nose_width, p.nose_protrusion
        b.add((0.0, ey - 0.01 - nl * 0.45, z_nose + npro * 0.25), (nw * 0.45, nl * 0.55, npro * 0.45), Part.NOSE,
              (-0.35, 0.0, 0.0))
        b.add((0.0, ey - 0.01 - nl, z_nose + npro * 0.7), (nw * 0.7, nw * 0.65, nw * 0.7), Part.NOSE)
        b.pair((nw * 0.7, ey - 0.01 - nl - 0.002, z_nose + npro * 0.3), (nw * 0.5, nw * 0.45, nw * 0.6), Part.NOSE)
        # lips (upper, lower), slightly proud of the mouth surface
        lt = p.lip_thickness
        y_mouth = -0.11
        b.add((0.0, y_mouth + lt * 0.7, z_mouth + 0.002), (p.mouth_width, lt, 0.012), Part.LIPS)
        b.add((0.0, y_mouth - lt * 0.9, z_mouth + 0.0), (p.mouth_width * 0.85, lt * 1.1, 0.012), Part.LIPS)
        self._mouth = (y_mouth, z_mouth)
        # brows (one may be raised: an asymmetric detail)
        by = ey + p.brow_height
        brow_r = (0.032, p.brow_thickness, 0.008)
        ang = (0.0, -math.atan(s_brow), -p.brow_tilt)
        for side in (1, -1):
            raise_ = max(0.0, p.brow_raise * side)
            b.add((side * (ex + 0.004), by + raise_, z_brow + 0.001), brow_r, Part.BROWS,
                  (ang[0], side * ang[1], side * ang[2]))
        self.skin_c, self.skin_rot, self.skin_r, self.skin_part = b.tensors()
        # eyes: hard-unioned almonds that protrude a few millimetres from the skin
        e = _Builder()
        e.pair((ex, ey, z_eye - 0.006), (p.eye_size, 0.0105, 0.012), Part.EYES, (0.0, -math.atan(s_eye), 0.0))
        self.eye_c, self.eye_rot, self.eye_r, _ = e.tensors()
        self._build_hair(p)
        self._build_accessories(p, ex, ey, z_eye)
        # one affine map for every ellipsoid: columns [skin | eyes | hair]
        self._k = (len(self.skin_c), len(self.eye_c), len(self.hair_c))
        self._ell = S.EllipsoidSet(torch.cat((self.skin_c, self.eye_c, self.hair_c)),
                                   torch.cat((self.skin_rot, self.eye_rot, self.hair_rot)),
                                   torch.cat((self.skin_r, self.eye_r, self.hair_r)))
        self.landmark_points = self._landmarks(ex, ey, z_eye, s_eye)

    # ---- construction helpers -------------------------------------------------------------------
    def _build_hair(self, p: HeadParams) -> None:
        h = _Builder()
        v = p.hair_volume
        h.add((0.0, 0.085, -0.035), (p.skull_width + v + 0.012, 0.205 + v, 0.215 + v), Part.HAIR)
        if p.hair_length > 0:  # hair falling at the back and sides
            h.add((0.0, 0.0 - p.hair_length * 0.5, -0.09), (p.skull_width + v, 0.12 + p.hair_length * 0.5, 0.15),
                  Part.HAIR)
        if p.parting_side != 0:  # swept volume on the side away from the parting
            s = -p.parting_side
            h.add((s * 0.07, 0.2 + v * 0.5, 0.06), (0.12, 0.05 + v * 0.5, 0.13), Part.HAIR, (0.0, 0.0, s * 0.35))
        if p.hair_uneven != 0:  # one side longer
            s = 1 if p.hair_uneven > 0 else -1
            ln = abs(p.hair_uneven)
            h.add((s * (p.skull_width - 0.005), 0.04 - ln * 0.5, -0.06), (0.05, 0.1 + ln * 0.5, 0.12), Part.HAIR)
        self.hair_c, self.hair_rot, self.hair_r, _ = h.tensors()
        # the face window cut out of the hair mass: in front of z_front and below the hairline
        self._hair_front = 0.0
        self._hairline = p.hairline
        self._hair_tilt = 0.25 * p.parting_side  # hairline rises on the parting side
        self._hair_bottom = 0.05 - 1.2 * p.hair_length  # short hair ends above the ears
        # uneven hair: the bottom cut drops by |hair_uneven| over 10 cm toward the longer side
        self._bottom_drop = abs(p.hair_uneven)
        self._bottom_side = 1.0 if p.hair_uneven > 0 else -1.0

    def _build_accessories(self, p: HeadParams, ex: float, ey: float, z_eye: float) -> None:
        tc, tr, tmaj, tmin, tpart = [], [], [], [], []
        ca, cb, crad = [], [], []
        if p.glasses:
            zg = z_eye + 0.028
            for s in (1, -1):
                tc.append([s * ex, ey, zg])
                tr.append(S.rotation())
                tmaj.append(p.eye_size + 0.014)
                tmin.append(0.0035)
                tpart.append(int(Part.GLASSES))
            inner = ex - p.eye_size - 0.014
            ca.append([inner, ey + 0.006, zg])
            cb.append([-inner, ey + 0.006, zg])
            crad.append(0.003)
            outer = ex + p.eye_size + 0.014
            for s in (1, -1):
                ca.append([s * outer, ey, zg])
                cb.append([s * (p.skull_width + 0.01), ey + 0.005, -0.03])
                crad.append(0.003)
        if p.earring_side != 0:
            s = p.earring_side
            tc.append([s * (p.skull_width + 0.01), 0.015 - p.ear_size - 0.012, -0.03])
            tr.append(S.rotation(0.0, math.pi / 2, 0.0))
            tmaj.append(0.011)
            tmin.append(0.0028)
            tpart.append(int(Part.EARRING))
        self.tor_c = torch.tensor(tc, dtype=torch.float32).reshape(-1, 3)
        self.tor_rot = torch.stack(tr) if tr else torch.zeros(0, 3, 3)
        self.tor_major = torch.tensor(tmaj, dtype=torch.float32)
        self.tor_minor = torch.tensor(tmin, dtype=torch.float32)
        self.tor_part = torch.tensor(tpart, dtype=torch.int64)
        self.cap_a = torch.tensor(ca, dtype=torch.float32).reshape(-1, 3)
        self.cap_b = torch.tensor(cb, dtype=torch.float32).reshape(-1, 3)
        self.cap_r = torch.tensor(crad, dtype=torch.float32)

    # ---- fields ---------------------------------------------------------------------------------
    def _groups(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(skin columns, skin, eyes, hair, accessory columns, accessories) distances at points x."""
        ks, ke, _ = self._k
        cols = self._ell(x)  # [P, K]
        skin_cols = cols[:, :ks]
        skin = S.smooth_union(skin_cols, SKIN_BLEND)
        eyes = cols[:, ks:ks + ke].amin(-1)
        hair_mass = S.smooth_union(cols[:, ks + ke:], HAIR_BLEND)
        # slanted cuts are divided by their gradient norm so they stay distance bounds for the tracer
        line = (x[:, 1] - (self._hairline + self._hair_tilt * x[:, 0])) / (1 + self._hair_tilt**2) ** 0.5
        window = torch.maximum(self._hair_front - x[:, 2], line)
        bottom = self._hair_bottom - self._bottom_drop * (self._bottom_side * x[:, 0] / 0.1 + 0.5).clamp(0, 1)
        slope = self._bottom_drop / 0.1
        window = torch.minimum(window, (x[:, 1] - bottom) / (1 + slope**2) ** 0.5)
        hair = torch.maximum(hair_mass, -window)
        cols = []
        if len(self.tor_c):
            cols.append(S.tori(S.to_local(x, self.tor_c, self.tor_rot), self.tor_major, self.tor_minor))
        if len(self.cap_a):
            cols.append(S.capsules(x, self.cap_a, self.cap_b, self.cap_r))
        acc_cols = torch.cat(cols, -1) if cols else x.new_full((x.shape[0], 1), 1e3)
        return skin_cols, skin, eyes, hair, acc_cols, acc_cols.amin(-1)

    def sdf(self, x: Float[Tensor, "p 3"]) -> Float[Tensor, " p"]:
        """Signed distance (a lower bound near the surface): negative inside the head."""
        _, skin, eyes, hair, _, acc = self._groups(x)
        return torch.minimum(torch.minimum(skin, eyes), torch.minimum(hair, acc))

    def query(self, x: Float[Tensor, "p 3"]) -> tuple[Float[Tensor, " p"], Int64[Tensor, " p"]]:
        """Signed distance and the :class:`Part` label of the nearest piece at each point."""
        skin_cols, skin, eyes, hair, acc_cols, acc = self._groups(x)
        groups = torch.stack((skin, eyes, hair, acc), -1)
        d, g = groups.min(-1)
        part = self.skin_part[skin_cols.argmin(-1)]
        part = torch.where(g == 1, int(Part.EYES), part)
        part = torch.where(g == 2, int(Part.HAIR), part)
        if len(self.tor_c) or len(self.cap_a):
            acc_part = torch.cat((self.tor_part, torch.full((len(self.cap_a),), int(Part.GLASSES))))
            part = torch.where(g == 3, acc_part[acc_cols.argmin(-1)], part)
        return d, part

    def normals(self, x: Float[Tensor, "p 3"], h: float = 5e-4) -> Float[Tensor, "p 3"]:
        """Unit normals by central differences (x-symmetric stencil keeps mirrored heads mirror-exact)."""
        offs = torch.eye(3, dtype=x.dtype) * h
        pts = torch.cat((x[:, None] + offs, x[:, None] - offs), 1).reshape(-1, 3)  # [P*6, 3]
        d = self.sdf(pts).reshape(-1, 2, 3)
        return torch.nn.functional.normalize(d[:, 0] - d[:, 1], dim=-1)

    def colour(self, x: Float[Tensor, "p 3"], part: Int64[Tensor, " p"]) -> Float[Tensor, "p 3"]:
        """Albedo at surface points with the given part labels."""
        p = self.params
        skin = torch.tensor(p.skin_tone).expand(x.shape[0], 3)
        cheek = torch.exp(-(((x[:, 0].abs() - 0.075) ** 2 + (x[:, 1] + 0.04) ** 2) / 0.0015))
        rgb = skin * (1 - 0.12 * cheek[:, None]) + torch.tensor([0.85, 0.35, 0.35]) * 0.12 * cheek[:, None]
        if p.mole_side != 0:
            m = torch.tensor([p.mole_side * 0.075 + p.mole_offset[0], -0.035 + p.mole_offset[1], self._z_cheek])
            spot = ((x - m).norm(dim=-1) < 0.0075)[:, None]
            rgb = torch.where(spot, torch.tensor([0.22, 0.13, 0.10]), rgb)
        rgb = torch.where((part == Part.NOSE)[:, None], skin * torch.tensor([1.0, 0.95, 0.95]), rgb)
        rgb = torch.where((part == Part.LIPS)[:, None], torch.tensor(p.lip_colour).expand_as(rgb), rgb)
        hair = torch.tensor(p.hair_colour)
        rgb = torch.where((part == Part.BROWS)[:, None], (hair * 0.8).expand_as(rgb), rgb)
        streak = 0.88 + 0.12 * torch.cos(70 * torch.atan2(x[:, 0], x[:, 1] + 0.1))
        rgb = torch.where((part == Part.HAIR)[:, None], hair * streak[:, None], rgb)
        q = S.to_local(x, self.eye_c, self.eye_rot)  # [P, 2, 3]
        qe = q[torch.arange(len(x)), (q.norm(dim=-1)).argmin(-1)]
        r = torch.sqrt(qe[:, 0] ** 2 + qe[:, 1] ** 2) / 0.0105
        eye = torch.where((r < 0.45)[:, None], torch.tensor([0.03, 0.03, 0.03]),
                          torch.where((r < 0.9)[:, None], torch.tensor(p.iris_colour), torch.tensor(SCLERA)))
        rgb = torch.where((part == Part.EYES)[:, None], eye, rgb)
        rgb = torch.where((part == Part.GLASSES)[:, None], torch.tensor(GLASSES_RGB), rgb)
        return torch.where((part == Part.EARRING)[:, None], torch.tensor(EARRING_RGB), rgb)

    # ---- landmarks ------------------------------------------------------------------------------
    def project_to_surface(self, x: Float[Tensor, "p 3"], iters: int = 8) -> Float[Tensor, "p 3"]:
        """Move points onto the zero level set along the field's gradient."""
        for _ in range(iters):
            x = x - self.sdf(x)[:, None] * self.normals(x)
        return x

    def _landmarks(self, ex: float, ey: float, z_eye: float, s_eye: float) -> Tensor:
        p = self.params
        cos, sin = math.cos(math.atan(s_eye)), math.sin(math.atan(s_eye))
        a = p.eye_size * 0.92
        eye = [(ex + a * cos, ey, z_eye - 0.006 + a * sin), (ex - a * cos, ey, z_eye - 0.006 - a * sin)]
        eye = [(-e[0], e[1], e[2]) for e in eye] + [eye[1], eye[0]]  # right outer, right inner, left inner, outer
        tip = (0.0, p.eye_height - 0.01 - p.nose_length, 0.4)
        y_m, z_m = self._mouth
        mouth = [(-p.mouth_width * 0.97, y_m, z_m), (p.mouth_width * 0.97, y_m, z_m)]
        chin = (0.0, -0.175, 0.4)
        pts = torch.tensor([*eye, tip, *mouth, chin], dtype=torch.float32)
        # tip and chin: walk in from the front so they land on the front-most surface
        for i in (4, 7):
            zs = torch.linspace(0.4, 0.0, 801)
            ray = torch.stack((torch.full_like(zs, float(pts[i, 0])), torch.full_like(zs, float(pts[i, 1])), zs), -1)
            pts[i, 2] = zs[int((self.sdf(ray) < 0).nonzero()[0])]
        outline = []
        for t in torch.linspace(-80, 80, 9).tolist():
            d = torch.tensor([math.sin(math.radians(t)), -math.cos(math.radians(t)), 0.0])
            o = torch.tensor([0.0, -0.02, 0.06])
            s = torch.linspace(0, 0.3, 601)[:, None]
            ray = o + s * d
            _, part = self.query(ray)
            out = ((self.sdf(ray) > 0) | (part == Part.HAIR)).nonzero()  # face edge, not the hair's
            outline.append((o + float(s[int(out[0])]) * d).tolist() if len(out) else o.tolist())
        pts = torch.cat((pts, torch.tensor(outline)), 0)
        return self.project_to_surface(pts)
