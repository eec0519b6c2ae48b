"""Device-dependent speed settings of the inversion: which switches of :class:`PerformanceConfig` apply on
which device, TF32, autocast, and ``torch.compile`` with an eager fallback.

CPU and CUDA want different things: on CPU the unfused modulated convolution is faster and mixed
precision is not worth it (bf16 CPU kernels are slower here and change results), on CUDA bf16 autocast,
TF32 and NHWC are the usual wins (NHWC on this project's CPU: 0.86-1.10x across runs, i.e. noise).
:func:`resolve` is the single place that decides, so the choice per device is unit-tested without a GPU
(tests/perf/test_perf_settings.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch

from sym3dinv.config.invert import PerformanceConfig

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
CPU_VIEWS_PER_PASS = 2  # stage-2 pseudo step on CPU: bounds RAM at 512 px; costs ~nothing at 128 px
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ResolvedPerf:
    """:class:`PerformanceConfig` with every ``auto`` decided for one device."""

    device_type: str  # "cpu", "cuda", ...
    cache_target_features: bool
    share_planes: bool
    fused_modconv: bool | None  # passed to synthesis; None = the checkpoint's own default
    channels_last: bool
    precision: Precision  # synthesis / loss precision (generator's ``precision`` argument)
    tf32: bool
    compile: bool
    inference_mode: bool
    views_per_pass: int  # stage-2 pseudo step: cameras per forward/backward pass (0 = all at once)
    cuda_graphs: bool  # stage-2 steps replayed as CUDA graphs (CUDA only)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


def _on(toggle: str, auto: bool) -> bool:
    return auto if toggle == "auto" else toggle == "on"


def resolve(cfg: PerformanceConfig, device: torch.device | str, *, bf16_supported: bool | None = None) -> ResolvedPerf:
    """Decide the ``auto`` switches for ``device``.

    ``bf16_supported`` overrides the CUDA capability query (tests; None = ask the device). Mixed
    precision and TF32 only ever apply on CUDA: on other devices they resolve to fp32 / off even when
    requested, because the generator runs fp32 off CUDA anyway (EG3D does the same).
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    precision: Precision = "fp32"
    if cuda:
        if cfg.autocast == "auto":
            if bf16_supported is None:
                bf16_supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
            precision = "bf16" if bf16_supported else "fp32"
        elif cfg.autocast in ("bf16", "fp16"):
            precision = cfg.autocast
    unfused = _on(cfg.unfused_modconv, auto=not cuda)
    return ResolvedPerf(
        device_type=dev.type,
        cache_target_features=cfg.cache_target_features,
        share_planes=cfg.share_planes,
        fused_modconv=False if unfused else None,
        channels_last=_on(cfg.channels_last, auto=cuda),
        precision=precision,
        tf32=cuda and _on(cfg.tf32, auto=True),
        compile=_on(cfg.compile, auto=False),
        inference_mode=cfg.inference_mode,
        views_per_pass=(0 if cuda else CPU_VIEWS_PER_PASS) if cfg.views_per_pass == -1 else cfg.views_per_pass,
        cuda_graphs=cuda and _on(cfg.cuda_graphs, auto=True),
    )


def cpu_numerics(threads: int | None = None) -> None:
    """Process-wide CPU numerics for an entry point (a CLI command, an actor's start-up, a benchmark):
    flush denormals (they make CPU convolutions many times slower late in optimisation) and, when given,
    the torch thread count. Library constructors never call this; the entry point owns the process."""
    torch.set_flush_denormal(True)
    if threads is not None and threads > 0:
        torch.set_num_threads(threads)


def flush_denormal_enabled() -> bool:
    """Whether denormals flush to zero in this thread (torch has no getter: a denormal is probed)."""
    return float(torch.tensor([1e-40], dtype=torch.float32).mul(1.0)) == 0.0


@contextlib.contextmanager
def device_settings(perf: ResolvedPerf) -> Iterator[None]:
    """Process-wide numeric settings for the duration of an inversion, all restored afterwards.

    CPU: flush denormals (an entry point normally did already: :func:`cpu_numerics`).
    CUDA: TF32 for matmuls and cuDNN convolutions when ``perf.tf32``.
    """
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    flushed = flush_denormal_enabled()
    if perf.device_type == "cpu" and not flushed:
        torch.set_flush_denormal(True)
    if perf.device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = perf.tf32
        torch.backends.cudnn.allow_tf32 = perf.tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        if flush_denormal_enabled() != flushed:
            torch.set_flush_denormal(flushed)


def autocast(perf: ResolvedPerf) -> contextlib.AbstractContextManager[Any]:
    """Autocast for the losses (the generator applies its own from ``precision``); no-op in fp32."""
    dtype = perf.autocast_dtype
    if dtype is None or perf.device_type != "cuda":
        return contextlib.nullcontext()
    # no weight-cast cache: PyTorch's rule for autocast inside CUDA-graph capture (stage 2)
    return torch.autocast(device_type="cuda", dtype=dtype, cache_enabled=False)


def no_grad_render(perf: ResolvedPerf) -> contextlib.AbstractContextManager[Any]:
    """``inference_mode`` for pure renders when enabled, else ``no_grad``."""
    return torch.inference_mode() if perf.inference_mode else torch.no_grad()


def compile_with_fallback(fn: F, enabled: bool, name: str = "function", **options: Any) -> F:
    """``torch.compile(fn)`` whose first failure (no compiler, unsupported op, ...) falls back to eager
    for good, with one warning; ``fn`` itself when ``enabled`` is False. Results are the same either way."""
    if not enabled:
        return fn
    try:
        compiled = torch.compile(fn, **options)
    except Exception as exc:  # noqa: BLE001 - e.g. unsupported Python/platform for dynamo
        log.warning("torch.compile(%s) unavailable (%s); running eagerly", name, exc)
        return fn
    state = {"failed": False}

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if not state["failed"]:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - compilation errors surface at the first call
                state["failed"] = True
                log.warning("torch.compile(%s) failed (%s: %s); falling back to eager", name,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return fn(*args, **kwargs)

    call.compiled_failed = lambda: state["failed"]  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
