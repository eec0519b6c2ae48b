"""Depth error of a reconstruction against ground-truth z-depth (e.g. SynthHeads renders).

Depths are camera-space z (not ray distance; see ``sym3dinv.cameras.ray_distance_to_z``), in the same
units for prediction and ground truth. ``align="median"`` first rescales each prediction by
``median(gt) / median(pred)`` over the mask: monocular inversion fixes depth only up to the scale the
generator's camera implies, and the median ratio is the robust way to remove a global scale mismatch
(the scale used is returned so a report can show it). ``align="none"`` compares raw values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from sym3dinv.errors import ConfigError


@dataclass(frozen=True)
class DepthError:
    """Per-image depth errors over the valid (masked, finite) pixels."""

    mae: Float[Tensor, " n"]  # mean |pred*scale - gt|
    rmse: Float[Tensor, " n"]  # sqrt(mean (pred*scale - gt)^2)
    scale: Float[Tensor, " n"]  # multiplier applied to pred (1 without alignment)
    valid_pixels: Float[Tensor, " n"]  # count of pixels used; 0 gives NaN errors


def depth_error(
    pred: Float[Tensor, "n h w"],
    gt: Float[Tensor, "n h w"],
    mask: Bool[Tensor, "n h w"] | None = None,
    align: Literal["none", "median"] = "none",
) -> DepthError:
    """Masked MAE and RMSE of z-depth per image; ``[N, 1, H, W]`` inputs are accepted too."""
    if pred.ndim == 4 and pred.shape[1] == 1:
        pred, gt = pred[:, 0], gt[:, 0]
        mask = mask[:, 0] if mask is not None and mask.ndim == 4 else mask
    if pred.ndim != 3 or pred.shape != gt.shape or (mask is not None and mask.shape != pred.shape):
        raise ConfigError(f"depth_error expects [N, H, W] pred/gt/mask of one shape, got {tuple(pred.shape)}, "
                          f"{tuple(gt.shape)}, {None if mask is None else tuple(mask.shape)}")
    if align not in ("none", "median"):
        raise ConfigError(f"align must be 'none' or 'median', got {align!r}")
    valid = torch.isfinite(pred) & torch.isfinite(gt)
    if mask is not None:
        valid = valid & mask.bool()
    n = pred.shape[0]
    maes, rmses, scales = [], [], []
    for i in range(n):  # masks differ in size per image; medians need the selected values anyway
        p, g = pred[i][valid[i]], gt[i][valid[i]]
        s = torch.ones((), dtype=pred.dtype, device=pred.device)
        if align == "median" and p.numel():
            s = g.median() / p.median()
        e = p * s - g
        maes.append(e.abs().mean() if e.numel() else e.new_tensor(float("nan")))
        rmses.append(e.pow(2).mean().sqrt() if e.numel() else e.new_tensor(float("nan")))
        scales.append(s)
    return DepthError(
        mae=torch.stack(maes),
        rmse=torch.stack(rmses),
        scale=torch.stack(scales),
        valid_pixels=valid.reshape(n, -1).sum(dim=1).to(pred.dtype),
    )
