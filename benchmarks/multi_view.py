"""Several photos of one person (issue 19): novel-view quality of one head inverted from 1, 2 and 3 photos.

For each synthheads-eval identity, the head is rendered at ``--photo-yaws`` (the side alternates with the
identity, as in ``novel_view.py``). It is inverted from each photo alone (``invert_group`` of one photo,
which equals ``invert``), from the first two photos, and from all three. Every result is scored at the
same evaluation cameras: the split's ground-truth cameras (yaw -60, -30, +30, +60 deg) and the mirror
camera of each photo, minus any within ``--min-offset`` of a photo of the identity (those are not novel
for the 3-photo group). So the 1, 2 and 3 photo rows of an identity share the same views and pair.

    .venv/bin/python benchmarks/multi_view.py --identities 8 --preset cpu --json runs/mv.json --resume \\
        --markdown runs/mv.md

Prints one JSON object; its key ``"photos"`` maps ``"1"``, ``"2"``, ``"3"`` to the means of ``nv_lpips``,
``nv_psnr``, ``input_lpips`` and ``seconds`` (``"1"`` also the best single photo per identity, by novel-view
LPIPS, as ``best_nv_lpips`` / ``best_nv_psnr``). ``"paired"`` holds the differences with bootstrap
intervals over identities, in all identities and per symmetry class of the head.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _machine import cpu_name, device_name  # benchmarks/ is on sys.path when a script runs
from _novel_view_report import REAL_PHOTOS
from novel_view import BACKGROUND, Bench, _regions, head_params, mode_config, symmetry_class, view_metrics

from sym3dinv import cameras
from sym3dinv.generator import load_generator
from sym3dinv.invert import invert_group, render_views
from sym3dinv.invert.losses import default_losses
from sym3dinv.metrics.stats import paired_bootstrap
from sym3dinv.synthheads.eval_split import GT_YAWS_DEG, eval_identity
from sym3dinv.synthheads.head import Head
from sym3dinv.synthheads.tracer import render_head

CONDITIONS = {"1:0": (0,), "1:1": (1,), "1:2": (2,), "2": (0, 1), "3": (0, 1, 2)}
"""Row condition -> the photos (indices into ``--photo-yaws``) it inverts from."""


def photo_cameras(k: int, args: argparse.Namespace) -> torch.Tensor:
    yaws = torch.tensor([float(v) for v in args.photo_yaws.split(",")])
    side = -1.0 if (k % 2 and args.sides == "alternate") else 1.0
    return cameras.camera_label(torch.deg2rad(side * yaws), torch.zeros(len(yaws)))


def eval_cameras(c_photos: torch.Tensor, gt: torch.Tensor, min_offset: float) -> tuple[torch.Tensor, list[str]]:
    """The GT and mirror cameras at least ``min_offset`` degrees (yaw/pitch) from every photo."""
    cands = torch.cat((gt, cameras.mirror_label(c_photos)))
    names = [f"gt{int(y):+d}" for y in GT_YAWS_DEG] + [f"mirror{j}" for j in range(c_photos.shape[0])]
    yp = cameras.yaw_pitch_roll(cands)[:, :2]
    yp_in = cameras.yaw_pitch_roll(c_photos)[:, :2]
    keep = []
    for j in range(cands.shape[0]):
        near = torch.rad2deg(torch.linalg.vector_norm(yp_in - yp[j], dim=1)).min()
        dup = any(torch.allclose(cands[j], cands[i], atol=1e-4) for i in keep)
        if float(near) >= min_offset and not dup:
            keep.append(j)
    return cands[keep], [names[j] for j in keep]


def run(args: argparse.Namespace, bench: Bench, done: dict[tuple, dict], save: Any) -> list[dict]:
    rows = list(done.values())
    res = bench.G.img_resolution
    cfg = mode_config(args.mode, args.preset, args.seed, dict(kv.split("=", 1) for kv in args.set))
    for k in range(args.first, args.first + args.identities):
        todo = [c for c in CONDITIONS if (k, c) not in done]
        if not todo:
            continue
        e = eval_identity(k, 3)
        params = head_params(e, args.heads)
        head = Head(params)
        c_ph = photo_cameras(k, args)
        c_ev, ev_names = eval_cameras(c_ph, e.gt_labels, args.min_offset)
        photos = render_head(head, c_ph, res, background=BACKGROUND)
        truth = render_head(head, c_ev, res, background=BACKGROUND)
        for cond in todo:
            idx = list(CONDITIONS[cond])
            t0 = time.perf_counter()
            r = invert_group(bench.G, photos.as_eg3d()[idx], c_ph[idx], masks=photos.face_mask[idx, 0],
                             regions=[_regions(photos.landmarks[i], res) for i in idx], config=cfg,
                             losses=bench.losses, encoder=bench.encoder)
            seconds = time.perf_counter() - t0
            views = render_views(bench.G, r.ws, c_ev, delta=r.delta)
            views = type(views)(*(t.cpu() for t in (views.image, views.image_raw, views.depth, views.depth_z)))
            per = view_metrics(bench, views, truth)
            row = {"k": k, "identity": e.seed, "symmetry": symmetry_class(params), "condition": cond,
                   "photos": len(idx), "photo_yaws": [args.photo_yaws.split(",")[i] for i in idx],
                   "eval_views": ev_names, "seconds": seconds, "stage2_steps": r.stage2_steps,
                   "input_lpips": r.metrics.lpips_alex, "input_psnr": r.metrics.psnr,
                   "member_input_lpips": [m.lpips_alex for m in r.member_metrics],
                   "nv_lpips": statistics.fmean(per["lpips"]), "nv_psnr": statistics.fmean(per["psnr"]),
                   "nv_depth": statistics.fmean(per["depth"]),
                   **{f"lpips_{n}": v for n, v in zip(ev_names, per["lpips"], strict=True)}}
            rows.append(row)
            done[(k, cond)] = row
            save(rows)
            print(json.dumps({key: (round(v, 4) if isinstance(v, float) else v) for key, v in row.items()}), flush=True)
    return rows


def _m(vals: list[Any]) -> float | None:
    v = [float(x) for x in vals if x is not None and math.isfinite(float(x))]
    return statistics.fmean(v) if v else None


def _photos(rows: list[dict]) -> dict[str, Any]:
    """The ``photos`` table of a set of rows: means per photo count, and the best single photo."""
    out: dict[str, Any] = {}
    for n in (1, 2, 3):
        sel = [r for r in rows if r["photos"] == n]
        if sel:
            out[str(n)] = {key: _m([r[key] for r in sel]) for key in ("nv_lpips", "nv_psnr", "input_lpips", "seconds")}
            out[str(n)]["n_rows"] = len(sel)
    best = _best_single(rows)
    if best and "1" in out:
        out["1"]["best_nv_lpips"] = _m([r["nv_lpips"] for r in best.values()])
        out["1"]["best_nv_psnr"] = _m([r["nv_psnr"] for r in best.values()])
    return out


def _best_single(rows: list[dict]) -> dict[int, dict]:
    """Per identity, its single-photo row with the lowest novel-view LPIPS (an oracle choice)."""
    best: dict[int, dict] = {}
    for r in rows:
        if r["photos"] == 1 and (r["k"] not in best or r["nv_lpips"] < best[r["k"]]["nv_lpips"]):
            best[r["k"]] = r
    return best


def _paired(rows: list[dict], resamples: int, seed: int) -> dict[str, Any]:
    """2 vs best 1, 3 vs 2, 3 vs best 1 and 2 vs mean 1, per identity (lower LPIPS is better)."""
    best = _best_single(rows)
    by = {(r["k"], r["photos"]): r for r in rows if r["photos"] > 1}
    mean1 = {k: {"nv_lpips": _m([r["nv_lpips"] for r in rows if r["k"] == k and r["photos"] == 1]),
                 "nv_psnr": _m([r["nv_psnr"] for r in rows if r["k"] == k and r["photos"] == 1])} for k in best}
    pairs = {"2_vs_best1": (2, best), "3_vs_best1": (3, best), "2_vs_mean1": (2, mean1),
             "3_vs_2": (3, {k: by[(k, 2)] for k in best if (k, 2) in by})}
    out: dict[str, Any] = {}
    for name, (n, ref) in pairs.items():
        ks = [k for k in ref if (k, n) in by]
        if not ks:
            continue
        out[name] = {m: vars(paired_bootstrap([by[(k, n)][m] for k in ks], [ref[k][m] for k in ks],
                                              resamples=resamples, seed=seed)) for m in ("nv_lpips", "nv_psnr")}
    return out


def summarise(rows: list[dict], resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    buckets = {"all": rows, **{c: [r for r in rows if r["symmetry"] == c] for c in ("symmetric", "mild", "strong")}}
    out: dict[str, Any] = {}
    for name, sel in buckets.items():
        if sel:
            out[name] = {"identities": len({r["k"] for r in sel}), "photos": _photos(sel),
                         "paired": _paired(sel, resamples, seed)}
    secs = out.get("all", {}).get("photos", {})
    if all(str(n) in secs for n in (1, 2, 3)):  # linear growth: seconds per photo stays flat
        out["seconds_per_photo"] = {str(n): secs[str(n)]["seconds"] / n for n in (1, 2, 3)}
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"`{meta['command']}` on {meta['machine']} ({meta['threads']} threads), {meta['date']}", "",
             "| bucket | ids | photos | novel LPIPS | novel PSNR | input LPIPS | s / group |", "|---|---|---|---|---|---|---|"]
    for b, s in summary.items():
        if b == "seconds_per_photo":
            continue
        for n, p in s["photos"].items():
            lp = f"{p['nv_lpips']:.3f}" + (f" (best single {p['best_nv_lpips']:.3f})" if "best_nv_lpips" in p else "")
            lines.append(f"| {b} | {s['identities']} | {n} | {lp} | {p['nv_psnr']:.2f} | "
                         f"{(p['input_lpips'] or float('nan')):.3f} | {p['seconds']:.0f} |")
    lines += ["", "| bucket | comparison | novel LPIPS diff [95 % CI] | relative | novel PSNR diff [95 % CI] |",
              "|---|---|---|---|---|"]
    for b, s in summary.items():
        for name, d in (s.get("paired") or {}).items() if isinstance(s, dict) else ():
            lp, ps = d["nv_lpips"], d["nv_psnr"]
            lines.append(f"| {b} | {name} (n={lp['n']}) | {lp['diff']:+.4f} [{lp['lo']:+.4f}, {lp['hi']:+.4f}] | "
                         f"{lp['rel_pct']:+.1f} % [{lp['rel_lo']:+.1f}, {lp['rel_hi']:+.1f}] | "
                         f"{ps['diff']:+.2f} [{ps['lo']:+.2f}, {ps['hi']:+.2f}] |")
    if "seconds_per_photo" in summary:
        sp = summary["seconds_per_photo"]
        lines += ["", "Seconds per photo: " + ", ".join(f"{n} photos {v:.0f} s" for n, v in sp.items()) + "."]
    return "\n".join(lines + ["", REAL_PHOTOS])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads")
    ap.add_argument("--first", type=int, default=0, help="first eval identity k (k %% 10 < 4 are strongly asymmetric)")
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--photo-yaws", default="0,30,60", help="the three photos' yaws (deg; the side alternates)")
    ap.add_argument("--sides", choices=("alternate", "as-given"), default="alternate")
    ap.add_argument("--heads", default="split", help="head variant: split, symmetric, mild, strong (novel_view.py)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--mode", default="spi", help="a novel_view.py mode (spi, pti, w+, ablations, @PRESET)")
    ap.add_argument("--encoder", default=None, help="encoder file for instant/quick (default: the generator's own)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--min-offset", type=float, default=15.0, help="eval cameras nearer a photo (deg) are left out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="rows and summary, written after every row")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --json")
    ap.add_argument("--markdown", type=Path, default=None)
    return ap.parse_args(argv)


RESUME_KEYS = ("generator", "photo_yaws", "sides", "heads", "preset", "mode", "set", "min_offset", "seed")


def main(argv: list[str] | None = None, bench: Bench | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    meta = {"machine": cpu_name() if args.device == "cpu" else device_name(args.device), "threads": args.threads,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "command": shlex.join(["python", "benchmarks/multi_view.py", *argv]),
            **{k: getattr(args, k) for k in RESUME_KEYS}, "first": args.first, "identities": args.identities}
    done: dict[tuple, dict] = {}
    if args.resume and args.json and args.json.exists():
        old = json.loads(args.json.read_text())
        diff = {k: (old["meta"].get(k), meta[k]) for k in RESUME_KEYS if old["meta"].get(k) != meta[k]}
        if diff:
            raise SystemExit(f"--resume: {args.json} was run with other settings {diff}; use another --json")
        done = {(r["k"], r["condition"]): r for r in old["rows"]}

    def save(rows: list[dict], summary: dict | None = None) -> None:
        if args.json:
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
            tmp.replace(args.json)

    if bench is None:
        from sym3dinv.encoder import load_encoder_for
        from sym3dinv.metrics import lpips

        G = load_generator(args.generator, device=args.device)
        cfg = mode_config(args.mode, args.preset, args.seed, dict(kv.split("=", 1) for kv in args.set))
        enc = load_encoder_for(args.generator, G, args.encoder, args.device) if cfg.stage1.init == "encoder" else None
        bench = Bench(G, default_losses("vgg", args.device), lambda a, b: lpips(a, b, net="alex"), False, enc)
    rows = run(args, bench, done, save)
    summary = summarise(rows, args.resamples, args.seed)
    save(rows, summary)
    all_ = summary.get("all", {})
    print(json.dumps({"benchmark": "multi_view", **meta, "photos": all_.get("photos", {}),
                      "paired": all_.get("paired", {}), "summary": summary}, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(summary, meta) + "\n")
    return {"meta": meta, "rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
    raise SystemExit(0)
