"""The bulk job without orchestration: inputs -> one index row per item (DESIGN.md "The main job").

- ``inputs``: list a folder, glob, URL or EG3D ``dataset.json`` as content-addressed items; shards.
- ``processor``: :class:`ItemProcessor`, decode -> align -> invert -> render -> atomic write -> row.
- the configuration lives in ``sym3dinv.config.pipeline`` (:class:`PipelineConfig`, :class:`ExecutionConfig`).

``tasks/`` and ``flows/`` put Prefect and Ray around these; a notebook can use them directly.
"""

from __future__ import annotations

from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig, RenderSpec
from sym3dinv.pipeline.inputs import IMAGE_EXTENSIONS, InputItem, list_inputs, shards, unreadable_id
from sym3dinv.pipeline.models import code_version, load_losses, resolve_device
from sym3dinv.pipeline.processor import ItemProcessor

__all__ = [
    "IMAGE_EXTENSIONS",
    "ExecutionConfig",
    "InputItem",
    "ItemProcessor",
    "PipelineConfig",
    "RenderSpec",
    "code_version",
    "list_inputs",
    "load_losses",
    "resolve_device",
    "shards",
    "unreadable_id",
]
