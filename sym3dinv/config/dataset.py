"""The dataset job's configuration (docs/datasets.md): which cameras, what is rendered and written, which
latent edits. :meth:`DatasetConfig.config_hash` keys resume of a build (execution fields excluded).

Written once: the ``sym3dinv dataset build`` options are generated from these fields
(``sym3dinv.cli.options``) and the ``build-multiview-dataset`` flow takes a :class:`DatasetConfig` as its
typed parameter. No torch import.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sym3dinv.config.core import PYDANTIC_CONFIG
from sym3dinv.eg3d_constants import FFHQ_FOCAL, RADIUS
from sym3dinv.errors import ConfigError

CameraKind = Literal["grid", "orbit", "ffhq", "labels"]
CAMERA_KINDS: tuple[str, ...] = ("grid", "orbit", "ffhq", "labels")
MeshFormat = Literal["ply", "glb"]
MESH_FORMATS: tuple[str, ...] = ("ply", "glb")
ORIG = "orig"
"""Variant name of the un-edited latent (an edit may not take it)."""
_EDIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class CameraSpec:
    """Which cameras every identity is rendered at (angles in radians, EG3D sampler convention; the kinds
    are described in ``sym3dinv.dataset.camera_sets``)."""

    __pydantic_config__ = PYDANTIC_CONFIG

    kind: CameraKind = "grid"
    """grid (yaw x pitch steps) | orbit (EG3D's video path) | ffhq (sampled head poses) | labels (poses of a
    dataset.json)."""
    yaw_range: tuple[float, float] = (-0.6, 0.6)
    """LOW,HIGH radians (EG3D sampler yaw)."""
    pitch_range: tuple[float, float] = (-0.25, 0.25)
    """LOW,HIGH radians (EG3D sampler pitch)."""
    n_yaw: int = 5
    """grid: yaw steps."""
    n_pitch: int = 3
    """grid: pitch steps."""
    n_views: int = 16
    """orbit / ffhq / labels: number of views."""
    seed: int = 0
    """ffhq / labels: sampling seed (fixed: same seed, same cameras)."""
    radius: float = RADIUS
    """Camera distance from the pivot (EG3D's FFHQ cameras: 2.7)."""
    focal: float = FFHQ_FOCAL
    """Normalised focal (FFHQ's dataset.json value); field of view = 2 atan(0.5 / focal)."""
    labels_path: str | None = None
    """labels: an EG3D ``dataset.json`` (local path or fsspec URL) to draw poses from."""

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise ConfigError(f"unknown camera set {self.kind!r}; use one of {', '.join(CAMERA_KINDS)}")
        for name in ("yaw_range", "pitch_range"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ConfigError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
        lo, hi = self.pitch_range
        if lo <= -math.pi / 2 or hi >= math.pi / 2:
            raise ConfigError(f"pitch_range must lie inside (-pi/2, pi/2), got {(lo, hi)}")
        if self.kind == "grid" and (self.n_yaw < 1 or self.n_pitch < 1):
            raise ConfigError("grid needs n_yaw >= 1 and n_pitch >= 1")
        if self.kind != "grid" and self.n_views < 1:
            raise ConfigError("n_views must be >= 1")
        if self.kind == "labels" and not self.labels_path:
            raise ConfigError("camera set 'labels' needs labels_path (an EG3D dataset.json)")
        if self.radius <= 0 or self.focal <= 0:
            raise ConfigError("radius and focal must be positive")


@dataclass(frozen=True)
class EditSpec:
    """A latent edit: a W-space direction (``.npy``) rendered at each strength (``ws + s * d``)."""

    __pydantic_config__ = PYDANTIC_CONFIG

    name: str
    """Variant name prefix (``smile`` -> ``smile+1``): a letter, then letters, digits, '_' or '-'."""
    path: str
    """The direction, a ``.npy`` of w_dim floats (local path or fsspec URL)."""
    strengths: tuple[float, ...] = (-1.0, 1.0)
    """Multiples of the direction added to the latent (non-zero: 0 is the original)."""

    def __post_init__(self) -> None:
        if not _EDIT_NAME.match(self.name) or self.name == ORIG:
            raise ConfigError(f"edit name {self.name!r}: use a letter then letters, digits, '_' or '-' (not 'orig')")
        if not self.strengths:
            raise ConfigError(f"edit {self.name!r} has no strengths")
        for s in self.strengths:
            if not math.isfinite(s) or s == 0:
                raise ConfigError(f"edit {self.name!r}: strengths must be finite and non-zero (0 is 'orig'), got {s}")

    def variant(self, strength: float) -> str:
        return f"{self.name}{strength:+g}"


@dataclass(frozen=True)
class DatasetConfig:
    """What a dataset build renders and writes; :meth:`config_hash` keys resume (execution fields excluded)."""

    __pydantic_config__ = PYDANTIC_CONFIG

    cameras: CameraSpec = field(default_factory=CameraSpec)
    """The camera set every identity is rendered at."""
    resolution: int | None = None
    """Side of the RGB images; None = the generator's output resolution."""
    depth_resolution: int | None = None
    """Side of depth/alpha maps; None = the generator's neural rendering resolution (free: the RGB pass's own
    depth and opacity); another value adds a geometry-only volume-rendering pass. Masks/alpha PNGs are
    resampled to the RGB size (nerfstudio requires it); depth PNGs stay at this size."""
    mask_threshold: float = 0.85
    """mask = alpha > this. The embedded SynthHeads generators wrap heads in dark fog (background opacity
    median about 0.5); 0.85 gives the best IoU with the world's head mask for v2 (docs/datasets.md)."""
    depth_unit: float = 1e-3
    """Depth PNG value = z / depth_unit (nerfstudio's default ``depth_unit_scale_factor`` is 1e-3)."""
    mesh: bool = False
    """Also extract a coloured mesh per identity and edit."""
    mesh_resolution: int = 128
    """Marching-cubes grid side."""
    mesh_threshold: float = 10.0
    """Level of the raw density (EG3D's extract_shapes uses 10 on a 512^3 grid)."""
    mesh_formats: tuple[MeshFormat, ...] = ("ply",)
    """Mesh files written: ply, glb or ply,glb."""
    mesh_keep_largest: bool = True
    """Keep only the largest connected part of each mesh (drops floaters)."""
    edits: tuple[EditSpec, ...] = ()
    """Latent edits rendered next to the original (their files' content hashes key resume)."""
    generator: str | None = None
    """None = the generator each identity was inverted with (its metrics.json); else a source for all."""
    device: str = "cpu"
    """cpu | cuda (execution only: not hashed)."""
    chunk: int = 4
    """Views per render batch; execution only."""
    shard_size: int = 8
    """Identities per shard (one flow task each); execution only."""
    skip_poor: bool = False
    """Leave out identities whose inversion was flagged ``poor_fit`` (index column ``quality``; issue 21)."""
    force: bool = False
    """Build even when the generator has another fingerprint than the one the items were inverted with (their
    latents and deltas belong to that generator, so the renders will be off); not hashed."""

    def __post_init__(self) -> None:
        for name in ("resolution", "depth_resolution"):
            v = getattr(self, name)
            if v is not None and not 8 <= v <= 4096:
                raise ConfigError(f"{name} must be in [8, 4096], got {v}")
        if not 0.0 <= self.mask_threshold < 1.0:
            raise ConfigError(f"mask_threshold must be in [0, 1), got {self.mask_threshold}")
        if not self.depth_unit > 0:
            raise ConfigError("depth_unit must be positive")
        if not 8 <= self.mesh_resolution <= 1024:
            raise ConfigError(f"mesh_resolution must be in [8, 1024], got {self.mesh_resolution}")
        bad = [f for f in self.mesh_formats if f not in MESH_FORMATS]
        if bad or not self.mesh_formats:
            raise ConfigError(f"mesh_formats must be a non-empty subset of {MESH_FORMATS}, got {self.mesh_formats}")
        names = [e.name for e in self.edits]
        if len(set(names)) != len(names):
            raise ConfigError(f"edit names must be unique, got {names}")
        if self.chunk < 1 or self.shard_size < 1:
            raise ConfigError("chunk and shard_size must be >= 1")

    def hashed(self) -> dict[str, Any]:
        """The output-shaping part (with each edit file's content hash), as plain JSON."""
        d = json.loads(json.dumps(asdict(self), default=str))
        for k in ("device", "chunk", "shard_size", "force"):
            d.pop(k)
        if not d["skip_poor"]:  # builds made before the option existed keep their hash
            d.pop("skip_poor")
        d["edits"] = [{**e, "sha256": _file_sha256(e["path"])} for e in d["edits"]]
        if self.cameras.kind == "labels" and self.cameras.labels_path:
            d["cameras"]["labels_sha256"] = _file_sha256(self.cameras.labels_path)
        return d

    def config_hash(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(self.hashed(), sort_keys=True).encode()).hexdigest()[:16]


def _file_sha256(path: str) -> str:
    import hashlib

    import fsspec

    try:
        with fsspec.open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc


