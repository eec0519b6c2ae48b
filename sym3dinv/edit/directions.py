"""Edit directions in the generator's W space and how they are applied to an inversion's pivot ``ws``.

A direction is a ``[w_dim]`` vector (the same offset for every synthesis layer) or a ``[num_ws, w_dim]``
array (per layer, e.g. only the coarse layers for geometry). Applying one is ``ws + strength * d``; the
tuned generator weights stay as they are, so edits keep the identity the tuning recovered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sym3dinv.errors import ConfigError


@dataclass(frozen=True)
class Edit:
    """A named direction with the strengths to render it at (0 is the unedited pivot)."""

    name: str
    direction: np.ndarray
    strengths: tuple[float, ...] = (-1.0, 1.0)


def load_direction(path: str | Path, w_dim: int, num_ws: int | None = None) -> np.ndarray:
    """A float32 direction from a ``.npy`` file, checked against the generator's W shape."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"edit direction {p} does not exist")
    try:
        d = np.load(p, allow_pickle=False)  # never unpickle user files
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{p}: not a .npy array ({exc})") from exc
    return check_direction(d, w_dim, num_ws, str(p))


def check_direction(d: np.ndarray, w_dim: int, num_ws: int | None = None, what: str = "direction") -> np.ndarray:
    d = np.asarray(d)
    if d.dtype.kind != "f":
        raise ConfigError(f"{what}: direction must be floating point, got {d.dtype}")
    d = d.astype(np.float32)
    if d.ndim == 2 and d.shape[0] == 1:
        d = d[0]
    per_layer_ok = d.ndim == 2 and d.shape[1] == w_dim and (num_ws is None or d.shape[0] == num_ws)
    if not (d.ndim == 1 and d.shape[0] == w_dim) and not per_layer_ok:
        want = f"[{w_dim}]" + (f" or [{num_ws}, {w_dim}]" if num_ws else f" or [num_ws, {w_dim}]")
        raise ConfigError(f"{what}: shape {d.shape} does not fit this generator's W space ({want})")
    if not np.all(np.isfinite(d)):
        raise ConfigError(f"{what}: direction holds NaN or inf")
    return d


def apply_edit(ws: np.ndarray, direction: np.ndarray, strength: float) -> np.ndarray:
    """``ws + strength * direction`` for ws ``[num_ws, w_dim]`` or ``[n, num_ws, w_dim]`` (broadcast)."""
    ws = np.asarray(ws, dtype=np.float32)
    d = np.asarray(direction, dtype=np.float32)
    if d.ndim == 1:
        d = np.broadcast_to(d, ws.shape[-2:])
    return ws + np.float32(strength) * d
