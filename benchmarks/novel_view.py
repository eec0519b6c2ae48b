"""Novel-view quality of W+, PTI and SPI on the synthheads-eval split (METHOD.md "Baselines").

For each eval identity and input view: invert the input with each mode, then compare renders at the
split's ground-truth cameras (absolute yaw -60, -30, +30, +60 deg) with the true renders. Prints JSON
and (with --markdown) writes the tables to a markdown file.

    .venv/bin/python benchmarks/novel_view.py --identities 4 --inputs 2 --preset cpu --markdown docs/benchmarks.md

Images are rendered with a black background, the embedded generator's training domain.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from _machine import cpu_name, device_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv import cameras
from sym3dinv.config.presets import preset
from sym3dinv.generator import load_generator
from sym3dinv.invert import FaceRegions, invert, render_views
from sym3dinv.metrics import depth_error, psnr
from sym3dinv.metrics import lpips as lpips_fn
from sym3dinv.synthheads.eval_split import GT_YAWS_DEG, eval_identity
from sym3dinv.synthheads.head import LANDMARKS, Head
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import render_head

BACKGROUND = (0.0, 0.0, 0.0)


def _regions(landmarks: torch.Tensor, size: int) -> FaceRegions:
    """Eye and mouth boxes from SynthHeads' landmarks (pixels of a ``size`` image)."""
    idx = {n: i for i, n in enumerate(LANDMARKS)}
    groups = (("eye_right_outer", "eye_right_inner"), ("eye_left_inner", "eye_left_outer"), ("mouth_right", "mouth_left"))
    boxes = []
    for names in groups:
        p = landmarks[[idx[n] for n in names]] / size
        (x0, y0), (x1, y1) = p.min(0).values.tolist(), p.max(0).values.tolist()
        g = 0.6 * max(x1 - x0, 0.05)
        boxes.append((max(0.0, x0 - g), max(0.0, y0 - g), min(1.0, x1 + g), min(1.0, y1 + g)))
    return FaceRegions(boxes=tuple(boxes))


def _identity(a: torch.Tensor, b: torch.Tensor) -> list[float | None]:
    from sym3dinv.metrics import identity_similarity

    try:
        return [float(v) for v in identity_similarity(a, b).cosine]
    except Exception:  # cartoon heads at 128 px: the face detector may not fire
        return [None] * a.shape[0]


def _bucket(yaw: float) -> str:
    y = abs(yaw)
    return "|yaw|<0.2" if y < 0.2 else ("0.2<=|yaw|<0.6" if y < 0.6 else "|yaw|>=0.6")


def run(args: argparse.Namespace) -> dict:
    G = load_generator(args.generator, device=args.device)
    res = G.img_resolution
    rows = []
    for k in range(args.first, args.first + args.identities):
        e = eval_identity(k, args.inputs)
        params = sample_head_params(e.seed, strong=True if e.strong else None)
        head = Head(params)
        gt = render_head(head, e.gt_labels, res, background=BACKGROUND)
        for i in range(args.inputs):
            c = e.input_labels[i : i + 1]
            inp = render_head(head, c, res, background=BACKGROUND)
            image = inp.as_eg3d()[0]
            yaw = float(cameras.yaw_pitch_roll(c)[0, 0])
            for mode in args.modes.split(","):
                cfg = replace(preset(args.preset, mode), seed=args.seed)
                t0 = time.perf_counter()
                r = invert(G, image, c[0], mask=inp.face_mask[0, 0], regions=_regions(inp.landmarks[0], res), config=cfg)
                seconds = time.perf_counter() - t0
                views = render_views(G, r.ws, e.gt_labels, delta=r.delta)
                views = type(views)(*(t.cpu() for t in (views.image, views.image_raw, views.depth, views.depth_z)))
                target = gt.as_eg3d()
                nv_lpips = lpips_fn(views.image, target, net="alex")
                nv_psnr = psnr(views.image, target)
                dz = views.depth_z
                gt_z = F.interpolate(gt.z_depth, size=dz.shape[-2:], mode="area")
                gt_m = F.interpolate(gt.mask.float(), size=dz.shape[-2:], mode="area") > 0.99
                derr = depth_error(dz, gt_z, gt_m).mae
                ids = _identity(views.image, target)
                m = r.metrics
                rows.append({
                    "identity": e.seed, "input": i, "yaw": yaw, "bucket": _bucket(yaw),
                    "asymmetric": bool(params.strongly_asymmetric), "mode": mode, "seconds": seconds,
                    "input_mse": m.mse, "input_lpips": m.lpips_alex, "input_ssim": m.ssim, "input_id": m.identity,
                    "stage2_steps": r.stage2_steps,
                    **{f"lpips_{int(y):+d}": float(v) for y, v in zip(GT_YAWS_DEG, nv_lpips, strict=True)},
                    **{f"psnr_{int(y):+d}": float(v) for y, v in zip(GT_YAWS_DEG, nv_psnr, strict=True)},
                    **{f"id_{int(y):+d}": v for y, v in zip(GT_YAWS_DEG, ids, strict=True)},
                    **{f"depth_{int(y):+d}": float(v) for y, v in zip(GT_YAWS_DEG, derr, strict=True)},
                })
                print(json.dumps({k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in rows[-1].items()}),
                      flush=True)
    return {"rows": rows}


