"""Dataset-builder fixtures: finished run stores, built once per session.

- ``tiny_store``: the real per-item pipeline (``ItemProcessor``, PTI smoke preset, 1 + 1 steps) run
  on two renders of a tiny random generator: latents + a real generator delta, as the bulk flow writes.
- ``synth_store``: two items written directly with ``RunStore.item_writer`` holding latents of the
  embedded SynthHeads generator (real head geometry), no delta: for meshes and depth checks.
"""

from __future__ import annotations

import pytest

from tests.dataset.helpers import make_tiny_store, synth_ws, write_store


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: str) -> str:
    return make_tiny_store(tmp_path_factory.mktemp("tinystore"), tiny_checkpoint)


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("synthstore") / "store")
    write_store(url, synth_ws())
    return url


TINY_EDIT_STRENGTHS = (-2.0, 2.0)


@pytest.fixture(scope="session")
def tiny_direction(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A unit W direction for the tiny generator (w_dim 32), saved as .npy."""
    import numpy as np

    d = np.random.default_rng(0).normal(size=32).astype(np.float32)
    path = tmp_path_factory.mktemp("dirs") / "bright.npy"
    np.save(path, d / np.linalg.norm(d))
    return str(path)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_store: str, tiny_direction: str):
    """The tiny store built once: 3 x 2 grid at 64 px, one edit at two strengths, meshes (ply + glb)."""
    from sym3dinv.dataset import CameraSpec, DatasetConfig, EditSpec, build_dataset

    cfg = DatasetConfig(cameras=CameraSpec(kind="grid", n_yaw=3, n_pitch=2), resolution=64, mesh=True,
                        mesh_resolution=24, mesh_threshold=0.0, mesh_formats=("ply", "glb"),
                        edits=(EditSpec("bright", tiny_direction, TINY_EDIT_STRENGTHS),))
    out = tmp_path_factory.mktemp("tinyds") / "ds"
    summary = build_dataset(tiny_store, str(out), cfg)
    return out, cfg, summary
