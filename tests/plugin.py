"""The test suite's one fixtures plugin (loaded by ``tests/conftest.py``): everything several test folders
share, in one place, so no conftest or helper keeps its own copy.

- numerics: the session is the entry point, so it sets them (flush denormals, at most two torch threads);
- a tiny random EG3D-topology generator (:func:`make_tiny`: 128 px output from 16 px neural renders, 8+8
  depth samples; a step takes a fraction of a second on CPU) and the same saved as a checkpoint;
- cheap losses: a multi-scale L1 stand-in for LPIPS, injected into the pipeline by name
  (``PipelineConfig(losses=CHEAP_LOSSES)``, imported on Ray workers too) or as a fixture;
- test hooks that live nowhere in the product: :data:`HANGING_LOSSES` makes the first worker that
  computes a loss write its pid and hang, so a test can SIGKILL a real Ray worker mid-item;
- a folder of tiny-generator renders with an EG3D ``dataset.json`` plus bad files (:func:`make_folder`), and
  one with a folder per person (:func:`make_group_folder`, for ``--group-by folder``);
- a fake store writer (:func:`write_done_item`) for tests that need done items without inverting;
- a moto S3 server for the session (:func:`s3_endpoint`, bucket ``runs``; :func:`s3_options`);
- the Prefect test harness (one per session) and a fresh local Ray per test, for flow tests.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("SYM3DINV_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))

TINY: dict[str, Any] = {
    "z_dim": 16, "w_dim": 32, "c_dim": 25, "img_resolution": 128, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 256, "channel_max": 16,
    "fused_modconv_default": "inference_only", "num_fp16_res": 0, "sr_num_fp16_res": 0, "conv_clamp": None,
    "sr_kwargs": {}, "triplane_resolution": 16, "triplane_channels": 32, "neural_rendering_resolution": 16,
    "sr_channels": [8, 8],
    "rendering_kwargs": {"superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
                         "depth_resolution": 8, "depth_resolution_importance": 8},
}

CHEAP_LOSSES = "tests.plugin:make_cheap_losses"
"""``PipelineConfig.losses`` of the cheap stand-in (no LPIPS weights to load or run)."""
HANGING_LOSSES = "tests.plugin:make_hanging_losses"
"""Cheap losses whose first use, in the first worker to get there, writes the pid to ``$HANG_MARKER_ENV``
and hangs (a fault hook: the test kills that process)."""
HANG_MARKER_ENV = "SYM3DINV_TEST_HANG_MARKER"

FAST = {"stage1.steps": 2, "stage1.w_avg_samples": 64}
"""Inversion overrides that keep a tiny-generator item at a second or two."""
GOOD = 3
BAD = {"broken.png": "decode_error", "empty.jpg": "decode_error", "tiny.png": "too_small"}
"""The bad files of :func:`make_folder` and the error class each one gets."""

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "sym3dinv")


# --- session numerics, shared reference data, slow tests -------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _cpu_numerics() -> None:
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(min(2, os.cpu_count() or 1))  # denormals make CPU convs many times slower


@pytest.fixture(scope="session")
def eg3d_fixtures() -> Path:
    p = SHARED_FIXTURES / "eg3d"
    if not p.is_dir():
        pytest.fail(f"shared EG3D fixtures not found at {p} (set SYM3DINV_SHARED_FIXTURES)")
    return p


@pytest.fixture(scope="session")
def lpips_fixtures() -> Path:
    p = SHARED_FIXTURES / "lpips"
    if not p.is_dir():
        pytest.fail(f"shared LPIPS fixtures not found at {p} (set SYM3DINV_SHARED_FIXTURES)")
    return p


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests (minutes each) run only when asked for with ``-m slow`` (or any -m naming it)."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- the tiny generator ------------------------------------------------------------------------------------
def make_tiny(seed: int = 0, noise_strength: float | None = None) -> Any:
    """A frozen tiny generator with seeded weights; ``noise_strength`` makes the noise buffers matter."""
    import torch

    from sym3dinv.generator import TriPlaneGenerator

    torch.manual_seed(seed)
    G = TriPlaneGenerator(**TINY).eval().requires_grad_(False)
    if noise_strength is not None:
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(noise_strength)
    return G


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """:func:`make_tiny` (seed 0) saved as a sym3dinv checkpoint: what ``PipelineConfig.generator`` names."""
    from sym3dinv.generator import save_generator

    return save_generator(make_tiny(0), tmp_path_factory.mktemp("gen") / "tiny.safetensors")


def tiny_pipeline(generator: str, overrides: Mapping[str, Any] | None = None, **fields: Any) -> Any:
    """The pipeline config of most end-to-end tests: smoke preset, ``w+``, cheap losses, :data:`FAST`."""
    from sym3dinv.config.pipeline import PipelineConfig

    base = {"preset": "smoke", "mode": "w+", "losses": CHEAP_LOSSES, **fields}
    return PipelineConfig(generator=generator, overrides=dict(FAST if overrides is None else overrides), **base)


# --- cheap losses (and the hanging ones) --------------------------------------------------------------------
def cheap_perceptual(x: Any, y: Any) -> Any:
    """Multi-scale L1 stand-in for LPIPS: differentiable, [N], zero iff equal."""
    import torch.nn.functional as F

    total = (x - y).abs().mean(dim=(1, 2, 3))
    for _ in range(2):
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        total = total + (x - y).abs().mean(dim=(1, 2, 3))
    return total / 3


def make_cheap_losses(perceptual: Any = cheap_perceptual, metric: Any = None) -> Any:
    """A :class:`~sym3dinv.invert.losses.LossFunctions` with ``perceptual`` as LPIPS (the loss, and the
    reported metric unless ``metric`` is given)."""
    from sym3dinv.invert.losses import LossFunctions, patch_contextual_loss

    return LossFunctions(perceptual=perceptual, contextual=patch_contextual_loss, lpips_metric=metric or perceptual)


def make_hanging_losses() -> Any:
    """Cheap losses; the first call in the first process to claim ``$SYM3DINV_TEST_HANG_MARKER`` (created
    exclusively, so only one does) writes its pid there and sleeps: a worker stuck mid-item."""
    marker = os.environ.get(HANG_MARKER_ENV)

    def perceptual(x: Any, y: Any) -> Any:
        if marker:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(600)
        return cheap_perceptual(x, y)

    return make_cheap_losses(perceptual)


@pytest.fixture(scope="session")
def cheap_losses() -> Any:
    return make_cheap_losses()


def wait_for_pid(marker: Path, timeout: float = 120.0) -> int:
    """The pid a hanging worker wrote to ``marker`` (see :data:`HANGING_LOSSES`)."""
    deadline = time.monotonic() + timeout
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return int(marker.read_text())


# --- inputs and stores ------------------------------------------------------------------------------------
def make_folder(root: Path, n_good: int = GOOD, seed: int = 1) -> Path:
    """``n_good`` renders of another tiny generator with an EG3D dataset.json, plus the :data:`BAD` files."""
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


def make_group_folder(root: Path, groups: Mapping[str, int], corrupt: Sequence[str] = (), seed: int = 1) -> Path:
    """One folder per person (``--group-by folder``): ``groups[name]`` renders of a tiny generator in
    ``root/<name>/`` (each its own random head and camera), known cameras in one ``root/dataset.json``, and
    a corrupt ``broken.png`` in each folder named in ``corrupt``."""
    import torch
    from PIL import Image

    from sym3dinv.cameras import camera_label

    G = make_tiny(seed)
    labels = []
    gen = torch.Generator().manual_seed(seed)
    for g, (name, n) in enumerate(sorted(groups.items())):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            c = camera_label(0.3 * (i - 1), 0.05 * g).reshape(1, 25).float()
            with torch.no_grad():
                img = G(torch.randn(1, 16, generator=gen), c)["image"][0]
            a = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(a)).save(root / name / f"photo{i}.png")
            labels.append([f"{name}/photo{i}.png", c[0].tolist()])
        if name in corrupt:
            (root / name / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png at all")
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    return root


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "in")


def write_done_item(store: Any, index: Any, item_id: str, *, ws: np.ndarray, attempt: int = 0,
                    metrics: Mapping[str, Any] | None = None, renders: Mapping[str, np.ndarray] | None = None,
                    config: Mapping[str, Any] | None = None, **row: Any) -> Any:
    """A fake finished item without inverting: latents (and renders) committed through the real item
    writer, ``metrics.json`` holding ``metrics`` plus ``{"config": config}``, and its done row added to
    the open ``index`` writer. ``row`` sets further :class:`IndexRow` fields (``config_hash`` defaults to
    ``"fake"``). Returns the committed attempt."""
    from sym3dinv.store import IndexRow, Status

    metrics = dict(metrics or {})
    with store.item_writer(item_id, attempt) as w:
        w.write_latents({"ws": np.asarray(ws, np.float32)})
        for name, img in (renders or {}).items():
            w.write_render(name, img)
        w.write_metrics({**metrics, **({"config": dict(config)} if config is not None else {})})
    fields = {"config_hash": "fake", "metrics": metrics, **row}
    index.add_done(w.committed, IndexRow(id=item_id, status=Status.DONE, **fields))
    return w.committed


# --- a real S3 API ------------------------------------------------------------------------------------------
def s3_options(endpoint: str) -> dict[str, object]:
    """s3fs options for the moto server (explicit test keys; never real credentials)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for the session (threaded, in this process; Ray workers reach it over HTTP) with an
    empty bucket ``runs``; test keys in the environment while it runs."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="runs")
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# --- orchestration -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One temporary Prefect API for the session (the flow test folders use it autouse)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture()
def ray_local() -> Iterator[None]:
    """A fresh 2-CPU local Ray for one test."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
