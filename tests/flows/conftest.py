"""Flow tests: one temporary Prefect API for the session, a fresh 2-CPU local Ray per test, a tiny
random generator saved as a checkpoint, and a folder of its renders (with camera labels) plus bad files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tiny import make_tiny

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "sym3dinv")

FAST = {"stage1.steps": 2, "stage1.w_avg_samples": 64}
GOOD = 3
BAD = {"broken.png": "decode_error", "empty.jpg": "decode_error", "tiny.png": "too_small"}


_HARNESS_ACTIVE = "SYM3DINV_TEST_PREFECT_HARNESS"


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    # other conftests re-export this fixture (tests/reliability); pytest then holds one instance per
    # conftest, and a second harness would leave Prefect's process-wide events worker talking to the
    # first server (task runs missing from the API). So the first instance starts it, the others share it.
    if os.environ.get(_HARNESS_ACTIVE):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ[_HARNESS_ACTIVE] = "1"
        try:
            yield
        finally:
            os.environ.pop(_HARNESS_ACTIVE, None)


@pytest.fixture()
def ray_local() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sym3dinv.generator import save_generator

    return save_generator(make_tiny(0), tmp_path_factory.mktemp("gen") / "tiny.safetensors")


def make_folder(root: Path, n_good: int = GOOD, seed: int = 1) -> Path:
    """``n_good`` renders of another tiny generator with an EG3D dataset.json, plus the BAD files."""
    import torch
    from PIL import Image

    from sym3dinv.cameras import camera_label

    root.mkdir(parents=True, exist_ok=True)
    G = make_tiny(seed)
    labels = []
    for i in range(n_good):
        c = camera_label(0.4 * (i - 1), 0.05).reshape(1, 25).float()
        with torch.no_grad():
            img = G(torch.randn(1, 16), c)["image"][0]
        a = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(a)).save(root / f"head{i}.png")
        labels.append([f"head{i}.png", c[0].tolist()])
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (root / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "tiny.png")
    return root


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "in")
