"""The encoder's camera estimate against known SynthHeads cameras, next to the MediaPipe aligner on the same images.

Held-out synthheads-eval identities (never seen in training), rendered at 256 px on the aligner evaluation's
grey background at every yaw x pitch of a grid. The aligner gets the 256-px render (it detects, crops and
estimates, as on a photo; its pitch is reported after removing its mean bias, as ``sym3dinv align evaluate``
does); the encoder gets the render area-resized to its 128-px input (the framing an aligned crop has) and
its (yaw, pitch) head is read, raw. Errors in degrees per |yaw| bucket, and each image's signed (yaw, pitch)
errors in ``rows``; prints one JSON object.

    .venv/bin/python benchmarks/encoder_camera.py --identities 6 --generator synthheads-v2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

from sym3dinv.cameras import camera_label
from sym3dinv.synthheads.eval_split import eval_identity


def buckets(true_yaw: np.ndarray, err: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and max |error| per |yaw| bucket (0-15, 15-30, 30-45, 45-60 deg) and over all."""
    out = {}
    edges = ((0, 15), (15, 30), (30, 45), (45, 60.01))
    true_yaw = np.round(true_yaw, 4)  # 15 deg through radians is 14.999999...: bucket it as 15
    for lo, hi in edges:
        sel = (np.abs(true_yaw) >= lo) & (np.abs(true_yaw) < hi) & np.isfinite(err)
        if sel.any():
            out[f"{lo}-{int(hi)}"] = {"n": int(sel.sum()), "mean": float(np.abs(err[sel]).mean()),
                                      "max": float(np.abs(err[sel]).max())}
    ok = np.isfinite(err)
    out["all"] = {"n": int(ok.sum()), "mean": float(np.abs(err[ok]).mean()), "max": float(np.abs(err[ok]).max())}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="synthheads-v2")
    ap.add_argument("--encoder", default=None, help="encoder file (default: the generator's own)")
    ap.add_argument("--identities", type=int, default=6)
    ap.add_argument("--yaws", default="-60,-45,-30,-15,0,15,30,45,60")
    ap.add_argument("--pitches", default="-10,10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-aligner", action="store_true", help="encoder only")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    from sym3dinv.encoder import load_encoder_for
    from sym3dinv.generator import load_generator
    from sym3dinv.synthheads.dataset import render_views, to_uint8

    G = load_generator(args.generator)
    enc = load_encoder_for(args.generator, G, args.encoder)
    grid = [(math.radians(float(y)), math.radians(float(p))) for y in args.yaws.split(",") for p in args.pitches.split(",")]
    labels = camera_label(torch.tensor([g[0] for g in grid]), torch.tensor([g[1] for g in grid]))
    truth, est_enc, est_mp, enc_s, mp_s = [], [], [], 0.0, 0.0
    aligner = None
    if not args.no_aligner:
        from sym3dinv.align import FaceAligner
        from sym3dinv.config.align import AlignConfig

        aligner = FaceAligner(AlignConfig())
    for k in range(args.identities):
        seed = eval_identity(k, 1).seed
        r = render_views(seed, labels, 256)
        x = F.interpolate(r.rgb * 2 - 1, size=(enc.config.resolution,) * 2, mode="area")
        t0 = time.perf_counter()
        with torch.no_grad():
            yp = enc.net(x, camera_label(torch.zeros(len(grid)))).yaw_pitch
        enc_s += time.perf_counter() - t0
        assert yp is not None, "this encoder has no camera head"
        for i, g in enumerate(grid):
            truth.append(g)
            est_enc.append((float(yp[i, 0]), float(yp[i, 1])))
            if aligner is not None:
                from sym3dinv.errors import ItemError

                img = to_uint8(r.rgb[i])
                t1 = time.perf_counter()
                try:
                    f = aligner.align(img)
                    est_mp.append((f.yaw, f.pitch))
                except ItemError:
                    est_mp.append((math.nan, math.nan))
                mp_s += time.perf_counter() - t1
    if aligner is not None:
        aligner.close()
    t = np.degrees(np.array(truth))
    out: dict = {"benchmark": "encoder_camera", "generator": args.generator, "identities": args.identities,
                 "images": len(truth), "machine": cpu_name(), "threads": args.threads, "torch": torch.__version__,
                 "date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "benchmarks/encoder_camera.py",
                                                                         *(argv if argv is not None else sys.argv[1:])]),
                 "encoder_ms_per_image": 1000 * enc_s / len(truth)}
    e = np.degrees(np.array(est_enc)) - t
    out["encoder"] = {"yaw": buckets(t[:, 0], e[:, 0]), "pitch": buckets(t[:, 0], e[:, 1]),
                      "pitch_bias_deg": float(e[:, 1].mean())}
    if est_mp:
        m = np.degrees(np.array(est_mp)) - t
        bias = float(np.nanmean(m[:, 1]))
        out["aligner"] = {"ms_per_image": 1000 * mp_s / len(truth), "detected": int(np.isfinite(m[:, 0]).sum()), "yaw": buckets(t[:, 0], m[:, 0]),
                          "pitch": buckets(t[:, 0], m[:, 1] - bias), "pitch_bias_deg": bias}
    out["rows"] = [{"yaw": float(t[i, 0]), "pitch": float(t[i, 1]), "encoder_err": [float(v) for v in e[i]],
                    **({"aligner_err": [float(v) for v in m[i]]} if est_mp else {})} for i in range(len(t))]
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
