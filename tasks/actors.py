"""Ray side of the bulk flow: one explicit actor per worker slot, each holding the generator once.

:class:`InversionActor` wraps :class:`sym3dinv.pipeline.groups.GroupProcessor` (the per-item processor, which
also inverts groups of photos of one person). :class:`ActorPool` feeds items to
the actors with bounded in-flight work; when an actor dies (node lost, OOM-killed, preempted) its
in-flight items go back to the queue with ``attempt + 1`` and the actor is recreated. After
``max_attempts`` an item is recorded as a ``worker_lost`` failure, never dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError

from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig
from sym3dinv.config.quality import QualityConfig
from sym3dinv.config.store import LeaseConfig
from sym3dinv.errors import WorkerLostError
from sym3dinv.pipeline.groups import GroupProcessor, with_group
from sym3dinv.pipeline.inputs import InputItem
from sym3dinv.pipeline.models import code_version, resolve_device
from sym3dinv.store import IndexRow, RunStore, failure_row

log = logging.getLogger(__name__)

_LOST = (RayActorError, ActorDiedError, ActorUnavailableError, WorkerCrashedError)


class InversionActor:
    """One worker: loads the generator (and losses) once, then processes many items.

    Its start-up is the worker process's entry point, so it sets the numerics (flush denormals, one
    torch thread per CPU Ray gave it) before anything runs."""

    def __init__(self, config: PipelineConfig, num_gpus: float, storage_options: Mapping[str, Any],
                 adopt: bool = True, lease: LeaseConfig | None = None, owner: str | None = None,
                 quality: QualityConfig | None = None) -> None:
        from sym3dinv.perf import cpu_numerics

        self.device = resolve_device(num_gpus)
        if self.device == "cpu":  # CPU actors: as many torch threads as CPUs Ray assigned
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
            cpu_numerics(max(1, int(cpus)) if num_gpus <= 0 else None)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{self.device}"
        self.proc = GroupProcessor(config, self.device, storage_options=storage_options, adopt=adopt, lease=lease,
                                  owner=owner, quality=quality)
        log.info("actor %s ready (generator %s)", self.worker, config.generator)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "worker": self.worker, "device": self.device}

    def process(self, items: Sequence[InputItem], store: RunStore, attempts: Sequence[int]) -> list[IndexRow]:
        """One row per item (a group's dropped members add a failure row each); several items share stage-1
        batches (``ItemProcessor.process_many``)."""
        return self.proc.process_many(items, store, attempts, worker=self.worker)


@dataclass(frozen=True)
class PoolSpec:
    """How many actors, with what resources; small and picklable (a flow parameter derives it)."""

    num_actors: int = 2
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    in_flight_per_actor: int = 2
    max_attempts: int = 3
    adopt_committed: bool = True
    """Reuse attempts already committed under the same config (see ``ItemProcessor.adopt_committed``)."""
    lease: LeaseConfig | None = None
    """Per-item leases taken for run ``owner`` (see ``ItemProcessor``); None: no leases (one run per store)."""
    owner: str | None = None
    """The run id leases are taken for."""
    quality: QualityConfig | None = None
    """Poor-fit thresholds of the rows the actors write (None: the defaults)."""
    items_per_call: int = 1
    """Items handed to an actor at once, inverted with a shared stage-1 batch (up to the preset's
    ``stage1.batch_size``). More than 1 pays on a GPU (a batch of 4 fills it: 1.7x per image in stage 1
    at 512 px on an H100); on one CPU core 2 per call measured 1.03x images/hour (docs/performance.md). Near the end of a run groups shrink so
    every actor keeps work. See :func:`items_per_call` for the flow's default."""

    def group_size(self, queued: int) -> int:
        """Items for the next call when ``queued`` wait: up to ``items_per_call``, but no more than an
        even share per actor (5 items, 2 actors, 4 per call: 3 then 1 then 1, not 4 then 1)."""
        share = -(-queued // max(1, self.num_actors))
        return max(1, min(self.items_per_call, share))

    @classmethod
    def for_run(cls, execution: ExecutionConfig, stage1_batch: int, run_id: str) -> PoolSpec:
        """The pool of run ``run_id`` (actor restarts adopt committed attempts only when resuming; items are
        leased for the run)."""
        return cls(num_actors=execution.num_actors, num_gpus=execution.gpus_per_actor,
                   max_attempts=execution.max_attempts, adopt_committed=execution.resume,
                   lease=execution.lease, owner=run_id, quality=execution.quality,
                   items_per_call=items_per_call(execution.items_per_call, execution.gpus_per_actor, stage1_batch))


def items_per_call(requested: int, num_gpus: float, stage1_batch: int) -> int:
    """``ExecutionConfig.items_per_call``: ``requested`` when > 0, else the stage-1 batch size on GPU
    actors and 1 on CPU ones (per-item latency and balance matter more there than the 1.03x)."""
    if requested > 0:
        return requested
    return max(1, stage1_batch) if num_gpus > 0 else 1


class ActorPool:
    """Actors created once per run; thread-safe so several shard tasks can share it."""

    def __init__(self, config: PipelineConfig, spec: PoolSpec, storage_options: Mapping[str, Any] | None = None) -> None:
        self.config, self.spec, self.options = config, spec, dict(storage_options or {})
        self._cls = ray.remote(InversionActor).options(  # type: ignore[attr-defined]
            num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, max_restarts=0)
        self._lock = threading.Lock()
        self.actors = [self._new() for _ in range(spec.num_actors)]
        self.load = [0] * spec.num_actors
        self.restarts = 0

    def _new(self) -> Any:
        spec = self.spec
        return self._cls.remote(self.config, spec.num_gpus, self.options, spec.adopt_committed, spec.lease, spec.owner,
                                 spec.quality)

    def _pick(self) -> tuple[int, Any]:
        with self._lock:
            idx = min(range(len(self.actors)), key=self.load.__getitem__)
            self.load[idx] += 1
            return idx, self.actors[idx]

    def _done(self, idx: int, actor: Any, lost: bool) -> None:
        with self._lock:
            self.load[idx] -= 1
            if lost and self.actors[idx] is actor:  # first to notice replaces it; others see the new one
                log.warning("actor %d died; starting a replacement", idx)
                ray.kill(actor, no_restart=True)
                self.actors[idx] = self._new()
                self.restarts += 1

    def run(self, items: Sequence[InputItem], store: RunStore,
            on_row: Callable[[IndexRow], None] | None = None) -> list[IndexRow]:
        """Process ``items``; returns exactly one row per item (done, failed, or worker_lost), plus a failure
        row per member a group dropped.

        Items go to the actors in groups of :meth:`PoolSpec.group_size`; when an actor dies, every item of
        its groups in flight goes back to the queue (items it had already committed are adopted, not redone).
        """
        queue: deque[tuple[InputItem, int]] = deque((it, 0) for it in items)
        in_flight: dict[Any, tuple[list[tuple[InputItem, int]], int, Any]] = {}
        limit = max(1, self.spec.num_actors * self.spec.in_flight_per_actor)
        rows: list[IndexRow] = []
        while queue or in_flight:
            while queue and len(in_flight) < limit:  # backpressure: never more than `limit` calls queued on Ray
                group = [queue.popleft() for _ in range(self.spec.group_size(len(queue)))]
                idx, actor = self._pick()
                ref = actor.process.remote([it for it, _ in group], store, [a for _, a in group])
                in_flight[ref] = (group, idx, actor)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                group, idx, actor = in_flight.pop(ref)
                try:
                    got = ray.get(ref)
                except _LOST as exc:
                    self._done(idx, actor, lost=True)
                    got = []
                    for item, attempt in group:
                        if attempt + 1 < self.spec.max_attempts:
                            log.warning("item %s lost with its worker (attempt %d); retrying", item.id, attempt)
                            queue.append((item, attempt + 1))
                            continue
                        got.append(with_group(failure_row(item.id, WorkerLostError(
                            f"the worker died {attempt + 1} times while processing this item ({type(exc).__name__})"),
                            config_hash=self.config.config_hash, attempt=attempt, source_uri=item.uri,
                            size=item.size, code_version=code_version()), item))
                except BaseException:  # a store failure: keep the load counts right, then fail the shard
                    self._done(idx, actor, lost=False)
                    raise
                else:
                    self._done(idx, actor, lost=False)
                for row in got:
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
        return rows

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a, no_restart=True)


def ensure_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to ``address`` / ``RAY_ADDRESS`` when given, else start a local Ray. True if we started it."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, runtime_env={"env_vars": {"SYM3DINV_CODE_VERSION": code_version()}})
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return True
