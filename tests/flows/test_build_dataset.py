"""The ``build-multiview-dataset`` flow on the real temporary Prefect API: one task per shard, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flows.build_dataset import build_multiview_dataset
from sym3dinv.config.dataset import CameraSpec, DatasetConfig
from tests.dataset.helpers import write_store


def _tiny_ws(ckpt: str, n: int) -> list[np.ndarray]:
    import torch

    from sym3dinv.cameras import camera_label
    from sym3dinv.generator import load_generator

    G = load_generator(ckpt)
    with torch.no_grad():
        ws = G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0)),
                       camera_label(0.0).expand(n, -1))
    return [w.numpy() for w in ws]


def test_flow_builds_a_dataset_per_shard_and_resumes(tmp_path: Path, tiny_checkpoint: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    store = str(tmp_path / "store")
    ids = write_store(store, _tiny_ws(tiny_checkpoint, 3), generator=tiny_checkpoint)
    out = tmp_path / "ds"
    config = {"cameras": {"kind": "orbit", "n_views": 2}, "resolution": 32, "shard_size": 2, "mesh": True,
              "mesh_resolution": 16, "mesh_threshold": 0.0}  # as a deployment's parameters arrive (JSON)
    state = build_multiview_dataset(store=store, out=str(out), config=config, return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert (summary.identities, summary.built, summary.images) == (3, 3, 6) and not summary.failed
    labels = json.loads((out / "rgb" / "dataset.json").read_text())["labels"]
    assert sorted({rel.split("/")[0] for rel, _ in labels}) == sorted(ids)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        assert client.read_flow_run(state.state_details.flow_run_id).name == "build-multiview-dataset-orbit"
    names = sorted(r.name for r in runs)
    assert [n for n in names if n.startswith("dataset-shard-")] == ["dataset-shard-00000", "dataset-shard-00001"]
    assert all(r.state.is_completed() for r in runs)

    again = build_multiview_dataset(store=store, out=str(out), config=DatasetConfig(
        cameras=CameraSpec(kind="orbit", n_views=2), resolution=32, shard_size=2, mesh=True, mesh_resolution=16,
        mesh_threshold=0.0))  # the same config as objects: the same build hash, nothing to redo
    assert (again.built, again.skipped, again.images, again.new_images) == (0, 3, 6, 0)
