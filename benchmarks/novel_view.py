"""Novel-view quality of W+, PTI, SPI and SPI's ablations on the synthheads-eval split (METHOD.md "Baselines").

For each eval identity and input view: invert the input with each mode, then compare renders at the
split's fixed ground-truth cameras (absolute yaw -60, -30, +30, +60 deg, pitch 0) and at the input's
mirror camera with the true renders; a GT camera within ``--min-offset`` of the input is not a novel
view and is left out of the novel-view means. Paired differences against PTI (same input) with seeded
bootstrap intervals are in the summary (``_novel_view_report``). Prints JSON rows as they finish.

    .venv/bin/python benchmarks/novel_view.py --identities 12 --input-yaws 0,30,60 --preset cpu \\
        --modes w+,pti,spi --json runs/nv.json --resume --markdown runs/nv.md

Inputs: ``--input-yaws 0,30,60`` (fixed yaws; the side alternates with the identity, so both sides are
covered over the set; ``--input-pitch P`` adds a seeded pitch in [-P, P]) or ``--input-yaws stratified``
(the split's own stratified yaws and pitches, ``--inputs`` per identity). Heads: ``--heads`` picks the
variant of every identity (``split``: as the split has it; ``symmetric``; ``mild``: the split's head
without its large asymmetries (parting, uneven hair), small ones kept, the variant real photos resemble;
``strong``: forced strongly asymmetric); ``--symmetric`` / ``--asymmetric`` are ``--heads symmetric`` /
``--heads strong``. Images are rendered with a black background, the embedded generator's training domain.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _machine import cpu_name, device_name  # benchmarks/ is on sys.path when a script runs
from _novel_view_report import markdown, summarise, yaw_bucket

from sym3dinv import cameras
from sym3dinv.config.core import replace_path
from sym3dinv.config.invert import InversionConfig
from sym3dinv.config.presets import preset
from sym3dinv.generator import TriPlaneGenerator, load_generator
from sym3dinv.invert import FaceRegions, invert, render_views
from sym3dinv.invert.losses import LossFunctions, default_losses
from sym3dinv.metrics import depth_error, psnr, ssim
from sym3dinv.synthheads.eval_split import EVAL_FIRST_SEED, GT_YAWS_DEG, EvalIdentity, eval_identity
from sym3dinv.synthheads.head import LANDMARKS, Head
from sym3dinv.synthheads.params import HeadParams, sample_head_params
from sym3dinv.synthheads.tracer import render_head

BACKGROUND = (0.0, 0.0, 0.0)
HEADS = ("split", "symmetric", "mild", "strong")
BASE_MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "w+": ("w+", {}),
    "pti": ("pti", {}),
    "spi": ("spi", {}),
    # ablations: each keeps one of SPI's prior terms (stage-1 mirror + stage-2 mirror branch count as one)
    "spi-mirror-only": ("spi", {"stage2.warp": False, "stage2.depth_reg": False}),
    "spi-warps-only": ("spi", {"stage1.mirror": False, "stage2.mirror": False, "stage2.depth_reg": False}),
    "spi-depth-only": ("spi", {"stage1.mirror": False, "stage2.mirror": False, "stage2.warp": False}),
    "spi-no-warps": ("spi", {"stage2.warp": False}),
    "spi-gt-depth": ("spi", {"stage2.warp_depth": "given"}),  # warps with the true depth of the head
}
"""Mode name -> (InversionConfig.mode, overrides). Any name may end in ``-s2xN``: N times the preset's
stage-2 steps (``spi-s2x4``, ``pti-s2x4``: the "more stage-2 steps" ablation, paired with PTI at as many),
and any name may end in ``@PRESET`` to run that mode at another preset than ``--preset`` (``spi@instant``,
``spi@quick``: a speed/quality frontier in one run)."""


def mode_config(name: str, preset_name: str, seed: int, sets: dict[str, Any]) -> InversionConfig:
    """The config of a benchmark mode: the preset, the mode's switches, ``--set`` overrides, ``-s2xN``,
    ``@PRESET``."""
    name, _, other = name.partition("@")
    preset_name = other or preset_name
    base, _, mult = name.partition("-s2x")
    if base not in BASE_MODES or (mult and not mult.isdigit()):
        raise SystemExit(f"unknown mode {name!r}; known: {sorted(BASE_MODES)} (each optionally with -s2xN)")
    mode, overrides = BASE_MODES[base]
    cfg = replace(preset(preset_name, mode), seed=seed)
    for key, value in {**sets, **overrides}.items():
        cfg = replace_path(cfg, key, value)
    if mult:
        cfg = replace_path(cfg, "stage2.steps", cfg.stage2.steps * int(mult))
    return cfg


def head_params(e: EvalIdentity, variant: str) -> HeadParams:
    """The identity's head in one of :data:`HEADS` (same symmetric attributes in every variant)."""
    if variant == "strong":
        return sample_head_params(e.seed, strong=True)
    p = sample_head_params(e.seed, strong=True if e.strong else None)
    if variant == "symmetric":
        return p.symmetric()
    if variant == "mild":  # real faces: near-symmetric, small one-sided details (mole, earring, brow)
        return replace(p, parting_side=0, hair_uneven=0.0)
    if variant != "split":
        raise SystemExit(f"unknown heads variant {variant!r}; known: {HEADS}")
    return p


