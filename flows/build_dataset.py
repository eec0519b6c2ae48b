"""Flow ``build-multiview-dataset``: a finished run store -> a multi-view dataset (docs/datasets.md).

Plan (done identities not yet built), one task per shard of identities, then the EG3D dataset.json over
everything finished. The work lives in ``sym3dinv.dataset``; this file only wires it.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.bulk_invert import MaskedParametersFlow
from sym3dinv.dataset import CameraSpec, DatasetConfig, DatasetSummary, EditSpec, ShardResult, summarize
from tasks.dataset import build_shard_task, finalize_task, plan_task


@flow(name="build-multiview-dataset", flow_run_name="build-multiview-dataset-{cameras}",
      task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False, persist_result=False)
def build_multiview_dataset(
    store: str,
    out: str,
    cameras: Literal["grid", "orbit", "ffhq", "labels"] = "grid",
    yaw_range: tuple[float, float] = (-0.6, 0.6),
    pitch_range: tuple[float, float] = (-0.25, 0.25),
    n_yaw: int = 5,
    n_pitch: int = 3,
    n_views: int = 16,
    seed: int = 0,
    labels_path: str | None = None,
    resolution: int | None = None,
    depth_resolution: int | None = None,
    mask_threshold: float = 0.9,
    mesh: bool = False,
    mesh_resolution: int = 128,
    mesh_threshold: float = 10.0,
    mesh_formats: list[Literal["ply", "glb"]] | None = None,
    edits: list[dict[str, Any]] | None = None,
    identities: list[str] | None = None,
    generator: str | None = None,
    device: str = "cpu",
    shard_size: int = 8,
    storage_options: dict[str, Any] | None = None,
    out_storage_options: dict[str, Any] | None = None,
) -> DatasetSummary:
    """Render every done identity of ``store`` into ``out``; ``edits``: ``[{"name", "path", "strengths"}]``.

    Resumable: identities with a manifest in ``out`` are skipped. Shards run two at a time (threads).
    """
    log = get_run_logger()
    t0 = time.perf_counter()
    opts = dict(storage_options or {})
    oopts = dict(out_storage_options) if out_storage_options is not None else None
    config = DatasetConfig(
        cameras=CameraSpec(kind=cameras, yaw_range=tuple(yaw_range), pitch_range=tuple(pitch_range), n_yaw=n_yaw,
                           n_pitch=n_pitch, n_views=n_views, seed=seed, labels_path=labels_path),
        resolution=resolution, depth_resolution=depth_resolution, mask_threshold=mask_threshold, mesh=mesh,
        mesh_resolution=mesh_resolution, mesh_threshold=mesh_threshold, mesh_formats=tuple(mesh_formats or ("ply",)),
        edits=tuple(EditSpec(e["name"], e["path"], tuple(float(s) for s in e.get("strengths", (-1.0, 1.0))))
                    for e in (edits or [])),
        generator=generator, device=device, shard_size=shard_size)
    plan = plan_task(store, out, config, identities, opts, oopts)
    futures = [build_shard_task.submit(f"{i:05d}", store, out, config, ids, opts, oopts)
               for i, ids in enumerate(plan.shards(shard_size))]
    merged = ShardResult()
    for f in futures:
        r = f.result()
        merged.built += r.built
        merged.skipped += r.skipped
        merged.failed += r.failed
        merged.images += r.images
        merged.meshes += r.meshes
    _, total = finalize_task(out, config, oopts)
    summary = summarize(plan, merged, total, time.perf_counter() - t0)
    for line in summary.lines():
        log.info(line)
    return summary


build_multiview_dataset.__class__ = MaskedParametersFlow  # credentials in storage options never reach Prefect's DB


if __name__ == "__main__":
    import sys

    build_multiview_dataset(store=sys.argv[1], out=sys.argv[2])
