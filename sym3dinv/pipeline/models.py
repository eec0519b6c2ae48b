"""What a worker loads once for the per-item pipeline: the loss set, the encoder, the device; the code version.

No Prefect or Ray here (DESIGN.md). :class:`~sym3dinv.pipeline.processor.ItemProcessor` calls these when it
starts, so a missing model or a bad loss spec is a configuration error before any item is touched.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from sym3dinv.config.pipeline import DEFAULT_LOSSES, PipelineConfig
from sym3dinv.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(num_gpus: float, cuda_available: bool | None = None) -> str:
    """``cuda`` when GPUs were requested and CUDA works here, else ``cpu`` (logged, not an error)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if num_gpus > 0 and cuda_available:
        return "cuda"
    if num_gpus > 0:
        log.warning("%s GPU(s) requested but CUDA is not available; running on CPU", num_gpus)
    return "cpu"


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sym3dinv")
    except PackageNotFoundError:
        return "0+unknown"


def load_losses(spec: str) -> Any:
    """The loss set a :class:`PipelineConfig` names: None for ``lpips`` (the inversion builds METHOD.md's
    LPIPS + contextual losses itself), else ``module:function()`` imported here, on the worker."""
    if spec == DEFAULT_LOSSES:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"losses {spec!r}: cannot import it on this worker ({exc})") from exc


def load_encoder(config: PipelineConfig, G: Any, device: Any) -> Any:
    """The trained encoder of ``config.generator`` (or ``config.encoder``), checked against ``G``, when the
    inversion starts from it (``stage1.init = "encoder"``: ``instant``, ``quick``); else None."""
    if config.inversion.stage1.init != "encoder":
        return None
    from sym3dinv.encoder import load_encoder_for

    return load_encoder_for(config.generator, G, config.encoder or None, device)


def require_models(config: PipelineConfig) -> None:
    """At planning, before any worker starts: the model files ``config`` needs beyond the generator exist
    (the encoder of an ``instant``/``quick`` run; :class:`~sym3dinv.errors.ModelNotFoundError` names it)."""
    if config.inversion.stage1.init == "encoder":
        from sym3dinv.encoder.files import encoder_path

        encoder_path(config.generator, config.encoder or None)
