"""Opacity of an embedded generator's renders vs the world's head mask: which ``mask_threshold`` fits.

Renders training identities with ``sym3dinv.dataset.render.render_identity`` (the dataset builder's own
path: ``weight_sum`` at the neural rendering resolution) at several yaws, and the SynthHeads world's
ground-truth head mask of the same seed and camera (area-averaged to the same size, head = > 0.5).
Reports the opacity distribution on head and background pixels and, per threshold, the IoU of
``alpha > t`` with the true mask and the fraction of the frame it covers. Latents: v2's identity codes
(``mapping(z_seed)``); for v1 the ``w`` of a v1 attribute set (``--v1-set``, method ``fit``).

    OMP_NUM_THREADS=1 python benchmarks/mask_threshold.py --generator synthheads-v2 --identities 8
    OMP_NUM_THREADS=1 python benchmarks/mask_threshold.py --generator synthheads-v1 --v1-set OLD.npz

Prints one JSON object (machine, wall time, per-threshold figures). pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)


def latents(generator: str, seeds: list[int], v1_set: str | None, num_ws: int, G) -> list[np.ndarray]:
    if v1_set:
        d = np.load(v1_set, allow_pickle=False)
        idx = [int(np.flatnonzero(d["seeds"] == s)[0]) for s in seeds]
        return [np.broadcast_to(d["latents"][i], (num_ws, d["latents"].shape[-1])).copy() for i in idx]
    from sym3dinv.synthheads.codes import embedded_codes

    with torch.no_grad():
        w = G.mapping(embedded_codes(generator)[seeds], torch.zeros(len(seeds), 25))
    return [x.numpy() for x in w]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads-v2")
    ap.add_argument("--identities", type=int, default=8, help="training seeds 0..N-1")
    ap.add_argument("--yaws", default="-1.0,-0.5,0,0.5,1.0", help="radians, pitch 0")
    ap.add_argument("--v1-set", default=None, help="attribute set .npz with fitted w (for generators without codes)")
    args = ap.parse_args()

    from sym3dinv.cameras import camera_label
    from sym3dinv.dataset.render import render_identity
    from sym3dinv.generator import load_generator
    from sym3dinv.synthheads import render_views

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    G = load_generator(args.generator).eval()
    seeds = list(range(args.identities))
    yaws = torch.tensor([float(y) for y in args.yaws.split(",")])
    labels = camera_label(yaws, torch.zeros_like(yaws))
    res = G.neural_rendering_resolution
    alphas, truths = [], []
    for s, ws in zip(seeds, latents(args.generator, seeds, args.v1_set, G.num_ws, G), strict=True):
        alphas.append(render_identity(G, ws, labels).alpha)  # [V, res, res]
        m = render_views(s, labels, 4 * res, background=(0.0, 0.0, 0.0)).mask.float()
        truths.append(F.interpolate(m, size=(res, res), mode="area")[:, 0].numpy() > 0.5)
    a, t = np.concatenate(alphas).ravel(), np.concatenate(truths).ravel()
    q = (0.01, 0.05, 0.5, 0.95, 0.99)
    out = {
        "generator": args.generator, "identities": len(seeds), "yaws": yaws.tolist(), "pixels": int(a.size),
        "resolution": res, "head_fraction_true": float(t.mean()),
        "alpha_head_quantiles": dict(zip(map(str, q), np.quantile(a[t], q).round(3).tolist(), strict=True)),
        "alpha_background_quantiles": dict(zip(map(str, q), np.quantile(a[~t], q).round(3).tolist(), strict=True)),
        "thresholds": {str(th): {"iou": round(float((t & (a > th)).sum() / max(1, (t | (a > th)).sum())), 4),
                                 "mask_fraction": round(float((a > th).mean()), 4),
                                 "head_recall": round(float((a > th)[t].mean()), 4),
                                 "background_kept": round(float((a > th)[~t].mean()), 4)}
                       for th in THRESHOLDS},
        "machine": cpu_name(), "torch_threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
