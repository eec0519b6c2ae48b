"""SynthHeads: a procedural world of 3D heads with exact ground truth (see docs/synthheads.md).

``params`` (HeadParams from a seed) -> ``head`` (SDF/colour/part fields) -> ``tracer`` (sphere-traced
renders at EG3D camera labels) -> ``dataset`` / ``eval_split`` (files on disk and the fixed eval split).
"""

from sym3dinv.synthheads.dataset import make_dataset, render_identity, render_views, sample_views
from sym3dinv.synthheads.head import LANDMARKS, Head, Part
from sym3dinv.synthheads.params import HeadParams, sample_head_params
from sym3dinv.synthheads.tracer import HeadRender, render_head

__all__ = [
    "LANDMARKS",
    "Head",
    "HeadParams",
    "HeadRender",
    "Part",
    "make_dataset",
    "render_head",
    "render_identity",
    "render_views",
    "sample_head_params",
    "sample_views",
]
