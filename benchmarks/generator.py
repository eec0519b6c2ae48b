"""Generator speed on CPU: forward and forward+backward (w.r.t. ws) at the full ffhqrebalanced512-128
configuration and the tiny fixture configuration. Prints JSON.

    .venv/bin/python benchmarks/generator.py [--threads 2] [--repeats 3] [--configs full,tiny]

EG3D's official code on this class of machine (fixtures/eg3d/README.md): 4.07 s forward, 9.39 s
forward+backward for the full configuration, CPU fp32, 2 threads, batch 1, neural rendering 128.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("SYM3DINV_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures")) / "eg3d"
log = logging.getLogger("benchmarks.generator")
EG3D_REF = {"forward_s": 4.07, "forward_backward_s": 9.39}


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up
    runs, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # process CPU seconds are less sensitive than wall time to other jobs sharing the cores
    return {"median_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs],
            "median_process_cpu_s": round(statistics.median(cpu), 3)}


VARIANTS = {  # name: synthesis kwargs
    "eg3d_default": {"sampling": "stochastic"},  # fused modconv in eval mode, as EG3D
    "nonfused": {"sampling": "stochastic", "fused_modconv": False},  # recommended on CPU
    "deterministic_nonfused": {"sampling": "deterministic", "fused_modconv": False},  # inversion setting
}


def bench(name: str, init_kwargs: dict, repeats: int, variants: list[str]) -> dict:
    from sym3dinv.cameras import camera_label
    from sym3dinv.generator import TriPlaneGenerator

    torch.manual_seed(0)
    G = TriPlaneGenerator(**init_kwargs).eval().requires_grad_(False)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = camera_label(0.3, -0.1)
    ws = G.mapping(z, c)
    out: dict = {"config": name, "parameters": sum(p.numel() for p in G.parameters()), "variants": {}}
    for v in variants:
        kw = VARIANTS[v]

        def fwd(kw: dict = kw) -> None:
            with torch.no_grad():
                torch.manual_seed(0)
                G(z, c, noise_mode="const", **kw)

        def fwd_bwd(kw: dict = kw) -> None:
            w = ws.detach().requires_grad_(True)
            torch.manual_seed(0)
            G.synthesis(w, c, noise_mode="const", **kw)["image"].mean().backward()

        r = {"kwargs": kw, "forward": _time(fwd, repeats), "forward_backward": _time(fwd_bwd, repeats)}
        if name == "full":
            r["eg3d_time_over_ours"] = {
                "forward": round(EG3D_REF["forward_s"] / r["forward"]["median_s"], 2),
                "forward_backward": round(EG3D_REF["forward_backward_s"] / r["forward_backward"]["median_s"], 2),
            }
        out["variants"][v] = r
        log.info("%s %s: %s", name, v, r)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default="full,tiny")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {sorted(VARIANTS)}")
    ap.add_argument("--tiny-variants", default="eg3d_default")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    configs = {
        "full": json.loads((FIXTURES / "full_manifest.json").read_text())["init_kwargs"],
        "tiny": json.loads((FIXTURES / "tiny_config.json").read_text())["init_kwargs"],
    }
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    load_before = os.getloadavg()
    results = [bench(n, configs[n], args.repeats, (args.variants if n == "full" else args.tiny_variants).split(","))
               for n in args.configs.split(",")]
    report = {
        "benchmark": "generator", "device": "cpu", "cpu": cpu_name(), "threads": args.threads,
        "torch": torch.__version__, "python": sys.version.split()[0], "load_avg_1_5_15_before": [round(x, 2) for x in load_before],
        "load_avg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        "batch": 1, "neural_rendering_resolution": 128, "output_resolution": 512,
        "eg3d_reference_full": EG3D_REF, "results": results,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
