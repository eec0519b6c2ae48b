"""Speed/quality frontier of the presets from ``novel_view.py`` JSON files (rows of several presets).

Each file's rows are labelled ``MODE@PRESET`` (a mode that names its preset keeps it; otherwise the file's
``--preset``). Per label: seconds per image, input-view LPIPS and PSNR, novel-view LPIPS at the +-30 and
+-60 deg ground-truth cameras (those that are novel for the input) and over all novel views. Paired
differences against a reference label on the inputs both have (same identity, head variant and input yaw),
with a bootstrap over identities. Prints one JSON object; ``--markdown`` writes the table.

    python benchmarks/frontier.py docs/benchmarks/frontier_v2_mild.json docs/benchmarks/novel_view_v2_fast_mild.json \\
        --reference spi@cpu --markdown runs/frontier.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from _novel_view_report import _mean  # benchmarks/ is on sys.path when a script runs

from sym3dinv.metrics.stats import paired_bootstrap


def label(row: dict[str, Any], preset: str) -> str:
    return row["mode"] if "@" in row["mode"] else f"{row['mode']}@{preset}"


def key(row: dict[str, Any]) -> tuple[int, str, int]:
    return int(row["k"]), str(row["heads"]), round(float(row["yaw"]))


def side_lpips(row: dict[str, Any], deg: int) -> float | None:
    """Mean LPIPS of the novel ground-truth cameras at |yaw| = deg (the input's own camera is not novel)."""
    vals = [row[f"lpips_gt{s}{deg}"] for s in "+-" if f"gt{s}{deg}" in row["novel_views"]]
    return statistics.fmean(vals) if vals else None


METRICS = {
    "seconds": lambda r: r["seconds"],
    "encoder_s": lambda r: r.get("encoder_s"),
    "input_lpips": lambda r: r["input_lpips"],
    "input_psnr": lambda r: r["input_psnr"],
    "novel_lpips_30": lambda r: side_lpips(r, 30),
    "novel_lpips_60": lambda r: side_lpips(r, 60),
    "novel_lpips": lambda r: r["novel_lpips"],
    "novel_psnr": lambda r: r["novel_psnr"],
}


def frontier(files: list[Path], reference: str, resamples: int = 10_000) -> dict[str, Any]:
    rows: dict[str, dict[tuple, dict[str, Any]]] = {}
    meta = []
    for f in files:
        d = json.loads(f.read_text())
        meta.append({k: d["meta"].get(k) for k in ("command", "machine", "threads", "date", "load_avg")})
        for r in d["rows"]:
            rows.setdefault(label(r, d["meta"]["preset"]), {})[key(r)] = r
    out: dict[str, Any] = {"files": [str(f) for f in files], "meta": meta, "reference": reference, "presets": {}}
    ref = rows.get(reference, {})
    for name, by_key in rows.items():
        entry: dict[str, Any] = {"n": len(by_key), **{m: _mean([f(r) for r in by_key.values()]) for m, f in METRICS.items()}}
        common = sorted(set(by_key) & set(ref))
        if name != reference and common:
            for m in ("novel_lpips", "novel_lpips_30", "novel_lpips_60", "input_lpips", "novel_psnr"):
                a = [METRICS[m](by_key[k]) for k in common]
                b = [METRICS[m](ref[k]) for k in common]
                pairs = [(x, y, k[0]) for x, y, k in zip(a, b, common, strict=True) if x is not None and y is not None]
                if len(pairs) < 2:
                    continue
                d = paired_bootstrap([p[0] for p in pairs], [p[1] for p in pairs], clusters=[p[2] for p in pairs],
                                     resamples=resamples)
                base = _mean([p[1] for p in pairs]) or float("nan")
                entry[f"vs_{reference}_{m}"] = {"n": len(pairs), "diff": d.diff, "lo": d.lo, "hi": d.hi,
                                                "pct": 100 * d.diff / base}
        out["presets"][name] = entry
    return out


def markdown(fr: dict[str, Any]) -> str:
    def f(v: Any, d: int = 3) -> str:
        return "–" if v is None else f"{v:.{d}f}"

    ref = fr["reference"]
    lines = [f"| preset | n | s/image | input LPIPS | input PSNR | novel LPIPS ±30° | novel LPIPS ±60° | novel LPIPS all | "
             f"novel LPIPS − {ref} (95 % CI) |", "|---|---|---|---|---|---|---|---|---|"]
    order = sorted(fr["presets"].items(), key=lambda kv: kv[1]["seconds"] or 0)
    for name, e in order:
        d = e.get(f"vs_{ref}_novel_lpips")
        cmp = "reference" if name == ref else ("–" if d is None else
                                                f"{d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] ({d['pct']:+.1f} %, n={d['n']})")
        lines.append(f"| {name} | {e['n']} | {f(e['seconds'], 1)} | {f(e['input_lpips'])} | {f(e['input_psnr'], 2)} | "
                     f"{f(e['novel_lpips_30'])} | {f(e['novel_lpips_60'])} | {f(e['novel_lpips'])} | {cmp} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--reference", default="spi@cpu")
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    fr = frontier(args.files, args.reference, args.resamples)
    print(json.dumps(fr, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(fr) + "\n")
    return fr


if __name__ == "__main__":
    main()
