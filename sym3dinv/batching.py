"""Run a batch of items; on out-of-memory split it in halves and retry, down to single items.

GPU memory per batch depends on the inputs (resolution, number of faces, stage-2 steps) and on what
else holds memory, so a batch size that fits most nights can fail on one. Rather than failing the
whole batch, :func:`run_splitting` retries the two halves (recursively) and records an item that runs
out of memory on its own as :class:`~sym3dinv.errors.OutOfMemoryItemError` (``out_of_memory``). Other
exceptions are not caught: they are the caller's per-item business.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sym3dinv.errors import OutOfMemoryItemError, is_oom_message

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError``, ``MemoryError``, or a RuntimeError worded like an allocation
    failure (CUDA/MPS "out of memory", torch's CPU allocator "can't allocate memory")."""
    if isinstance(exc, MemoryError | OutOfMemoryItemError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and is_oom_message(str(exc))


def release_memory() -> None:
    """Collect garbage and return cached CUDA blocks, so a retry after out-of-memory starts clean."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency; stay usable without it
        pass


@dataclass
class SplitReport(Generic[R]):
    """Per-item outcome in input order (a result or the OutOfMemoryItemError) and what it took."""

    results: list[R | OutOfMemoryItemError]
    calls: list[int] = field(default_factory=list)
    """Batch size of every call made, in order (e.g. [8, 4, 4, 2, 2])."""
    ooms: int = 0

    @property
    def failed(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if isinstance(r, OutOfMemoryItemError)]


def run_splitting(fn: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T]) -> SplitReport[R]:
    """``fn(batch)`` returns one result per item; out-of-memory splits the batch until single items."""
    report: SplitReport[R] = SplitReport(results=[])
    out: list[R | OutOfMemoryItemError | None] = [None] * len(items)

    def run(lo: int, hi: int) -> None:
        batch = items[lo:hi]
        report.calls.append(len(batch))
        res: list[R] | None = None
        reason = ""  # the message only: the exception's frames hold the batch's tensors
        try:
            res = list(fn(batch))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            report.ooms += 1
            reason = str(exc)
        if res is None:  # retried outside the except block, so the failed call's frames (tensors) are freed
            release_memory()
            if hi - lo == 1:
                log.warning("item %d runs out of memory on its own; recording it as out_of_memory", lo)
                out[lo] = OutOfMemoryItemError(f"out of memory even as a batch of one (item {lo}): {reason}")
                return
            mid = (lo + hi) // 2
            log.info("out of memory on a batch of %d; retrying as %d + %d", hi - lo, mid - lo, hi - mid)
            run(lo, mid)
            run(mid, hi)
            return
        if len(res) != hi - lo:
            raise ValueError(f"batch function returned {len(res)} results for {hi - lo} items")
        out[lo:hi] = res

    if items:
        run(0, len(items))
    report.results = out  # type: ignore[assignment]
    return report
