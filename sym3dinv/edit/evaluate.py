"""How selective are edits? Apply each direction at -s and +s to latents, render at the meter camera,
and express every meter's change in units of that meter's spread over the attribute set.

``effects[direction][meter] = (meter(+s) - meter(-s)) / (2 s * std(meter))``: the change of each
meter per unit strength, in population standard deviations. An edit is selective when its own
attribute's entry dominates its row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sym3dinv.edit.attributes import METERS, render_for_meter
from sym3dinv.edit.directions import apply_edit

if TYPE_CHECKING:
    from sym3dinv.edit.learn import AttributeSet
    from sym3dinv.generator import TriPlaneGenerator


def as_ws(latent: np.ndarray, num_ws: int) -> np.ndarray:
    """[num_ws, w_dim] from a w [w_dim] or a W+ latent."""
    lat = np.asarray(latent, dtype=np.float32)
    return np.broadcast_to(lat, (num_ws, lat.shape[-1])).copy() if lat.ndim == 1 else lat


def meter_std(aset: AttributeSet) -> dict[str, float]:
    """Spread of each meter over the set's generator renders (the unit of :func:`edit_effects`)."""
    return {m: float(np.std(aset.meter(m))) for m in aset.meter_names}


def edit_effects(G: TriPlaneGenerator, latents: Sequence[np.ndarray], directions: Mapping[str, np.ndarray],
                 std: Mapping[str, float], strength: float = 2.0) -> dict[str, dict[str, float]]:
    """Mean over ``latents`` of each meter's normalised change per unit strength, per direction."""
    import torch

    out: dict[str, dict[str, list[float]]] = {d: {m: [] for m in METERS} for d in directions}
    for lat in latents:
        ws = as_ws(lat, G.num_ws)
        batch = [apply_edit(ws, d, s) for d in directions.values() for s in (-strength, strength)]
        renders = render_for_meter(G, torch.from_numpy(np.stack(batch)))
        for k, name in enumerate(directions):
            lo, hi = renders[2 * k].measure(), renders[2 * k + 1].measure()
            for m in METERS:
                out[name][m].append((hi[m] - lo[m]) / (2 * strength * std[m]))
    return {d: {m: float(np.mean(v)) for m, v in ms.items()} for d, ms in out.items()}
