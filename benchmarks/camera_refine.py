"""Stage-1 camera refinement on SynthHeads inputs whose cameras are off by known errors (3-8 deg).

For each synthheads-eval identity: its first input view, the camera perturbed in yaw and pitch by
3-8 deg (random signs, seeded), inverted once with ``stage1.refine_camera`` off and once on (and, with
``--true``, at the true camera). Reports the camera error before/after and the novel-view LPIPS (AlexNet,
ground truth at absolute yaw +-30/+-60 deg) of the stage-1 pivot. Stage 2 is off (``--stage2-steps``):
the refinement acts in stage 1 and the comparison stays cheap on CPU. Prints JSON.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/camera_refine.py --identities 4 --preset cpu
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import replace

import torch
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv.config.core import replace_path
from sym3dinv.config.presets import preset
from sym3dinv.generator import load_generator
from sym3dinv.invert import invert, render_views
from sym3dinv.invert.camera_refine import camera_error_deg, refine_labels
from sym3dinv.metrics import lpips as lpips_fn
from sym3dinv.synthheads.eval_split import eval_identity
from sym3dinv.synthheads.head import Head
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import render_head

BACKGROUND = (0.0, 0.0, 0.0)


def perturbation(k: int, lo: float, hi: float) -> torch.Tensor:
    """(d_yaw, d_pitch, 0) in radians: magnitudes uniform in [lo, hi] deg, random signs (seeded by k)."""
    g = torch.Generator().manual_seed(1000 + k)
    mag = lo + (hi - lo) * torch.rand(2, generator=g)
    sign = torch.where(torch.rand(2, generator=g) < 0.5, -1.0, 1.0)
    return torch.deg2rad(torch.cat((mag * sign, torch.zeros(1))))[None]


def run(args: argparse.Namespace) -> list[dict]:
    G = load_generator(args.generator)
    res = G.img_resolution
    base = replace(preset(args.preset, "spi"), seed=args.seed)
    base = replace_path(base, "stage2.steps", args.stage2_steps)
    for kv in args.set:
        key, _, value = kv.partition("=")
        base = replace_path(base, key, json.loads(value))
    rows = []
    for k in range(args.first, args.first + args.identities):
        e = eval_identity(k, 1)
        head = Head(sample_head_params(e.seed, strong=True if e.strong else None))
        gt = render_head(head, e.gt_labels, res, background=BACKGROUND).as_eg3d()
        c_true = e.input_labels[:1]
        image = render_head(head, c_true, res, background=BACKGROUND).as_eg3d()[0]
        d = perturbation(k, args.min_deg, args.max_deg)
        c_bad = refine_labels(c_true, d).detach()
        variants = [("perturbed", c_bad, False), ("refined", c_bad, True)] + ([("true", c_true, False)] if args.true else [])
        for name, c, on in variants:
            cfg = replace_path(base, "stage1.refine_camera", on)
            t0 = time.perf_counter()
            r = invert(G, image, c[0], config=cfg)
            seconds = time.perf_counter() - t0
            views = render_views(G, r.ws, e.gt_labels, delta=r.delta)
            nv = lpips_fn(views.image.cpu(), gt, net="alex")
            err_in = camera_error_deg(c, c_true)[0]
            err_out = camera_error_deg(r.camera, c_true)[0]
            rows.append({"identity": e.seed, "variant": name, "yaw_true_deg": math.degrees(float(
                torch.atan2(c_true[0, 3], c_true[0, 11]))), "perturbation_deg": torch.rad2deg(d[0, :2]).tolist(),
                "err_before_deg": err_in[:2].tolist(), "err_after_deg": err_out.tolist(),
                "novel_lpips": float(nv.mean()), "input_lpips": r.metrics.lpips_alex, "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for v in sorted({r["variant"] for r in rows}):
        sel = [r for r in rows if r["variant"] == v]
        out[v] = {"n": len(sel),
                  "yaw_err_before": statistics.fmean(r["err_before_deg"][0] for r in sel),
                  "pitch_err_before": statistics.fmean(r["err_before_deg"][1] for r in sel),
                  "yaw_err_after": statistics.fmean(r["err_after_deg"][0] for r in sel),
                  "pitch_err_after": statistics.fmean(r["err_after_deg"][1] for r in sel),
                  "roll_err_after": statistics.fmean(r["err_after_deg"][2] for r in sel),
                  "novel_lpips": statistics.fmean(r["novel_lpips"] for r in sel),
                  "input_lpips": statistics.fmean(r["input_lpips"] for r in sel),
                  "seconds": statistics.fmean(r["seconds"] for r in sel)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads")
    ap.add_argument("--identities", type=int, default=4)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--stage2-steps", type=int, default=0)
    ap.add_argument("--min-deg", type=float, default=3.0)
    ap.add_argument("--max-deg", type=float, default=8.0)
    ap.add_argument("--true", action="store_true", help="also invert at the true camera")
    ap.add_argument("--set", action="append", default=[], help="inversion override path=JSON, e.g. stage1.camera_lr=0.004")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rows = run(args)
    meta = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "load_avg": os.getloadavg()[0], "args": vars(args)}
    print(json.dumps({"benchmark": "camera_refine", **meta, "summary": summary(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
