"""Flow ``build-multiview-dataset``: a finished run store -> a multi-view dataset (docs/datasets.md).

Plan (done identities not yet built), one task per shard of identities, then the EG3D dataset.json over
everything finished. The work lives in ``sym3dinv.dataset``; this file only wires it.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.bulk_invert import MaskedParametersFlow
from sym3dinv.config.dataset import DatasetConfig
from sym3dinv.dataset import DatasetSummary, ShardResult, summarize
from tasks.dataset import build_shard_task, finalize_task, plan_task

DEFAULT_CONFIG = DatasetConfig()


@flow(name="build-multiview-dataset", flow_run_name="build-multiview-dataset-{config.cameras.kind}",
      task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False, persist_result=False)
def build_multiview_dataset(
    store: str,
    out: str,
    config: DatasetConfig = DEFAULT_CONFIG,
    identities: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    out_storage_options: dict[str, Any] | None = None,
) -> DatasetSummary:
    """Render every done identity of ``store`` into ``out`` as ``config`` says (Prefect validates it before
    the run and shows its fields' docs in the deployment form; edits are ``{"name", "path", "strengths"}``).

    Resumable: identities with a manifest in ``out`` are skipped. Shards of ``config.shard_size``
    identities run two at a time (threads).
    """
    log = get_run_logger()
    t0 = time.perf_counter()
    opts = dict(storage_options or {})
    oopts = dict(out_storage_options) if out_storage_options is not None else None
    plan = plan_task(store, out, config, identities, opts, oopts)
    futures = [build_shard_task.submit(f"{i:05d}", store, out, config, ids, opts, oopts)
               for i, ids in enumerate(plan.shards(config.shard_size))]
    merged = ShardResult.merge([f.result() for f in futures])
    _, total = finalize_task(out, config, oopts)
    summary = summarize(plan, merged, total, time.perf_counter() - t0)
    for line in summary.lines():
        log.info(line)
    return summary


build_multiview_dataset.__class__ = MaskedParametersFlow  # credentials in storage options never reach Prefect's DB


if __name__ == "__main__":
    import sys

    from flows.prefect_api import run_flow_main

    run_flow_main(lambda: build_multiview_dataset(store=sys.argv[1], out=sys.argv[2]))
