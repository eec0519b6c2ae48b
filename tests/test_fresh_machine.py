"""The command line's flow runs on a fresh, busy machine (issue 20): no warm ``~/.prefect``, a CPU hog beside it.

Not under tests/flows/ on purpose: those tests share one ``prefect_test_harness`` API; a new user's
first ``sym3dinv demo`` instead starts Prefect's temporary server on an empty ``PREFECT_HOME``, whose
database creation and migrations took longer than Prefect's 20-s default on 2 cores. These tests run the
real ``sym3dinv invert`` in a subprocess with empty ``PREFECT_HOME`` and ``HOME`` and no Prefect settings
from this session, so that class of failure shows here. (Checked on 2026-12-03, 2-vCPU machine: with today's test, the code before flows/prefect_api.py failed with
"Timed out while attempting to connect to ephemeral Prefect API server" twice; it passes now.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from flows.prefect_api import EPHEMERAL_STARTUP_TIMEOUT_S
from sym3dinv.config.pipeline import PipelineConfig
from sym3dinv.errors import DecodeError
from sym3dinv.store import RunStore, failure_row, item_id_from_bytes
from tests.plugin import make_folder, write_done_item

REPO = Path(__file__).resolve().parents[1]
BUSY_NICENESS = 5
"""The command runs this far below the busy processes: a machine whose other work comes first. Equal
priority was not enough to make the old code fail here (the server's first start fit Prefect's 20 s)."""


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without any Prefect setting, with empty PREFECT_HOME and HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for name in ("home", "prefect"):
        (tmp_path / name).mkdir()
    env.update(HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(REPO),
               OMP_NUM_THREADS="1", COLUMNS="200", **extra)
    return env


def _invert(tmp_path: Path, env: dict[str, str], timeout: float, niceness: int = 0) -> subprocess.CompletedProcess[str]:
    """``sym3dinv invert`` in a subprocess; ``niceness`` > 0 runs it below the busy processes' priority."""
    cmd = [*(["nice", "-n", str(niceness)] if niceness else []), sys.executable, "-m", "flows.cli", "invert", str(tmp_path / "in"), "--out", str(tmp_path / "store"),
           "--preset", "smoke", "--mode", "w+", "--actors", "1"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _store_with_everything_done(tmp_path: Path) -> RunStore:
    """An input folder (a render, a broken file) and a store where the render is done and the broken file
    failed for good (decode_error) under the command's config: the run needs Prefect and no Ray (nothing to
    invert), so what it measures is Prefect's start on a cold machine, and the "nothing to do" answer."""
    folder = make_folder(tmp_path / "in", n_good=1)
    for extra in ("empty.jpg", "tiny.png", "dataset.json"):
        (folder / extra).unlink()
    config_hash = PipelineConfig(preset="smoke", mode="w+").config_hash  # what the command line builds
    store = RunStore(str(tmp_path / "store"))
    good, bad = (item_id_from_bytes((folder / n).read_bytes()) for n in ("head0.png", "broken.png"))
    with store.index_writer("earlier-run", "00000") as index:
        write_done_item(store, index, good, ws=np.zeros((14, 32), np.float32), config_hash=config_hash,
                        renders={"input": np.full((8, 8, 3), 90, np.uint8)}, source_uri=str(folder / "head0.png"),
                        metrics={"psnr": 25.0, "lpips_alex": 0.3, "mse": 0.01})
        index.add(failure_row(bad, DecodeError("cannot decode broken.png"), config_hash=config_hash,
                              source_uri=str(folder / "broken.png")))
    return store


@contextmanager
def _busy_cpu() -> Iterator[None]:
    """One process spinning per core for as long as the block runs (a busy machine): with every core taken
    the server's first start gets a fraction of a core, as on a machine running another job. One hog was
    not enough to make today's code fail on an otherwise idle 2-core machine (it started in 24 s)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_invert_on_a_cold_busy_machine_and_nothing_to_do(tmp_path: Path) -> None:
    """Starved by a higher-priority job on the development machine, a first server start alone took 439 s
    (niced, as the suite runs), hence the generous timeout; with Prefect's 20-s default it failed after 101 s."""
    store = _store_with_everything_done(tmp_path)
    env = _fresh_env(tmp_path)
    t0 = time.monotonic()
    with _busy_cpu():
        proc = _invert(tmp_path, env, timeout=EPHEMERAL_STARTUP_TIMEOUT_S + 600, niceness=BUSY_NICENESS)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, (seconds, proc.stdout[-2000:], proc.stderr[-4000:])
    print(f"cold busy invert: {seconds:.0f} s")
    assert "2 inputs, 2 already done, 0 processed" in proc.stdout, proc.stdout
    assert "nothing to do: all 2 inputs were already done" in proc.stdout, proc.stdout
    sheet = next(line for line in proc.stdout.splitlines() if line.startswith("contact sheet")).rsplit(" ", 1)[-1]
    assert Path(sheet).stat().st_size > 100 and Path(sheet).parent.parent.parent == tmp_path / "store"
    assert [r["status"] for r in store.latest().to_pylist()].count("done") == 1  # nothing redone
    assert any((tmp_path / "prefect").iterdir())  # the temporary server's database went into the fresh home


def test_unreachable_api_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A user's PREFECT_API_URL that nothing answers: no server started, no traceback, what to do."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    make_folder(tmp_path / "in", n_good=1)
    proc = _invert(tmp_path, _fresh_env(tmp_path, PREFECT_API_URL=url), timeout=120)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-3000:])
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and url in err and "prefect server start" in err
    assert not (tmp_path / "store").exists()  # nothing ran