def _mean(vals: list) -> float | None:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.fmean(v) if v else None


def summarise(rows: list[dict], modes: list[str]) -> dict:
    novel = [f"{m}_{int(y):+d}" for m in ("lpips", "psnr", "id", "depth") for y in GT_YAWS_DEG]
    out: dict = {}
    groups = {"all": lambda r: True}
    for b in ("|yaw|<0.2", "0.2<=|yaw|<0.6", "|yaw|>=0.6"):
        groups[b] = lambda r, b=b: r["bucket"] == b
    groups["symmetric"] = lambda r: not r["asymmetric"]
    groups["asymmetric"] = lambda r: r["asymmetric"]
    for g, pred in groups.items():
        for mode in modes:
            sel = [r for r in rows if r["mode"] == mode and pred(r)]
            if not sel:
                continue
            s = {"n": len(sel), "seconds": _mean([r["seconds"] for r in sel])}
            for key in ("input_mse", "input_lpips", "input_ssim", "input_id"):
                s[key] = _mean([r[key] for r in sel])
            for metric in ("lpips", "psnr", "id", "depth"):
                s[f"novel_{metric}"] = _mean([r[f"{metric}_{int(y):+d}"] for r in sel for y in GT_YAWS_DEG])
                for yabs in (30, 60):
                    s[f"novel_{metric}_{yabs}"] = _mean([r[f"{metric}_{s_}{yabs}"] for r in sel for s_ in "+-"])
            out.setdefault(g, {})[mode] = s
    _ = novel
    return out


def markdown(summary: dict, meta: dict) -> str:
    fmt = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["# Novel-view benchmark (synthheads-eval)", "",
             f"Machine: {meta['cpu']} ({meta['threads']} threads), torch {meta['torch']}, {meta['date']}. "
             f"Generator: {meta['generator']}. Preset `{meta['preset']}`; {meta['identities']} identities x "
             f"{meta['inputs']} input views; ground truth at absolute yaw ±30° and ±60° (pitch 0).", "",
             f"Command: `{meta['command']}`", ""]
    for g, by_mode in summary.items():
        lines += [f"## {g}", "", "| mode | n | s/image | in MSE | in LPIPS | in SSIM | in ID | nv LPIPS ±30 | nv LPIPS ±60 | "
                  "nv PSNR ±30 | nv PSNR ±60 | nv ID | nv depth MAE |", "|" + "---|" * 13]
        for mode, s in by_mode.items():
            lines.append(f"| {mode} | {s['n']} | {fmt(s['seconds'], 1)} | {fmt(s['input_mse'], 4)} | {fmt(s['input_lpips'])} | "
                         f"{fmt(s['input_ssim'])} | {fmt(s['input_id'])} | {fmt(s['novel_lpips_30'])} | "
                         f"{fmt(s['novel_lpips_60'])} | {fmt(s['novel_psnr_30'], 2)} | {fmt(s['novel_psnr_60'], 2)} | "
                         f"{fmt(s['novel_id'])} | {fmt(s['novel_depth'], 4)} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads")
    ap.add_argument("--identities", type=int, default=4)
    ap.add_argument("--first", type=int, default=0, help="first eval identity k (k %% 10 < 4 are strongly asymmetric)")
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--modes", default="w+,pti,spi")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (the generator's and the losses' device)")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    out = run(args)
    modes = args.modes.split(",")
    summary = summarise(out["rows"], modes)
    cpu = cpu_name() if args.device == "cpu" else device_name(args.device)
    meta = {"cpu": cpu, "threads": args.threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "generator": args.generator, "preset": args.preset, "identities": args.identities, "inputs": args.inputs,
            "command": "python benchmarks/novel_view.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "markdown" and v is not None),
            "load_avg": os.getloadavg()[0]}
    print(json.dumps({"benchmark": "novel_view", **meta, "summary": summary}, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(summary, meta) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
