"""Out of memory on a too-large batch: the batch is split in halves and retried down to single items;
an item that still does not fit is recorded as ``out_of_memory``, the others finish."""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
from collections.abc import Sequence
from pathlib import Path

import torch

from sym3dinv.batching import run_splitting
from sym3dinv.errors import OutOfMemoryItemError
from sym3dinv.store import RunStore, Status, failure_row, item_id_from_bytes
from sym3dinv.store.schema import IndexRow

CAP_ELEMENTS = 4 * 1024


def _gpu_like_batch(sizes: Sequence[int]) -> list[float]:
    """Stacks a batch padded to its largest item, like an image batch; raises the real CUDA OOM class
    when the padded batch exceeds a device budget of CAP_ELEMENTS floats."""
    need = len(sizes) * max(sizes)
    if need > CAP_ELEMENTS:
        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {need * 4} bytes")
    x = torch.stack([torch.nn.functional.pad(torch.arange(n, dtype=torch.float32), (0, max(sizes) - n))
                     for n in sizes])
    return x.sum(dim=1).tolist()


def test_oom_batch_is_split_and_the_item_that_never_fits_is_recorded(tmp_path: Path,
                                                                     figures: dict[str, object]) -> None:
    sizes = [100, 200, 300, 400, 500, 600, 700, 5000, 800, 900, 1000, 1100, 50, 60, 70, 80]  # 5000 never fits
    report = run_splitting(_gpu_like_batch, sizes)
    assert report.failed == [7]
    assert isinstance(report.results[7], OutOfMemoryItemError)
    for i, n in enumerate(sizes):
        if i != 7:
            assert report.results[i] == n * (n - 1) / 2  # the real sums, in input order
    assert report.calls[0] == 16 and report.calls.count(1) >= 1 and report.ooms >= 4
    # every item gets exactly one row; the one that still fails is `out_of_memory`
    store = RunStore(str(tmp_path / "s"))
    with store.index_writer("oom", "s0") as iw:
        for i, res in enumerate(report.results):
            iid = item_id_from_bytes(f"item-{i}".encode())
            if isinstance(res, OutOfMemoryItemError):
                iw.add(failure_row(iid, res, config_hash="c" * 16))
            else:
                iw.add(IndexRow(id=iid, status=Status.SKIPPED, config_hash="c" * 16, metrics={"sum": float(res)}))
    summary = {(r["status"], r["error_class"]): r["count"] for r in store.summary().to_pylist()}
    assert summary == {("skipped", None): 15, ("failed", "out_of_memory"): 1}
    figures.update(items=len(sizes), calls=report.calls, ooms=report.ooms, recorded_oom=len(report.failed))


def _capped_child(out: str) -> None:
    """Runs under a real address-space cap: torch's CPU allocator fails for a too-large batch."""
    torch.set_num_threads(1)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (600 << 20), resource.RLIM_INFINITY))
    mb = 1 << 20

    def batch(sizes_mb: Sequence[int]) -> list[float]:
        buf = torch.ones(sum(sizes_mb) * mb // 4, dtype=torch.float32)  # the batch really allocates
        out, pos = [], 0
        for s in sizes_mb:
            out.append(float(buf[pos:pos + s * mb // 4].sum()))
            pos += s * mb // 4
        del buf
        return out

    sizes = [100, 100, 100, 100, 100, 100, 900, 100]  # 1.6 GB at once; 900 MB alone exceeds the cap
    rep = run_splitting(batch, sizes)
    msgs = [str(r) for r in rep.results if isinstance(r, OutOfMemoryItemError)]
    Path(out).write_text(json.dumps({"calls": rep.calls, "failed": rep.failed, "ooms": rep.ooms, "messages": msgs,
                                     "ok": [r for r in rep.results if not isinstance(r, OutOfMemoryItemError)]}))


def test_real_allocator_failure_under_an_address_space_cap(tmp_path: Path, figures: dict[str, object]) -> None:
    out = tmp_path / "r.json"
    p = mp.get_context("fork").Process(target=_capped_child, args=(str(out),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    r = json.loads(out.read_text())
    assert r["failed"] == [6] and len(r["ok"]) == 7
    assert all(v == (100 << 20) // 4 for v in r["ok"])  # 100 MB of float32 ones each
    assert r["calls"][0] == 8 and r["ooms"] >= 3
    figures.update(items=8, calls=r["calls"], ooms=r["ooms"], recorded_oom=len(r["failed"]))
