"""The bulk job without orchestration: inputs -> one index row per item (DESIGN.md "The main job").

- ``inputs``: list a folder, glob, URL or EG3D ``dataset.json`` as content-addressed items; shards.
- ``processor``: :class:`ItemProcessor`, decode -> align -> invert -> render -> atomic write -> row.
- ``grouping`` / ``groups``: several photos of one person as one item (which photos, the group's id) and
  :class:`GroupProcessor`, the processor that also inverts such groups (what the bulk flow's actors run).
- the configuration lives in ``sym3dinv.config.pipeline`` (:class:`PipelineConfig`, :class:`ExecutionConfig`).

``tasks/`` and ``flows/`` put Prefect and Ray around these; a notebook can use them directly.
"""

from __future__ import annotations

from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig, RenderSpec
from sym3dinv.pipeline.grouping import group_id, list_items
from sym3dinv.pipeline.groups import GroupProcessor
from sym3dinv.pipeline.inputs import IMAGE_EXTENSIONS, InputItem, list_inputs, shards, unreadable_id
from sym3dinv.pipeline.models import code_version, load_losses, resolve_device
from sym3dinv.pipeline.processor import ItemProcessor

__all__ = [
    "IMAGE_EXTENSIONS",
    "ExecutionConfig",
    "GroupProcessor",
    "InputItem",
    "ItemProcessor",
    "PipelineConfig",
    "RenderSpec",
    "code_version",
    "group_id",
    "list_inputs",
    "list_items",
    "load_losses",
    "resolve_device",
    "shards",
    "unreadable_id",
]
