"""Head parameters: one frozen dataclass per identity, sampled deterministically from a seed.

The fields are the ground-truth attributes a later latent-editing feature regresses against (skin tone,
hair colour, face width, asymmetry flags, ...). Lengths are world units of EG3D's FFHQ frame (the head
fits in the tri-plane box [-0.5, 0.5]^3, face toward +z, y up). ``side`` fields are -1 (world -x, the
subject's right), +1 (world +x, the subject's left) or 0 (absent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]

# palettes are anchors; samples interpolate between neighbours so the attribute is continuous
_SKIN = np.array([[0.98, 0.84, 0.74], [0.93, 0.74, 0.60], [0.80, 0.60, 0.45], [0.62, 0.43, 0.30],
                  [0.42, 0.28, 0.20]])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.50, 0.33, 0.18], [0.85, 0.70, 0.45],
                  [0.60, 0.25, 0.10], [0.70, 0.70, 0.70]])
_IRIS = np.array([[0.25, 0.15, 0.08], [0.20, 0.35, 0.55], [0.30, 0.40, 0.25], [0.10, 0.08, 0.06]])


@dataclass(frozen=True)
class HeadParams:
    """Everything that defines one SynthHeads identity (shape, colours, accessories, asymmetries)."""

    seed: int
    """The seed this head was sampled from (identity id)."""
    skin_tone: RGB
    """Base skin albedo, RGB in [0, 1]."""
    skin_tone_index: float
    """Position on the light-to-dark skin palette, 0 (lightest) .. 1 (darkest)."""
    hair_colour: RGB
    """Hair (and brow) albedo."""
    iris_colour: RGB
    lip_colour: RGB
    face_width: float
    """Half-width of the lower-face ellipsoid (cheek to cheek / 2), world units."""
    face_length: float
    """Half-height of the lower-face ellipsoid."""
    jaw_width: float
    """Half-width at the jaw corners."""
    skull_width: float
    """Half-width of the skull ellipsoid."""
    eye_spacing: float
    """Half the distance between the eye centres."""
    eye_size: float
    """Half-width of an eye opening."""
    eye_height: float
    """y of the eye centres."""
    brow_height: float
    """Offset of the brows above the eyes."""
    brow_thickness: float
    brow_tilt: float
    """Rotation of the brows about z, radians (positive = outer ends lower)."""
    nose_length: float
    nose_width: float
    nose_protrusion: float
    mouth_width: float
    """Half-width of the upper lip."""
    lip_thickness: float
    ear_size: float
    hair_volume: float
    """Extra thickness of the hair mass over the skull."""
    hair_length: float
    """How far below the ears the hair reaches at the back/sides (0 = short)."""
    hairline: float
    """y of the frontal hairline."""
    glasses: bool
    parting_side: int
    """Side parting: hair swept from this side, hairline raised on it (0 = centre/none; asymmetric if != 0)."""
    mole_side: int
    """A dark mark on one cheek (0 = none)."""
    mole_offset: tuple[float, float]
    """(dx, dy) of the mole from the cheek anchor."""
    earring_side: int
    """One-sided earring (0 = none)."""
    hair_uneven: float
    """Signed extra hair length on the +x (>0) or -x (<0) side; 0 = even."""
    brow_raise: float
    """Signed raise of the +x brow (>0) or -x brow (<0); 0 = level brows."""

    @property
    def asymmetry_count(self) -> int:
        """How many asymmetric details the head carries."""
        return int(self.parting_side != 0) + int(self.mole_side != 0) + int(self.earring_side != 0) \
            + int(abs(self.hair_uneven) > 0) + int(abs(self.brow_raise) > 0)

    @property
    def is_asymmetric(self) -> bool:
        return self.asymmetry_count > 0

    @property
    def strongly_asymmetric(self) -> bool:
        """At least two asymmetric details, one of them large (parting or uneven hair)."""
        return self.asymmetry_count >= 2 and (self.parting_side != 0 or abs(self.hair_uneven) > 0)

    def symmetric(self) -> HeadParams:
        """The same identity with every asymmetric detail removed: mirror-exact geometry and colour."""
        return dataclasses.replace(self, parting_side=0, mole_side=0, earring_side=0, hair_uneven=0.0,
                                   brow_raise=0.0)

    def attributes(self) -> dict[str, float | int | bool]:
        """Flat scalar attributes (for the Parquet index and attribute regression)."""
        out: dict[str, float | int | bool] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                for i, x in enumerate(v):
                    out[f"{f.name}_{i}"] = float(x)
            else:
                out[f.name] = v
        out["asymmetry_count"] = self.asymmetry_count
        out["strongly_asymmetric"] = self.strongly_asymmetric
        return out


def _palette(rng: np.random.Generator, anchors: np.ndarray) -> tuple[RGB, float]:
    t = float(rng.uniform(0, 1))
    x = t * (len(anchors) - 1)
    i = min(int(x), len(anchors) - 2)
    c = anchors[i] * (1 - (x - i)) + anchors[i + 1] * (x - i)
    c = np.clip(c * rng.uniform(0.95, 1.05, 3), 0, 1)
    return (float(c[0]), float(c[1]), float(c[2])), t


def _side(rng: np.random.Generator) -> int:
    return int(rng.choice([-1, 1]))


def sample_head_params(seed: int, asymmetry_rate: float = 0.5, strong: bool | None = None) -> HeadParams:
    """Sample a head from ``seed`` (numpy Generator seeded explicitly: same seed -> same head).

    ``asymmetry_rate``: probability that each asymmetric detail group is switched on. ``strong``: force
    (True) a strongly asymmetric head, or (False) a fully symmetric one; None leaves it to the rate.
    The symmetric attributes are drawn first from their own stream, so switching asymmetry on or off
    never changes the rest of the identity.
    """
    rng = np.random.default_rng([seed, 0])
    arng = np.random.default_rng([seed, 1])
    u = rng.uniform
    skin, skin_t = _palette(rng, _SKIN)
    hair, _ = _palette(rng, _HAIR)
    iris, _ = _palette(rng, _IRIS)
    lip = tuple(float(v) for v in np.clip(np.array(skin) * np.array([0.85, 0.55, 0.55]) + [0.08, 0, 0.02], 0, 1))
    face_width = u(0.128, 0.150)
    p = dict(
        seed=int(seed), skin_tone=skin, skin_tone_index=skin_t, hair_colour=hair, iris_colour=iris, lip_colour=lip,
        face_width=face_width, face_length=u(0.150, 0.175), jaw_width=u(0.070, 0.095) * face_width / 0.14,
        skull_width=u(0.165, 0.185), eye_spacing=u(0.050, 0.060), eye_size=u(0.020, 0.026),
        eye_height=u(0.030, 0.045), brow_height=u(0.030, 0.040), brow_thickness=u(0.006, 0.011),
        brow_tilt=u(-0.15, 0.25), nose_length=u(0.050, 0.070), nose_width=u(0.018, 0.026),
        nose_protrusion=u(0.025, 0.045), mouth_width=u(0.034, 0.046), lip_thickness=u(0.006, 0.010),
        ear_size=u(0.040, 0.055), hair_volume=u(0.008, 0.035), hair_length=float(rng.choice([0.0, u(0.05, 0.22)])),
        hairline=u(0.12, 0.16), glasses=bool(rng.uniform() < 0.2),
        parting_side=0, mole_side=0, mole_offset=(float(u(-0.015, 0.015)), float(u(-0.015, 0.015))),
        earring_side=0, hair_uneven=0.0, brow_raise=0.0,
    )
    if strong is False:
        return HeadParams(**p)
    on = arng.uniform(size=5) < asymmetry_rate
    if strong:  # parting or uneven hair plus at least one more detail
        on[int(arng.integers(0, 2)) * 3] = True
        extra = [i for i in range(5) if not on[i]]
        if sum(on) < 2:
            on[int(arng.choice(extra))] = True
    sides = [_side(arng) for _ in range(5)]
    if on[0]:
        p["parting_side"] = sides[0]
    if on[1]:
        p["mole_side"] = sides[1]
    if on[2]:
        p["earring_side"] = sides[2]
    if on[3]:
        p["hair_uneven"] = sides[3] * float(arng.uniform(0.08, 0.18))
    if on[4]:
        p["brow_raise"] = sides[4] * float(arng.uniform(0.006, 0.012))
    return HeadParams(**p)
