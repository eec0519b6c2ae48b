"""Flow ``bulk-invert``: list + hash inputs, drop what the store has, shard, invert on a Ray actor pool,
publish artifacts. Reads as a short script; the work lives in ``sym3dinv.pipeline`` and ``tasks/``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from prefect import Flow, flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types import SecretDict

from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig
from sym3dinv.pipeline.models import require_models
from sym3dinv.pipeline.resume import resume_fingerprint
from sym3dinv.store import RunStore, mask_secrets
from tasks.artifacts import publish_artifacts
from tasks.shards import invert_on_ray, list_inputs_task, pending_task

DEFAULT_CONFIG = PipelineConfig()
DEFAULT_EXECUTION = ExecutionConfig()


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
    leased: int = 0
    """Items another run held the lease of: left to it (no row from this run), pending for a later run."""


@flow(name="bulk-invert", flow_run_name="bulk-invert-{config.mode}-{config.preset}",
      task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=False, persist_result=False)
def bulk_invert(
    input: str,
    out: str,
    config: PipelineConfig = DEFAULT_CONFIG,
    execution: ExecutionConfig = DEFAULT_EXECUTION,
    storage_options: SecretDict | dict[str, Any] | None = None,
) -> RunSummary:
    """Invert every image under ``input`` (folder, glob, fsspec URL or dataset.json) into the store ``out``.

    ``config`` decides the outputs (its hash keys resume); ``execution`` only how the run goes (shards,
    actors, GPUs, resume). Prefect validates both before the run starts and shows their fields' docs
    in the deployment form. ``storage_options`` is a :class:`prefect.types.SecretDict`: Prefect stores flow
    parameters in its database and shows them in the UI, so the whole dict is masked there (keys may
    hold credentials). Prefer credentials from the environment (AWS_* variables, profiles, instance roles).
    """
    t0 = time.perf_counter()
    opts = _unmask(storage_options)
    store = RunStore(out, opts)
    store.check_writable()  # configuration errors fail here, before any work
    require_models(config)  # the encoder of instant/quick runs
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    generator = resume_fingerprint(store, config, execution)  # another generator's done rows: refused here
    items = list_inputs_task(input, opts, config.group_by, config.group_map)  # groups: one item each
    todo = pending_task(items, store, config.config_hash, execution.resume, execution.retry_failed, generator)
    get_run_logger().info("run %s: %d inputs, %d to do, config %s", run_id, len(items), len(todo), config.config_hash)
    restarts, leased = invert_on_ray(todo, store, config, execution, run_id, opts)
    seconds = time.perf_counter() - t0
    counts = publish_artifacts(store, run_id, config.config_hash, len(items), len(items) - len(todo), seconds, restarts)
    get_run_logger().info("run %s finished in %.1f s: %s; %d items left to other runs holding their lease", run_id,
                          seconds, counts, leased)
    return RunSummary(run_id, store.url, config.config_hash, len(items), len(items) - len(todo), len(todo),
                      counts, seconds, restarts, leased)


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

    from flows.prefect_api import run_flow_main

    run_flow_main(lambda: bulk_invert(input=sys.argv[1], out=sys.argv[2]))
