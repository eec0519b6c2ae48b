"""Flow ``bulk-invert``: list + hash inputs, drop what the store has, shard, invert on a Ray actor pool,
publish artifacts. Reads as a short script; the work lives in ``sym3dinv.pipeline`` and ``tasks/``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from sym3dinv.config.align import AlignConfig
from sym3dinv.pipeline import PipelineConfig, RenderSpec, shards
from sym3dinv.store import RunStore
from tasks.actors import ActorPool, PoolSpec, ensure_ray
from tasks.artifacts import publish_artifacts
from tasks.shards import Progress, list_inputs_task, pending_task, process_shard

DEFAULT_VIEWS: list[tuple[float, float]] = [(0.0, 0.0), (-0.5, 0.0), (0.5, 0.0)]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    store: str
    config_hash: str
    inputs: int
    skipped: int
    processed: int
    counts: dict[str, int]
    seconds: float
    actor_restarts: int


@flow(name="bulk-invert", flow_run_name="bulk-invert-{mode}-{preset}", task_runner=ThreadPoolTaskRunner(max_workers=4),
      log_prints=False, persist_result=False)
def bulk_invert(
    input: str,
    out: str,
    generator: str = "synthheads",
    mode: Literal["spi", "pti", "w+"] = "spi",
    preset: str = "paper",
    overrides: dict[str, Any] | None = None,
    views: list[tuple[float, float]] | None = None,
    shard_size: int = 16,
    num_actors: int = 2,
    gpus_per_actor: float = 0.0,
    resume: bool = True,
    max_attempts: int = 3,
    storage_options: dict[str, Any] | None = None,
    ray_address: str | None = None,
    losses: Literal["lpips", "fast"] = "lpips",
) -> RunSummary:
    """Invert every image under ``input`` (folder, glob, fsspec URL or dataset.json) into the store ``out``.

    ``gpus_per_actor`` > 0 asks Ray for GPUs (CPU fallback when CUDA is missing on the worker);
    ``ray_address`` (or ``RAY_ADDRESS``) joins a cluster, otherwise a local Ray is started.
    """
    log = get_run_logger()
    t0 = time.perf_counter()
    opts = dict(storage_options or {})
    config = PipelineConfig(generator=generator, preset=preset, mode=mode, losses=losses,
                            overrides=tuple(sorted((overrides or {}).items())), align=AlignConfig(),
                            render=RenderSpec(views=tuple(tuple(map(float, v)) for v in (views or DEFAULT_VIEWS))))
    store = RunStore(out, opts)
    store.check_writable()  # configuration errors fail here, before any work
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    items = list_inputs_task(input, opts)
    todo = pending_task(items, store, config.config_hash, resume)
    log.info("run %s: %d inputs, %d to do, config %s", run_id, len(items), len(todo), config.config_hash)
    progress = Progress(total=len(todo))
    progress.artifact_id = create_progress_artifact(0.0 if todo else 100.0, key="bulk-invert-progress",
                                                    description=f"Items finished in run {run_id}")
    restarts = 0
    if todo:
        started = ensure_ray(ray_address)
        pool = ActorPool(config, PoolSpec(num_actors=num_actors, num_gpus=gpus_per_actor, max_attempts=max_attempts), opts)
        try:
            futures = [process_shard.submit(f"{i:05d}", shard, store, config, run_id, pool, progress)
                       for i, shard in enumerate(shards(todo, shard_size))]
            summaries = [f.result() for f in futures]
            restarts = pool.restarts
        finally:
            pool.shutdown()
            if started:
                import ray

                ray.shutdown()
        log.info("shards finished: %s", [(s.shard_id, s.done, s.failed) for s in summaries])
    seconds = time.perf_counter() - t0
    counts = publish_artifacts(store, run_id, config.config_hash, len(items), len(items) - len(todo), seconds, restarts)
    log.info("run %s finished in %.1f s: %s", run_id, seconds, counts)
    return RunSummary(run_id, store.url, config.config_hash, len(items), len(items) - len(todo), len(todo),
                      counts, seconds, restarts)


if __name__ == "__main__":
    import sys

    bulk_invert(input=sys.argv[1], out=sys.argv[2])
