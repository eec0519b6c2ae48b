"""Multi-view datasets from a finished run store (docs/datasets.md): camera sets, renders of each identity
with its tuned generator (RGB, depth, alpha/mask), optional meshes and latent edits, written as an EG3D
``dataset.json``, nerfstudio ``transforms.json`` scenes and a Parquet index, resumably, to any fsspec URL.

Public calls: :func:`build_dataset` (with :class:`DatasetConfig`, :class:`CameraSpec`, :class:`EditSpec`, defined
in ``sym3dinv.config.dataset``), or
its parts :func:`plan_dataset` / :func:`build_shard` / :func:`finalize_dataset` (what the flow's tasks call);
:func:`camera_set`. Modules: ``render`` (``render_identity``), ``mesh`` (``extract_mesh``,
``mesh_from_density``, ``depth_map``), ``exports`` (the formats and their camera conventions), ``build`` (one
identity: :class:`DatasetBuilder`) and ``job`` (plan, shards, finalize, summary).
"""

from sym3dinv.config.dataset import CAMERA_KINDS, CameraSpec, DatasetConfig, EditSpec
from sym3dinv.dataset.build import DatasetBuilder, DatasetOutput, ShardResult
from sym3dinv.dataset.camera_sets import CameraSet, camera_set
from sym3dinv.dataset.job import (
    DatasetSummary,
    Plan,
    build_dataset,
    build_shard,
    finalize_dataset,
    plan_dataset,
    summarize,
)

__all__ = [
    "CAMERA_KINDS",
    "CameraSet",
    "CameraSpec",
    "DatasetBuilder",
    "DatasetConfig",
    "DatasetOutput",
    "DatasetSummary",
    "EditSpec",
    "Plan",
    "ShardResult",
    "build_dataset",
    "build_shard",
    "camera_set",
    "finalize_dataset",
    "plan_dataset",
    "summarize",
]
