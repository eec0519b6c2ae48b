"""Prefect tasks of the ``build-multiview-dataset`` flow: plan, one task per shard of identities, finalize.

Thin wrappers over ``sym3dinv.dataset``; a shard task is retried on transient failures (object store,
out of memory) and is idempotent: identities finished by an earlier attempt are skipped by manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from sym3dinv.dataset import DatasetConfig, Plan, ShardResult, build_shard, finalize_dataset, plan_dataset
from tasks.shards import transient


@task(name="plan-dataset", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient, cache_policy=NO_CACHE)
def plan_task(store: str, out: str, config: DatasetConfig, identities: list[str] | None,
              storage_options: Mapping[str, Any], out_storage_options: Mapping[str, Any] | None) -> Plan:
    plan = plan_dataset(store, out, config, identities, storage_options=storage_options,
                        out_storage_options=out_storage_options)
    get_run_logger().info("%d identities, %d already built, %d to build", len(plan.rows), len(plan.done), len(plan.todo))
    return plan


@task(name="build-dataset-shard", task_run_name="dataset-shard-{shard_id}", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=transient, cache_policy=NO_CACHE)
def build_shard_task(shard_id: str, store: str, out: str, config: DatasetConfig, ids: list[str],
                     storage_options: Mapping[str, Any], out_storage_options: Mapping[str, Any] | None) -> ShardResult:
    if config.device == "cpu":  # a shard task is where a worker thread starts rendering: its numerics
        from sym3dinv.perf import cpu_numerics

        cpu_numerics()
    res = build_shard(store, out, config, ids, storage_options=storage_options, out_storage_options=out_storage_options)
    get_run_logger().info("shard %s: %d built, %d skipped, %d failed, %d images in %.1f s", shard_id, len(res.built),
                          len(res.skipped), len(res.failed), res.images, res.seconds)
    return res


@task(name="finalize-dataset", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=transient, cache_policy=NO_CACHE)
def finalize_task(out: str, config: DatasetConfig, out_storage_options: Mapping[str, Any] | None) -> tuple[int, int]:
    n, images = finalize_dataset(out, config, out_storage_options=out_storage_options)
    get_run_logger().info("dataset.json: %d identities, %d images", n, images)
    return n, images
