"""Prefect tasks of the bulk flow: list inputs, drop finished ones, process the shards on the actor pool."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig
from sym3dinv.errors import FINAL_ERROR_CODES, ConfigError
from sym3dinv.pipeline.grouping import list_items
from sym3dinv.pipeline.inputs import InputItem, shards
from sym3dinv.store import RunStore, Status
from tasks.actors import ActorPool, PoolSpec, ensure_ray


@dataclass(frozen=True)
class ShardSummary:
    shard_id: str
    items: int
    done: int
    failed: int
    part: str | None
    seconds: float
    leased: int = 0
    """Items another run held (left to it, not indexed)."""


@dataclass
class Progress:
    """Counts shared by the shard tasks (threads) and pushed to the in-place progress artifact."""

    total: int
    artifact_id: Any = None
    finished: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.finished += n
            pct = 100.0 * self.finished / max(1, self.total)
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, pct)


def transient(_task: Any, _run: Any, state: Any) -> bool:
    """Retry only what may succeed next time: never configuration errors (bad path, bad parameter)."""
    try:
        state.result()
    except ConfigError:
        return False
    except Exception:  # noqa: BLE001 - everything else (network, object store, Ray) may be transient
        return True
    return False


@task(name="list-inputs", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient)
def list_inputs_task(source: str, storage_options: Mapping[str, Any], group_by: str = "none",
                     group_map: str = "") -> list[InputItem]:
    """The run's items: unique photos, or groups of photos of one person and the photos in no group."""
    items = list_items(source, storage_options, group_by, group_map)
    groups = sum(i.is_group for i in items)
    get_run_logger().info("found %d unique inputs in %s (%d of them groups of photos)", len(items), source, groups)
    return items


@task(name="pending-inputs")
def pending_task(items: list[InputItem], store: RunStore, config_hash: str, resume: bool,
                 retry_failed: bool = False, generator_fingerprint: str | None = None) -> list[InputItem]:
    """Inputs without a done row under ``config_hash`` (made by ``generator_fingerprint`` when given)."""
    if not resume:
        return items
    final = () if retry_failed else tuple(sorted(FINAL_ERROR_CODES))
    left = set(store.pending([(i.id, i.uri) for i in items], config_hash, final_errors=final,
                             generator_fingerprint=generator_fingerprint)["id"].to_pylist())
    get_run_logger().info("%d of %d inputs already done (or failed for good) under config %s", len(items) - len(left),
                          len(items), config_hash)
    return [i for i in items if i.id in left]


def shard_cache_key(ctx: Any, params: dict[str, Any]) -> str:
    """Same store + same config + same item ids (content hashes, not file names) in the same flow run.

    Scoped to the flow run on purpose: across runs the store index is the source of truth (a shard whose
    items failed last night must be retried tonight, not served from cache); within a run the cache
    skips finished shards when Prefect retries or re-runs the flow after a crash.
    """
    ids = ",".join(sorted(i.id for i in params["items"]))
    flow_run = getattr(getattr(ctx, "task_run", None), "flow_run_id", None)
    blob = f"{params['store'].url}|{params['config'].config_hash}|{ids}|{flow_run}"
    return "shard-" + hashlib.sha256(blob.encode()).hexdigest()[:24]


@task(name="invert-shard", task_run_name="shard-{shard_id}", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient,
      cache_key_fn=shard_cache_key, cache_expiration=timedelta(days=7), persist_result=True)
def process_shard(shard_id: str, items: list[InputItem], store: RunStore, config: PipelineConfig,
                  run_id: str, pool: ActorPool, progress: Progress) -> ShardSummary:
    """Feed one shard to the pool and write ONE index part with a row per item (a group's dropped members
    add a failure row each)."""
    t0 = time.perf_counter()
    ids = {i.id for i in items}
    rows = pool.run(items, store, on_row=lambda r: progress.add() if r.id in ids else None)
    leased = [r for r in rows if r.status is Status.SKIPPED]  # another run's: its row must stay the latest
    rows = [r for r in rows if r.status is not Status.SKIPPED]
    with store.index_writer(run_id, shard_id) as index:
        for r in rows:
            index.add(r)
        part = index.flush()
    done = sum(r.status is Status.DONE for r in rows)
    get_run_logger().info("shard %s: %d done, %d failed, %d leased by other runs -> %s", shard_id, done,
                          len(rows) - done, len(leased), part)
    return ShardSummary(shard_id, len(rows), done, len(rows) - done, part, time.perf_counter() - t0, len(leased))


def invert_on_ray(todo: list[InputItem], store: RunStore, config: PipelineConfig, execution: ExecutionConfig,
                  run_id: str, storage_options: Mapping[str, Any]) -> tuple[int, int]:
    """Every shard of ``todo`` as a :func:`process_shard` task on one actor pool; returns (actor restarts,
    items left to another run that held their lease).

    Each run walks the items in its own order, so two runs started on one store at once do not move in
    lockstep over the same items: with adoption of committed attempts (``PoolSpec.adopt_committed``)
    this bounds duplicated work to the items both have in flight at the same moment.
    """
    random.Random(run_id).shuffle(todo)
    progress = Progress(total=len(todo))
    progress.artifact_id = create_progress_artifact(0.0 if todo else 100.0, key="bulk-invert-progress",
                                                    description=f"Items finished in run {run_id}")
    if not todo:
        return 0, 0
    started = ensure_ray(execution.ray_address)
    pool = ActorPool(config, PoolSpec.for_run(execution, config.inversion.stage1.batch_size, run_id), storage_options)
    try:
        shard_task = process_shard if execution.resume else process_shard.with_options(refresh_cache=True)
        futures = [shard_task.submit(f"{i:05d}", shard, store, config, run_id, pool, progress)
                   for i, shard in enumerate(shards(todo, execution.shard_size))]
        summaries = [f.result() for f in futures]
        get_run_logger().info("shards finished: %s", [(s.shard_id, s.done, s.failed) for s in summaries])
        return pool.restarts, sum(s.leased for s in summaries)
    finally:
        pool.shutdown()
        if started:
            import ray

            ray.shutdown()
