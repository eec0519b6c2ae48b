"""How well a generator covers *unseen* heads: fit W to multi-view truth of synthheads-eval identities.

For each of the first ``--identities`` eval identities (never trained on), one w (W space, the same for
every layer, from ``w_avg``) is optimised with Adam against the world's renders at ``--fit-yaws``
(MSE + LPIPS-VGG); the fit is then rendered at held-out yaws and compared with the truth there (PSNR,
LPIPS-Alex, z-depth MAE on head pixels). A generator whose latent space holds the unseen head scores
well on the held-out views; a blurry or too-narrow one does not. Every generator gets the same
identities, cameras, steps and seed, so the per-identity differences are paired.

    .venv/bin/python benchmarks/generator_fit.py --generators synthheads,RUN/default_G.safetensors \
        --identities 8 --picture docs/synthheads/v1_v2.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv import cameras
from sym3dinv.generator import load_generator
from sym3dinv.metrics import depth_error, psnr
from sym3dinv.metrics.lpips import load_lpips
from sym3dinv.synthheads.eval_split import eval_identity
from sym3dinv.synthheads.head import Head
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import render_head


def truth(k: int, labels: torch.Tensor, res: int):
    """(image in [-1, 1], z-depth, head mask) of eval identity k at ``labels`` on black."""
    e = eval_identity(k, 1)
    r = render_head(Head(sample_head_params(e.seed, strong=True if e.strong else None)), labels, res,
                    background=(0.0, 0.0, 0.0))
    return r.rgb * 2 - 1, r.z_depth, r.mask


def fit(G, target: torch.Tensor, c: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """One w (broadcast to every layer) fitted to ``target`` at cameras ``c``; returns ws [1, K, w]."""
    vgg = load_lpips("vgg")
    w = G.backbone.mapping.w_avg.detach().clone()[None].requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    k = G.backbone.mapping.num_ws
    for _ in range(steps):
        out = G.synthesis(w[:, None].expand(c.shape[0], k, -1), c, sampling="deterministic")
        loss = F.mse_loss(out.image, target) + vgg(out.image, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w.detach()[:, None].expand(1, k, -1)


def _grid(rows: list[torch.Tensor]) -> np.ndarray:
    out = []
    for r in rows:
        x = ((r.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        out.append(np.concatenate(list(x), axis=1))
    return np.concatenate(out, axis=0)


def _ci(xs: list[float]) -> list[float]:
    """Normal-approximation 95 % interval of the mean (paired differences are per identity)."""
    if len(xs) < 2:
        return [float("nan"), float("nan")]
    m, s = statistics.fmean(xs), statistics.stdev(xs) / math.sqrt(len(xs))
    return [round(m - 1.96 * s, 4), round(m + 1.96 * s, 4)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generators", default="synthheads", help="comma-separated load_generator sources")
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--fit-yaws", default="-40,0,40", help="degrees, pitch 0")
    ap.add_argument("--heldout-yaws", default="-60,-20,20,60", help="degrees, pitch 0")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--picture", type=Path, default=None, help="PNG: per identity a truth row, then one row per generator")
    ap.add_argument("--picture-identities", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    deg = lambda s: torch.deg2rad(torch.tensor([float(v) for v in s.split(",")]))  # noqa: E731
    c_fit, c_held = cameras.camera_label(deg(args.fit_yaws), 0.0), cameras.camera_label(deg(args.heldout_yaws), 0.0)
    sources = args.generators.split(",")
    alex = load_lpips("alex")
    per: dict[str, dict[str, list[float]]] = {s: {"lpips": [], "psnr": [], "depth": []} for s in sources}
    rows: list[torch.Tensor] = []
    seconds: dict[str, float] = {s: 0.0 for s in sources}
    gens = {s: load_generator(None if s == "synthheads" else s) for s in sources}
    for k in range(args.identities):
        res = gens[sources[0]].img_resolution
        tgt_fit, _, _ = truth(k, c_fit, res)
        tgt_held, z_held, m_held = truth(k, c_held, res)
        if k < args.picture_identities:
            rows.append(tgt_held)
        for s, G in gens.items():
            torch.manual_seed(k)
            t0 = time.perf_counter()
            ws = fit(G, tgt_fit, c_fit, args.steps, args.lr)
            seconds[s] += time.perf_counter() - t0
            with torch.no_grad():
                out = G.synthesis(ws.expand(c_held.shape[0], -1, -1), c_held, sampling="deterministic")
                per[s]["lpips"].append(float(alex(out.image, tgt_held).mean()))
                per[s]["psnr"].append(float(psnr(out.image, tgt_held).mean()))
                r = out.image_depth.shape[-1]
                zp = cameras.ray_distance_to_z(out.image_depth, c_held)
                zg = F.interpolate(z_held, size=(r, r), mode="area")
                m = F.interpolate(m_held.float(), size=(r, r), mode="area") > 0.99
                per[s]["depth"].append(float(depth_error(zp, zg, m).mae.mean()))
            if k < args.picture_identities:
                rows.append(out.image)
        print(json.dumps({"identity": k, **{s: {m: round(v[-1], 4) for m, v in per[s].items()} for s in sources}}),
              flush=True)
    report: dict = {"benchmark": "generator_fit", "machine": cpu_name(), "identities": args.identities,
                    "fit_yaws_deg": args.fit_yaws, "heldout_yaws_deg": args.heldout_yaws, "steps": args.steps,
                    "generators": {}}
    for s in sources:
        report["generators"][s] = {m: round(statistics.fmean(v), 4) for m, v in per[s].items()}
        report["generators"][s]["fit_seconds_per_identity"] = round(seconds[s] / args.identities, 1)
    if len(sources) > 1:
        a, b = sources[0], sources[1]
        for m in ("lpips", "psnr", "depth"):
            d = [y - x for x, y in zip(per[a][m], per[b][m], strict=True)]
            report[f"paired_{m}_second_minus_first"] = {"mean": round(statistics.fmean(d), 4), "ci95": _ci(d)}
    if args.picture:
        from PIL import Image

        args.picture.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_grid(rows)).save(args.picture)
        report["picture"] = str(args.picture)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
