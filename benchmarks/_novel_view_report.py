"""Summary and markdown of ``novel_view.py`` rows: per-bucket means, paired differences against PTI.

Buckets: all inputs, each input |yaw| bucket (0, 30, 60 deg), each symmetry class of the head
(``symmetric``: no one-sided detail; ``mild``: small ones only (mole, earring, a raised brow) or one large
one; ``strong``: two or more, one of them large), and class x |yaw| when a run has several classes.
Differences are ``mode - pti`` on the same input (identity, head variant, input view), with a bootstrap
over identities (an identity's inputs share its head, so they are not independent draws).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from sym3dinv.metrics.stats import paired_bootstrap

YAW_BUCKETS = ("0", "30", "60")
CLASSES = ("symmetric", "mild", "strong")
MEANS = ("novel_lpips", "novel_psnr", "novel_ssim", "novel_depth", "novel_id", "mirror_lpips", "input_lpips",
         "input_psnr", "input_ssim", "input_depth", "seconds", "stage2_steps")
PAIRED = {"novel_lpips": True, "novel_psnr": False, "novel_ssim": False, "novel_depth": True, "novel_id": False,
          "mirror_lpips": True, "input_lpips": True, "input_psnr": False}
"""Metrics compared per pair -> lower is better."""
REAL_PHOTOS = ("Real photos resemble the `mild` bucket (near-symmetric heads with small one-sided details); "
               "`strong` is the stress case for the symmetry prior, `symmetric` its best case.")


def yaw_bucket(yaw_deg: float) -> str:
    """Nearest of 0, 30, 60 degrees of |yaw| (boundaries at 15 and 45)."""
    y = abs(yaw_deg)
    return "0" if y < 15 else ("30" if y < 45 else "60")


def _mean(vals: list[Any]) -> float | None:
    v = [float(x) for x in vals if x is not None and math.isfinite(float(x))]
    return statistics.fmean(v) if v else None


def groups(rows: list[dict[str, Any]]) -> dict[str, Callable[[dict[str, Any]], bool]]:
    """Bucket name -> predicate, for the buckets this run has rows in."""
    have_y = {r["yaw_bucket"] for r in rows}
    have_c = {r["symmetry"] for r in rows}
    out: dict[str, Callable[[dict[str, Any]], bool]] = {"all": lambda r: True}
    for y in (b for b in YAW_BUCKETS if b in have_y):
        out[f"|yaw| {y}"] = lambda r, y=y: r["yaw_bucket"] == y
    for c in (c for c in CLASSES if c in have_c):
        out[c] = lambda r, c=c: r["symmetry"] == c
    if len(have_c) > 1:
        for c in (c for c in CLASSES if c in have_c):
            for y in (b for b in YAW_BUCKETS if b in have_y):
                out[f"{c}, |yaw| {y}"] = lambda r, c=c, y=y: r["symmetry"] == c and r["yaw_bucket"] == y
    return out


def summarise(rows: list[dict[str, Any]], modes: list[str], *, resamples: int = 10_000, seed: int = 0,
              reference: str = "pti") -> dict[str, Any]:
    """``{bucket: {"means": {mode: {...}}, "vs_pti": {mode: {metric: PairedDiff dict}}}}``."""
    out: dict[str, Any] = {}
    for name, pred in groups(rows).items():
        sel = [r for r in rows if pred(r)]
        means = {}
        for mode in modes:
            mr = [r for r in sel if r["mode"] == mode]
            if mr:
                means[mode] = {"n": len(mr), **{k: _mean([r.get(k) for r in mr]) for k in MEANS}}
        entry: dict[str, Any] = {"means": means, "vs_" + reference: {}}
        ref = {(r["k"], r["heads"], r["input"]): r for r in sel if r["mode"] == reference}
        for mode in (m for m in modes if m != reference and m in means and ref):
            pairs = [(r, ref[key]) for r in sel if r["mode"] == mode
                     and (key := (r["k"], r["heads"], r["input"])) in ref]
            diffs = {}
            for metric in PAIRED:
                a = [_nan(p[0].get(metric)) for p in pairs]
                b = [_nan(p[1].get(metric)) for p in pairs]
                d = paired_bootstrap(a, b, clusters=[p[0]["k"] for p in pairs], resamples=resamples, seed=seed)
                diffs[metric] = {**d.as_dict(), "verdict": d.verdict(PAIRED[metric], (mode, reference))}
            entry["vs_" + reference][mode] = diffs
        out[name] = entry
    return out


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _f(v: float | None, d: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


def _ci(d: dict[str, Any], digits: int = 3) -> str:
    if not d["n"]:
        return "–"
    return f"{d['diff']:+.{digits}f} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}]"


def _pct(d: dict[str, Any]) -> str:
    if not d["n"] or math.isnan(d["rel_pct"]):
        return "–"
    return f"{d['rel_pct']:+.1f} % [{d['rel_lo']:+.1f}, {d['rel_hi']:+.1f}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bucket's "|yaw|" inside a table cell


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = ["# Novel-view benchmark (synthheads-eval)", "",
             f"Machine: {meta['machine']} ({meta['threads']} threads), torch {meta['torch']}, {meta['date']}; "
             f"load average at start {meta['load_avg']:.1f}. Generator: `{meta['generator']}`. Preset "
             f"`{meta['preset']}`" + (f" with `--set {' '.join(meta['set'])}`" if meta["set"] else "") + ". "
             f"Input yaws {meta['input_yaws']} (sides {meta['sides']}, pitch ±{meta['input_pitch']}°); heads "
             f"`{meta['heads']}`; ground truth at {', '.join(meta['gt_cameras'])} (pitch 0), GT cameras within "
             f"{meta['min_offset']}° of the input left out of the novel-view means; the mirror camera separately.",
             "", REAL_PHOTOS, "", f"Command: `{meta['command']}`", "",
             f"Paired differences are mode − PTI on the same input, mean with a 95 % bootstrap interval over "
             f"identities ({meta['resamples']} resamples, seed {meta['seed']}); % is relative to PTI's mean; "
             "\"no difference\" when the interval contains 0. LPIPS is LPIPS-Alex (lower is better).", "",
             "## Means per bucket", "",
             "| bucket | mode | n | novel LPIPS | novel PSNR | novel SSIM | novel depth MAE | mirror LPIPS | "
             "input LPIPS | input PSNR | input depth MAE | s/image | stage-2 steps |", "|" + "---|" * 13]
    for bucket, entry in summary.items():
        for mode, s in entry["means"].items():
            lines.append(f"| {_cell(bucket)} | {mode} | {s['n']} | {_f(s['novel_lpips'])} | {_f(s['novel_psnr'], 2)} | "
                         f"{_f(s['novel_ssim'])} | {_f(s['novel_depth'], 4)} | {_f(s['mirror_lpips'])} | "
                         f"{_f(s['input_lpips'])} | {_f(s['input_psnr'], 2)} | {_f(s['input_depth'], 4)} | "
                         f"{_f(s['seconds'], 1)} | {_f(s['stage2_steps'], 0)} |")
    comps = sorted({m for e in summary.values() for m in e.get("vs_pti", {})})
    for mode in comps:
        lines += ["", f"## {mode} − pti (paired)", "",
                  "| bucket | n | novel LPIPS diff [95 % CI] | novel LPIPS % [CI] | verdict | novel PSNR diff | "
                  "novel depth diff | mirror LPIPS % | input LPIPS % [CI] | input verdict |", "|" + "---|" * 10]
        for bucket, entry in summary.items():
            d = entry["vs_pti"].get(mode)
            if d is None:
                continue
            nl, il = d["novel_lpips"], d["input_lpips"]
            lines.append(f"| {_cell(bucket)} | {nl['n']} | {_ci(nl)} | {_pct(nl)} | {nl['verdict']} | "
                         f"{_ci(d['novel_psnr'], 2)} | {_ci(d['novel_depth'], 4)} | {_pct(d['mirror_lpips'])} | "
                         f"{_pct(il)} | {il['verdict']} |")
    return "\n".join(lines)
