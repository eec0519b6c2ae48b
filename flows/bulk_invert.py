"""Flow ``bulk-invert``: list + hash inputs, drop what the store has, shard, invert on a Ray actor pool,
publish artifacts. Reads as a short script; the work lives in ``sym3dinv.pipeline`` and ``tasks/``."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from prefect import Flow, flow, get_run_logger
from prefect.artifacts import create_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types import SecretDict

from sym3dinv.config.align import AlignConfig
from sym3dinv.pipeline import PipelineConfig, RenderSpec, shards
from sym3dinv.store import RunStore
from sym3dinv.store.store import mask_secrets
from tasks.actors import ActorPool, PoolSpec, ensure_ray, items_per_call
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
    storage_options: SecretDict | dict[str, Any] | None = None,
    ray_address: str | None = None,
    losses: Literal["lpips", "fast"] = "lpips",
    items_per_actor_call: int = 0,
) -> RunSummary:
    """Invert every image under ``input`` (folder, glob, fsspec URL or dataset.json) into the store ``out``.

    ``gpus_per_actor`` > 0 asks Ray for GPUs (CPU fallback when CUDA is missing on the worker);
    ``ray_address`` (or ``RAY_ADDRESS``) joins a cluster, otherwise a local Ray is started.
    ``items_per_actor_call``: items an actor inverts with one shared stage-1 batch (0 = the preset's
    ``stage1.batch_size`` on GPU actors, 1 on CPU ones; see ``tasks.actors.PoolSpec.items_per_call``).
    ``storage_options`` is a :class:`prefect.types.SecretDict`: Prefect stores flow parameters in its
    database and shows them in the UI, so the whole dict is masked there (keys may hold credentials).
    Prefer credentials from the environment (AWS_* variables, profiles, instance roles).
    """
    log = get_run_logger()
    t0 = time.perf_counter()
    opts = _unmask(storage_options)
    config = PipelineConfig(generator=generator, preset=preset, mode=mode, losses=losses,
                            overrides=tuple(sorted((overrides or {}).items())), align=AlignConfig(),
                            render=RenderSpec(views=tuple(tuple(map(float, v)) for v in (views or DEFAULT_VIEWS))))
    store = RunStore(out, opts)
    store.check_writable()  # configuration errors fail here, before any work
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    items = list_inputs_task(input, opts)
    todo = pending_task(items, store, config.config_hash, resume)
    # each run walks the items in its own order, so two runs started on one store at once do not move in
    # lockstep over the same items: together with adoption of committed attempts (PoolSpec.adopt_committed)
    # this bounds duplicated work to the items both have in flight at the same moment
    random.Random(run_id).shuffle(todo)
    log.info("run %s: %d inputs, %d to do, config %s", run_id, len(items), len(todo), config.config_hash)
    progress = Progress(total=len(todo))
    progress.artifact_id = create_progress_artifact(0.0 if todo else 100.0, key="bulk-invert-progress",
                                                    description=f"Items finished in run {run_id}")
    restarts = 0
    if todo:
        started = ensure_ray(ray_address)
        per_call = items_per_call(items_per_actor_call, gpus_per_actor, config.inversion.stage1.batch_size)
        pool = ActorPool(config, PoolSpec(num_actors=num_actors, num_gpus=gpus_per_actor, max_attempts=max_attempts,
                                          adopt_committed=resume, items_per_call=per_call), opts)
        try:
            shard_task = process_shard if resume else process_shard.with_options(refresh_cache=True)
            futures = [shard_task.submit(f"{i:05d}", shard, store, config, run_id, pool, progress)
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


class MaskedParametersFlow(Flow):
    """A flow whose recorded parameters never hold credentials.

    Prefect stores every flow run's parameters in its database and shows them in the UI; a plain dict
    passed as ``storage_options`` (e.g. ``{"key": ..., "secret": ...}``) would land there verbatim. The
    function still receives the real values; only the recorded copy is masked (tested in
    ``tests/reliability/test_credentials.py``)."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        out = super().serialize_parameters(parameters)
        for name, value in out.items():  # storage_options, out_storage_options, ...
            if name.endswith("storage_options") and isinstance(value, dict):
                out[name] = mask_secrets(value)
        return out

    def with_options(self, *args: Any, **kwargs: Any) -> MaskedParametersFlow:
        new = super().with_options(*args, **kwargs)
        new.__class__ = MaskedParametersFlow  # Flow.with_options builds a plain Flow
        return new  # type: ignore[return-value]


bulk_invert.__class__ = MaskedParametersFlow


def _unmask(options: SecretDict | dict[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, SecretDict):
        return dict(options.get_secret_value())
    return dict(options)


if __name__ == "__main__":
    import sys

    bulk_invert(input=sys.argv[1], out=sys.argv[2])
