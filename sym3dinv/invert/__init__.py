"""Symmetry-prior 3D GAN inversion (METHOD.md): stage 1 (W+ with mirror term), stage 2 (generator tuning
with warped / mirrored pseudo labels and depth regularisation), and the W+ / PTI baselines.

Public calls: :func:`invert`, :func:`invert_batch` (:func:`iter_inversions`) -> :class:`InversionResult`;
:func:`invert_group` (several photos of one person, one head) -> :class:`GroupInversionResult`; :func:`render_views`
to render a result at any cameras; :func:`apply_delta_` / :func:`tuned_tensors` for the tuned generator.
"""

from sym3dinv.invert.api import InversionResult, ViewMetrics, invert, invert_batch, iter_inversions
from sym3dinv.invert.group import GroupInversionResult, invert_group
from sym3dinv.invert.losses import LossFunctions, default_losses
from sym3dinv.invert.mirror import flip, flip_box, mirror_weight, mirror_weights
from sym3dinv.invert.pseudo import FaceRegions
from sym3dinv.invert.render import (
    RenderedViews,
    WeightDelta,
    apply_delta_,
    cross_offsets,
    render_views,
    synthesize,
    tuned_tensors,
    views_around,
)
from sym3dinv.invert.schedules import lr_at, noise_scale_at

__all__ = [
    "FaceRegions",
    "GroupInversionResult",
    "InversionResult",
    "LossFunctions",
    "RenderedViews",
    "ViewMetrics",
    "WeightDelta",
    "apply_delta_",
    "cross_offsets",
    "default_losses",
    "flip",
    "flip_box",
    "invert",
    "invert_batch",
    "invert_group",
    "iter_inversions",
    "lr_at",
    "mirror_weight",
    "mirror_weights",
    "noise_scale_at",
    "render_views",
    "synthesize",
    "tuned_tensors",
    "views_around",
]