def symmetry_class(p: HeadParams) -> str:
    return "strong" if p.strongly_asymmetric else ("mild" if p.is_asymmetric else "symmetric")


def input_cameras(k: int, e: EvalIdentity, args: argparse.Namespace) -> torch.Tensor:
    """[I, 25] input labels of identity k: fixed yaws (side alternating with k) or the split's stratified ones."""
    if args.input_yaws == "stratified":
        return e.input_labels
    yaws = torch.tensor([float(v) for v in args.input_yaws.split(",")])
    side = -1.0 if (k % 2 and args.sides == "alternate") else 1.0
    g = torch.Generator().manual_seed(EVAL_FIRST_SEED + k)
    pitch = (2 * torch.rand(len(yaws), generator=g) - 1) * args.input_pitch
    return cameras.camera_label(torch.deg2rad(side * yaws), torch.deg2rad(pitch))


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


@dataclass
class Bench:
    """What every inversion of a run shares: the generator, the losses, the novel-view LPIPS metric."""

    G: TriPlaneGenerator
    losses: LossFunctions
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    identity: bool = True
    encoder: Any = None  # the generator's trained encoder, for modes whose preset starts from it

    @classmethod
    def load(cls, args: argparse.Namespace) -> Bench:
        from sym3dinv.encoder import load_encoder_for
        from sym3dinv.metrics import lpips

        G = load_generator(args.generator, device=args.device)
        sets = dict(kv.split("=", 1) for kv in args.set)
        needs = any(mode_config(m, args.preset, args.seed, sets).stage1.init == "encoder" for m in args.modes.split(","))
        enc = load_encoder_for(args.generator, G, args.encoder, args.device) if needs else None
        return cls(G, default_losses("vgg", args.device), lambda a, b: lpips(a, b, net="alex"), args.identity, enc)


