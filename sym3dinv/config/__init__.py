"""Typed, frozen configuration for every job; the method's numbers (METHOD.md) are the defaults.

One module per job: ``pipeline`` (the bulk inversion: :class:`PipelineConfig`, :class:`ExecutionConfig`),
``dataset`` (multi-view datasets), ``invert`` (stages 1 and 2), ``align``, ``store``; ``presets`` is the one
registry of named inversion presets, and ``core`` holds the shared mechanics (hash, overrides, field docs).
The command line (``sym3dinv.cli.options``) and the Prefect flows are generated from these classes.

Config modules never import torch, so a flow can validate parameters without loading models.
``config_hash`` of the configs that shape an item's outputs is stored in the run index and drives resume.
"""

from __future__ import annotations

from sym3dinv.config.align import AlignConfig
from sym3dinv.config.core import config_hash, field_docs, replace_path, to_dict
from sym3dinv.config.dataset import CameraSpec, DatasetConfig, EditSpec
from sym3dinv.config.invert import InversionConfig, Mode, Stage1Config, Stage2Config
from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig, RenderSpec
from sym3dinv.config.store import LeaseConfig, RetryPolicy, StoreConfig

__all__ = [
    "AlignConfig",
    "CameraSpec",
    "DatasetConfig",
    "EditSpec",
    "ExecutionConfig",
    "InversionConfig",
    "LeaseConfig",
    "Mode",
    "PipelineConfig",
    "RenderSpec",
    "RetryPolicy",
    "Stage1Config",
    "Stage2Config",
    "StoreConfig",
    "config_hash",
    "field_docs",
    "replace_path",
    "to_dict",
]
