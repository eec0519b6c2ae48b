"""Camera sets for multi-view datasets: a yaw/pitch grid, an orbit, or samples from a head-pose
distribution, as EG3D labels (``sym3dinv.cameras`` conventions: yaw/pitch are EG3D's sampler angles,
cameras look at the FFHQ pivot (0, 0, 0.2) from radius 2.7).

- ``grid``: every (yaw, pitch) of ``linspace(*yaw_range, n_yaw)`` x ``linspace(*pitch_range, n_pitch)``.
- ``orbit``: EG3D's ``gen_videos.py`` path: ``yaw = mid + half * sin(2 pi t)``,
  ``pitch = mid + half * cos(2 pi t)`` for ``t = i / n_views`` (an ellipse through the yaw/pitch ranges).
- ``ffhq``: ``n_views`` samples of a Gaussian head-pose model of FFHQ-like portraits (yaw sd 0.3 rad,
  pitch sd 0.155 rad: pi-GAN's CelebA/FFHQ camera statistics), truncated to the yaw/pitch ranges
  by resampling, drawn from ``numpy.random.default_rng(seed)`` so a seed always gives the same set.
- ``labels``: ``n_views`` poses drawn (with ``seed``) from the labels of an EG3D ``dataset.json``, e.g.
  FFHQ's own: the empirical distribution, cameras reused exactly (their intrinsics included).

Views are named ``v000``, ``v001``... in set order; the set is a pure function of its spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from sym3dinv.config.dataset import CameraSpec
from sym3dinv.errors import ConfigError

FFHQ_YAW_STD = 0.3  # rad, pi-GAN's CelebA/FFHQ horizontal std (h_stddev)
FFHQ_PITCH_STD = 0.155  # rad, pi-GAN's vertical std (v_stddev)


@dataclass(frozen=True)
class CameraSet:
    """Named views with their sampler angles and EG3D labels."""

    names: tuple[str, ...]
    yaw: np.ndarray  # [V] float64
    pitch: np.ndarray  # [V] float64
    labels: np.ndarray  # [V, 25] float32: 16 cam2world (OpenCV) + 9 normalised intrinsics

    def __len__(self) -> int:
        return len(self.names)


def _angles(spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    (ylo, yhi), (plo, phi) = spec.yaw_range, spec.pitch_range
    if spec.kind == "grid":
        yaws = np.linspace(ylo, yhi, spec.n_yaw) if spec.n_yaw > 1 else np.array([(ylo + yhi) / 2])
        pitches = np.linspace(plo, phi, spec.n_pitch) if spec.n_pitch > 1 else np.array([(plo + phi) / 2])
        p, y = np.meshgrid(pitches, yaws, indexing="ij")  # pitch rows, yaw columns (reading order)
        return y.reshape(-1), p.reshape(-1)
    if spec.kind == "orbit":
        t = np.arange(spec.n_views) / spec.n_views
        yaw = (ylo + yhi) / 2 + (yhi - ylo) / 2 * np.sin(2 * np.pi * t)
        pitch = (plo + phi) / 2 + (phi - plo) / 2 * np.cos(2 * np.pi * t)
        return yaw, pitch
    # ffhq: truncated Gaussian by resampling (exact truncation, deterministic for a seed)
    rng = np.random.default_rng(spec.seed)
    out_y: list[float] = []
    out_p: list[float] = []
    while len(out_y) < spec.n_views:
        y = rng.normal(0.0, FFHQ_YAW_STD, 4 * spec.n_views)
        p = rng.normal(0.0, FFHQ_PITCH_STD, 4 * spec.n_views)
        ok = (y >= ylo) & (y <= yhi) & (p >= plo) & (p <= phi)
        out_y += y[ok].tolist()
        out_p += p[ok].tolist()
        if not out_y and (min(abs(ylo), abs(yhi)) > 5 * FFHQ_YAW_STD or min(abs(plo), abs(phi)) > 5 * FFHQ_PITCH_STD):
            raise ConfigError("ffhq camera ranges exclude almost all of the pose distribution")
    return np.asarray(out_y[: spec.n_views]), np.asarray(out_p[: spec.n_views])


def read_label_file(url: str) -> np.ndarray:
    """All 25-float labels of an EG3D ``dataset.json`` (``{"labels": [[name, [25 floats]], ...]}``)."""
    import fsspec

    try:
        with fsspec.open(url, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read camera labels from {url}: {exc}") from exc
    labels = data.get("labels") if isinstance(data, dict) else None
    if not labels:
        raise ConfigError(f"{url}: not an EG3D dataset.json with labels")
    arr = np.asarray([lab for _, lab in labels], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 25:
        raise ConfigError(f"{url}: labels must have 25 values each, got shape {arr.shape}")
    return arr


def camera_set(spec: CameraSpec) -> CameraSet:
    """The cameras of ``spec`` (deterministic)."""
    import torch

    from sym3dinv.cameras import camera_label, yaw_pitch_roll

    if spec.kind == "labels":
        pool = read_label_file(str(spec.labels_path))
        idx = np.random.default_rng(spec.seed).choice(len(pool), size=spec.n_views, replace=spec.n_views > len(pool))
        labels = torch.from_numpy(pool[idx]).float()
        ypr = yaw_pitch_roll(labels.double()).numpy()
        yaw, pitch = ypr[:, 0], ypr[:, 1]
    else:
        yaw, pitch = _angles(spec)
        labels = camera_label(torch.from_numpy(yaw), torch.from_numpy(pitch), radius=spec.radius, focal=spec.focal)
    names = tuple(f"v{i:03d}" for i in range(len(yaw)))
    return CameraSet(names=names, yaw=np.asarray(yaw, np.float64), pitch=np.asarray(pitch, np.float64),
                     labels=labels.float().numpy())


def frontal_label(spec: CameraSpec | None = None) -> np.ndarray:
    """The frontal camera (yaw 0, pitch 0) with the spec's radius and focal, [1, 25] float32."""
    from sym3dinv.cameras import camera_label

    spec = spec or CameraSpec()
    return camera_label(0.0, 0.0, radius=spec.radius, focal=spec.focal).float().numpy()
