"""CUDA graphs of stage-2 steps (``perf.cuda_graphs``): capture once, replay with one launch per step."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

log = logging.getLogger(__name__)


class StepGraphs:
    """CUDA graphs of the two kinds of stage-2 step (plain, pseudo-label): forward, backward and the Adam
    update captured once after a few eager warm-up steps, then replayed with one launch per step.

    A step launches thousands of small kernels; from Python that costs more than the GPU's work at 128 px and
    about as much at 512 px. Replays run the same kernels on the same memory, so the result is the eager
    one (checked by tests/gpu, which need a GPU: see docs/performance.md for what has been run). The early stop reads the input-view LPIPS after a replay and, when it fires, restores
    the weights saved inside the graph before the update. Any capture failure falls back to eager steps
    for good, with one warning.
    """

    WARMUP = 2  # eager steps of each kind before its capture (cuDNN/cuBLAS choose kernels, Adam state exists)

    def __init__(self, params: list[Tensor], opt: torch.optim.Optimizer) -> None:
        self.params, self.opt = params, opt
        self.backup = [torch.empty_like(p) for p in params]
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]] = {}
        self.warm = {False: 0, True: 0}
        self.failed = False
        self.side = torch.cuda.Stream()
        self.replays = 0

    @contextlib.contextmanager
    def eager(self) -> Iterator[None]:
        """Eager steps run on a side stream (warm-up before capture must, per PyTorch's CUDA-graph rules)."""
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            yield
        torch.cuda.current_stream().wait_stream(self.side)

    def step(self, kind: bool, fwd_bwd: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor] | None:
        """Replay the graph of this kind of step (capturing it first when warm); None = run it eagerly."""
        if self.failed:
            return None
        if kind not in self.graphs:
            if self.warm[kind] < self.WARMUP:
                self.warm[kind] += 1
                return None
            try:
                self.graphs[kind] = self._capture(fwd_bwd)
            except Exception as exc:  # noqa: BLE001 - an op that cannot be captured: stay eager
                log.warning("stage 2: CUDA graph capture failed (%s: %s); running eager steps", type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
                self.failed = True
                torch.cuda.synchronize()
                return None
        graph, stats = self.graphs[kind]
        graph.replay()
        self.replays += 1
        return stats

    def _capture(self, fwd_bwd: Callable[[], dict[str, Tensor]]) -> tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]:
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)  # backward allocates .grad from the graph's pool
        with torch.cuda.graph(graph):
            stats = fwd_bwd()
            with torch.no_grad():
                torch._foreach_copy_(self.backup, self.params)
            self.opt.step()
        return graph, stats

    def undo(self) -> None:
        """Put back the weights from before the last replayed update."""
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.backup)
