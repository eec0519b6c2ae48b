"""Stage-2 pseudo-label terms (METHOD.md "Stage 2", every 4th step): warped nearby views, the mirror
branch with asymmetry filtering, and depth regularisation. Pure functions of renders already made, so
the stage-2 loop renders every camera of a step in one batched synthesis call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from sym3dinv.cameras import ray_distance_to_z
from sym3dinv.invert.losses import PairLoss
from sym3dinv.invert.mirror import Box, flip, flip_box
from sym3dinv.warp import backward_warp

# rough eye/mouth boxes of an EG3D/FFHQ-aligned crop, used when neither boxes nor landmarks are given
DEFAULT_BOXES: tuple[Box, ...] = ((0.28, 0.38, 0.48, 0.52), (0.52, 0.38, 0.72, 0.52), (0.35, 0.60, 0.65, 0.76))


@dataclass(frozen=True)
class FaceRegions:
    """Eye and mouth boxes in normalised input-image coordinates (x0, y0, x1, y1), x right, y down."""

    boxes: tuple[Box, ...] = DEFAULT_BOXES

    @staticmethod
    def from_landmarks(landmarks: Float[Tensor, "68 2"], size: int, pad: float = 0.35) -> FaceRegions:
        """Boxes around the iBUG-68 eyes (36-41, 42-47) and mouth (48-67) given in pixels of a ``size`` image;
        each box grows by ``pad`` of its larger side on every edge (crops need some context)."""
        if landmarks.shape != (68, 2):
            raise ValueError(f"landmarks must be iBUG-68 [68, 2] pixel coordinates, got {tuple(landmarks.shape)}")
        boxes = []
        for lo, hi in ((36, 42), (42, 48), (48, 68)):
            p = landmarks[lo:hi].float() / size
            (x0, y0), (x1, y1) = p.min(0).values.tolist(), p.max(0).values.tolist()
            g = pad * max(x1 - x0, y1 - y0)
            boxes.append((max(0.0, x0 - g), max(0.0, y0 - g), min(1.0, x1 + g), min(1.0, y1 + g)))
        return FaceRegions(boxes=tuple(boxes))


def _warp_to_views(view_cams: Tensor, view_depth: Tensor, image: Tensor, camera: Tensor, input_depth: Tensor,
                   mask: Tensor | None, tolerance: float, res: int, z_depth: bool) -> tuple[Tensor, Tensor]:
    """The input warped into each view by depth (constants: no gradient) and where it is valid."""
    v = view_cams.shape[0]
    with torch.no_grad():
        tz = view_depth.detach() if z_depth else ray_distance_to_z(view_depth.detach(), view_cams)
        sz = (input_depth.detach() if z_depth else ray_distance_to_z(input_depth.detach(), camera)).expand(v, -1, -1, -1)
        w = backward_warp(image.expand(v, -1, -1, -1), camera.expand(v, -1), tz, view_cams, source_depth_z=sz,
                          source_mask=None if mask is None else mask.expand(v, -1, -1, -1),
                          tolerance=tolerance, resolution=res)
    return w.image, w.valid


def warp_pseudo_loss(
    renders: Float[Tensor, "v 3 h w"],
    view_cams: Float[Tensor, "v 25"],
    view_depth: Float[Tensor, "v 1 r r"],
    image: Float[Tensor, "1 3 h w"],
    camera: Float[Tensor, "1 25"],
    input_depth: Float[Tensor, "1 1 r r"],
    mask: Float[Tensor, "1 1 h w"] | None,
    perceptual: PairLoss,
    tolerance: float,
    *,
    z_depth: bool = False,
) -> tuple[Float[Tensor, " v"], Bool[Tensor, "v 1 h w"]]:
    """LPIPS between each nearby-view render and the input warped into that view, both masked to valid.

    Depths are EG3D ray distances, converted to true z here (``z_depth``: they are true z-depths already,
    as the caller's known geometry of ``warp_depth="given"`` is); the depths are treated as constants.
    """
    warped, valid = _warp_to_views(view_cams, view_depth, image, camera, input_depth, mask, tolerance,
                                   renders.shape[-1], z_depth)
    m = valid.to(renders.dtype)
    return perceptual(renders * m, warped), valid


@dataclass(frozen=True)
class WarpSource:
    """Another photo of the same person as a warp source: image, camera, depth at that camera, face mask."""

    image: Float[Tensor, "1 3 h w"]
    camera: Float[Tensor, "1 25"]
    depth: Float[Tensor, "1 1 r r"]
    mask: Float[Tensor, "1 1 h w"] | None = None


def cross_warp_loss(
    renders: Float[Tensor, "v 3 h w"],
    view_cams: Float[Tensor, "v 25"],
    view_depth: Float[Tensor, "v 1 r r"],
    sources: Sequence[WarpSource],
    perceptual: PairLoss,
    tolerance: float,
    conflict_threshold: float,
    *,
    z_depth: bool = False,
) -> tuple[Float[Tensor, " v"], Bool[Tensor, "v 1 h w"]]:
    """:func:`warp_pseudo_loss` for the other photos of the same person warped into this photo's nearby
    views, with conflicts filtered: a visible pixel of a source is kept only where it agrees with the
    current render of that view (:func:`asymmetry_mask`'s test). Photos of one person differ in expression,
    lighting and occlusions; where they do, that photo is no label for this view. The kept sources are
    averaged into one label per view, so the loss costs one LPIPS per view however many photos there are
    (a group's time stays linear in its photos). Returns the per-view loss and where any source was kept."""
    res = renders.shape[-1]
    total = torch.zeros_like(renders)
    count = renders.new_zeros(renders.shape[0], 1, res, res)
    with torch.no_grad():
        for src in sources:
            warped, valid = _warp_to_views(view_cams, view_depth, src.image, src.camera, src.depth, src.mask,
                                           tolerance, res, z_depth)
            keep = (valid & asymmetry_mask(renders, warped, conflict_threshold)).to(renders.dtype)
            total += warped * keep
            count += keep
        label = total / count.clamp(min=1.0)
    kept = count > 0
    m = kept.to(renders.dtype)
    return perceptual(renders * m, label), kept


def asymmetry_mask(
    mirror_render: Float[Tensor, "n 3 h w"], flipped_input: Float[Tensor, "n 3 h w"], threshold: float
) -> Bool[Tensor, "n 1 h w"]:
    """Pixels kept by the mirror branch: the flipped input agrees with the mirror-view render (mean abs
    channel error <= threshold). Where a face is asymmetric (a parting, a mole, one-sided light) the
    flipped photo contradicts what the 3D head, fitted to the input view, shows there, so those pixels go."""
    err = (mirror_render.detach() - flipped_input).abs().mean(dim=1, keepdim=True)
    return err <= threshold


def crop_boxes(x: Float[Tensor, "1 c h w"], boxes: Sequence[Box], size: int) -> Float[Tensor, "b c s s"]:
    """Crops of ``x`` at normalised boxes, each resized to ``size`` (differentiable: grid_sample)."""
    grids = []
    t = (torch.arange(size, dtype=x.dtype, device=x.device) + 0.5) / size
    for x0, y0, x1, y1 in boxes:
        gy, gx = torch.meshgrid(y0 + t * (y1 - y0), x0 + t * (x1 - x0), indexing="ij")
        grids.append(torch.stack((gx, gy), dim=-1) * 2 - 1)
    grid = torch.stack(grids)  # [B, s, s, 2]
    return F.grid_sample(x.expand(len(boxes), -1, -1, -1), grid, mode="bilinear", align_corners=False)


def mirror_pseudo_loss(
    mirror_render: Float[Tensor, "1 3 h w"],
    image: Float[Tensor, "1 3 h w"],
    regions: FaceRegions,
    contextual: PairLoss,
    threshold: float,
    size: int,
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """Contextual loss between the mirror-camera render and the flipped input on the (flipped) eye and
    mouth boxes, asymmetric pixels zeroed in both. Returns (loss, fraction of pixels kept)."""
    target = flip(image)
    keep = asymmetry_mask(mirror_render, target, threshold).to(image.dtype)
    boxes = [flip_box(b) for b in regions.boxes]
    a = crop_boxes(mirror_render * keep, boxes, size)
    b = crop_boxes(target * keep, boxes, size)
    return contextual(a, b).mean(), keep.mean()


def depth_reg_loss(depth: Float[Tensor, "v 1 r r"], frozen: Float[Tensor, "v 1 r r"]) -> Float[Tensor, ""]:
    """MSE to the frozen original generator's depth at the same views (computed once, before tuning)."""
    return F.mse_loss(depth, frozen)