def true_depth_fn(head: Head, res: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The head's true z-depth at any cameras (for ``spi-gt-depth``), at the generator's output size."""
    return lambda cams: render_head(head, cams, res, background=BACKGROUND).z_depth


def view_metrics(bench: Bench, views: Any, gt: Any) -> dict[str, list[float | None]]:
    """Per-camera LPIPS, PSNR, SSIM, identity and z-depth MAE of renders against the true renders."""
    target = gt.as_eg3d()
    dz = views.depth_z
    gt_z = F.interpolate(gt.z_depth, size=dz.shape[-2:], mode="area")
    gt_m = F.interpolate(gt.mask.float(), size=dz.shape[-2:], mode="area") > 0.99
    n = target.shape[0]
    return {
        "lpips": [float(v) for v in bench.metric(views.image, target).reshape(n)],
        "psnr": [float(v) for v in psnr(views.image, target)],
        "ssim": [float(v) for v in ssim(views.image, target)],
        "id": _identity(views.image, target) if bench.identity else [None] * n,
        "depth": [float(v) for v in depth_error(dz, gt_z, gt_m).mae],
    }


def invert_one(bench: Bench, cfg: InversionConfig, head: Head, c: torch.Tensor, gt_cams: torch.Tensor,
               gt: Any, inp: Any) -> dict[str, Any]:
    """Invert one input with one config; metrics at the GT cameras (+ mirror, + input) and the time."""
    res = bench.G.img_resolution
    depth_fn = true_depth_fn(head, res) if cfg.stage2.warp_depth == "given" and cfg.use_pseudo else None
    t0 = time.perf_counter()
    r = invert(bench.G, inp.as_eg3d()[0], c[0], mask=inp.face_mask[0, 0], regions=_regions(inp.landmarks[0], res),
               config=cfg, losses=bench.losses, warp_depth_fn=depth_fn, encoder=bench.encoder)
    seconds = time.perf_counter() - t0
    views = render_views(bench.G, r.ws, gt_cams, delta=r.delta)
    views = type(views)(*(t.cpu() for t in (views.image, views.image_raw, views.depth, views.depth_z)))
    per = view_metrics(bench, views, gt)
    m = r.metrics
    return {"seconds": seconds, "encoder_s": r.timings.get("encoder", 0.0), "stage1_s": r.timings["stage1"], "stage2_s": r.timings["total"] - r.timings["stage1"],
            "stage2_steps": r.stage2_steps, "input_mse": m.mse, "input_psnr": m.psnr, "input_lpips": m.lpips_alex,
            "input_ssim": m.ssim, "input_id": m.identity, "per_view": per}


def row_key(row: dict[str, Any]) -> tuple[int, str, int, str]:
    return (int(row["k"]), str(row["heads"]), int(row["input"]), str(row["mode"]))


def _finish_row(base: dict[str, Any], out: dict[str, Any], gt_names: list[str], offsets: list[float],
                min_offset: float) -> dict[str, Any]:
    """Flatten per-view metrics into ``<metric>_<camera>`` keys plus the novel/mirror/input aggregates."""
    per = out.pop("per_view")
    row = {**base, **out}
    novel = [j for j, (nm, off) in enumerate(zip(gt_names, offsets, strict=True))
             if nm.startswith("gt") and off >= min_offset]
    for metric, vals in per.items():
        for nm, v in zip(gt_names, vals, strict=True):
            row[f"{metric}_{nm}"] = v
        picked = [vals[j] for j in novel if vals[j] is not None and math.isfinite(vals[j])]
        row[f"novel_{metric}"] = sum(picked) / len(picked) if picked else None
        row[f"mirror_{metric}"] = vals[gt_names.index("mirror")]
    row["input_depth"] = per["depth"][gt_names.index("input")]
    row["novel_views"] = [gt_names[j] for j in novel]
    return row


def run(args: argparse.Namespace, bench: Bench, done: dict[tuple, dict], save: Callable[[list], None]) -> list[dict]:
    """Every (identity, heads, input, mode) not already in ``done``; ``save(rows)`` after each new row."""
    rows = list(done.values())
    res = bench.G.img_resolution
    sets = dict(kv.split("=", 1) for kv in args.set)
    modes = args.modes.split(",")
    configs = {m: mode_config(m, args.preset, args.seed, sets) for m in modes}
    gt_names = [f"gt{int(y):+d}" for y in GT_YAWS_DEG] + ["mirror", "input"]
    for k in range(args.first, args.first + args.identities):
        e = eval_identity(k, args.inputs)
        c_in = input_cameras(k, e, args)
        for variant in args.heads.split(","):
            params = head_params(e, variant)
            head = Head(params)
            for i in range(c_in.shape[0]):
                todo = [m for m in modes if (k, variant, i, m) not in done]
                if not todo:
                    continue
                c = c_in[i:i + 1]
                gt_cams = torch.cat((e.gt_labels, cameras.mirror_label(c), c))
                gt = render_head(head, gt_cams, res, background=BACKGROUND)
                inp = dataclasses.replace(gt, **{f.name: getattr(gt, f.name)[-1:] for f in dataclasses.fields(gt)})
                ypr = cameras.yaw_pitch_roll(gt_cams)
                yaw = math.degrees(float(ypr[-1, 0]))
                offsets = [math.degrees(float(torch.linalg.vector_norm(ypr[j, :2] - ypr[-1, :2])))
                           for j in range(len(gt_names))]
                base = {"k": k, "identity": e.seed, "heads": variant, "symmetry": symmetry_class(params),
                        "asymmetry_count": params.asymmetry_count, "input": i, "yaw": yaw,
                        "pitch": math.degrees(float(ypr[-1, 1])), "yaw_bucket": yaw_bucket(yaw)}
                for mode in todo:
                    out = invert_one(bench, configs[mode], head, c, gt_cams, gt, inp)
                    row = _finish_row({**base, "mode": mode}, out, gt_names, offsets, args.min_offset)
                    rows.append(row)
                    done[row_key(row)] = row
                    save(rows)
                    print(json.dumps({key: (round(v, 4) if isinstance(v, float) else v) for key, v in row.items()
                                      if not key.startswith(("ssim_", "id_", "psnr_", "depth_"))}), flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads")
    ap.add_argument("--identities", type=int, default=12)
    ap.add_argument("--first", type=int, default=0, help="first eval identity k (k %% 10 < 4 are strongly asymmetric)")
    ap.add_argument("--input-yaws", default="0,30,60",
                    help="input yaws in degrees (side alternates with the identity), or 'stratified' (the split's)")
    ap.add_argument("--sides", choices=("alternate", "as-given"), default="alternate")
    ap.add_argument("--input-pitch", type=float, default=0.0, help="seeded input pitch in [-P, P] degrees")
    ap.add_argument("--inputs", type=int, default=3, help="inputs per identity with --input-yaws stratified")
    ap.add_argument("--heads", default="split", help=f"comma list of head variants: {', '.join(HEADS)}")
    sym = ap.add_mutually_exclusive_group()
    sym.add_argument("--symmetric", dest="heads", action="store_const", const="symmetric")
    sym.add_argument("--asymmetric", dest="heads", action="store_const", const="strong")
    ap.add_argument("--modes", default="w+,pti,spi", help=f"comma list of {', '.join(BASE_MODES)} (each +'-s2xN')")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--encoder", default=None, help="encoder file for instant/quick (default: the generator's own)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, all modes")
    ap.add_argument("--min-offset", type=float, default=15.0, help="GT cameras nearer the input (deg) are not novel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples of the intervals")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (the generator's and the losses' device)")
    ap.add_argument("--no-identity", dest="identity", action="store_false", help="skip the face-embedding metric")
    ap.add_argument("--json", type=Path, default=None, help="all rows and the summary (written after every row)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --json, run only the rest")
    ap.add_argument("--markdown", type=Path, default=None)
    return ap.parse_args(argv)


RESUME_KEYS = ("generator", "preset", "set", "seed", "input_yaws", "sides", "input_pitch", "inputs", "min_offset")
"""Settings a resumed run must share with the rows it keeps (modes, identities and heads may grow)."""


def meta_of(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    cpu = cpu_name() if args.device == "cpu" else device_name(args.device)
    return {"machine": cpu, "threads": args.threads, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "command": shlex.join([sys.executable.rsplit("/", 1)[-1], "benchmarks/novel_view.py", *argv]),
            "gt_cameras": [f"yaw {int(y):+d}" for y in GT_YAWS_DEG], "load_avg": os.getloadavg()[0],
            **{k: getattr(args, k) for k in RESUME_KEYS}, "modes": args.modes, "heads": args.heads,
            "identities": args.identities, "first": args.first, "resamples": args.resamples}


def load_done(args: argparse.Namespace, meta: dict[str, Any]) -> dict[tuple, dict]:
    if not (args.resume and args.json and args.json.exists()):
        return {}
    old = json.loads(args.json.read_text())
    diff = {k: (old["meta"].get(k), meta[k]) for k in RESUME_KEYS if old["meta"].get(k) != meta[k]}
    if diff:
        raise SystemExit(f"--resume: {args.json} was run with other settings {diff}; use another --json")
    return {row_key(r): r for r in old["rows"]}


def main(argv: list[str] | None = None, bench: Bench | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    meta = meta_of(args, argv)
    done = load_done(args, meta)

    def save(rows: list[dict], summary: dict | None = None) -> None:
        if args.json:
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
            tmp.replace(args.json)

    rows = run(args, bench or Bench.load(args), done, save)
    summary = summarise(rows, args.modes.split(","), resamples=args.resamples, seed=args.seed)
    save(rows, summary)
    print(json.dumps({"benchmark": "novel_view", **meta, "summary": summary}, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(summary, meta) + "\n")
    return {"meta": meta, "rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
    raise SystemExit(0)
