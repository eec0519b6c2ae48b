"""LPIPS-VGG speed as an inversion loss: seconds per forward+backward (gradient w.r.t. the render) at
512x512 and 256x256, batch 1 and 4, with the target's features recomputed every call (``lpips(x, y)``)
and precomputed once (``distance_to(x, target_features(y))``), and NCHW against NHWC (channels-last)
weights, interleaved (``perf.channels_last``). Prints JSON.

    .venv/bin/python benchmarks/lpips.py [--threads 2] [--repeats 2] [--sizes 512,256] [--batches 1,4]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up (allocator, oneDNN primitive creation)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs]}


def _interleaved(fns: dict[str, object], repeats: int) -> dict:
    """Medians of alternating runs (order flipped every round), so drift on the machine hits both alike."""
    names = list(fns)
    for name in names:
        fns[name]()  # type: ignore[operator]  # warm-up
    runs: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()  # type: ignore[operator]
            runs[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(v) for n, v in runs.items()}
    return {**{f"{n}_median_s": round(v, 4) for n, v in med.items()},
            f"{names[0]}_over_{names[1]}": round(med[names[0]] / med[names[1]], 3)}


def bench(size: int, batch: int, repeats: int, device: str, net: str) -> dict:
    import copy

    from sym3dinv.metrics.lpips import load_lpips

    m = load_lpips(net, device)
    m_nhwc = copy.deepcopy(m).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    render = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    target = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(device)

    def step(precomputed, net=m) -> None:  # noqa: ANN001
        x = render.clone().requires_grad_(True)
        d = net.distance_to(x, precomputed) if precomputed is not None else net(x, target.expand_as(x))
        d.sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    feats = m.target_features(target)
    feats_nhwc = m_nhwc.target_features(target)
    t0 = time.perf_counter()
    m.target_features(target)
    precompute_s = time.perf_counter() - t0
    return {
        "size": size,
        "batch": batch,
        "recompute_target": _time(lambda: step(None), repeats),
        "precomputed_target": _time(lambda: step(feats), repeats),
        "target_precompute_once_s": round(precompute_s, 3),
        "layout_precomputed_target": _interleaved(
            {"nchw": lambda: step(feats), "nhwc": lambda: step(feats_nhwc, m_nhwc)}, max(4, repeats)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sizes", default="512,256")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--net", default="vgg", choices=["vgg", "alex"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    results = [
        bench(int(s), int(b), args.repeats, args.device, args.net)
        for s in args.sizes.split(",") for b in args.batches.split(",")
    ]
    out = {
        "benchmark": f"lpips-{args.net} forward+backward w.r.t. the render",
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": cpu_name(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "results": results,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
