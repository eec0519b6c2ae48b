"""Quality of the embedded SynthHeads generator: held-out views of training identities, and random samples.

Training identities' codes come from the training run's newest checkpoint; each identity is rendered at
cameras it was never trained on and compared with the world's ground truth (PSNR, LPIPS-alex, z-depth
MAE on head pixels). Prints JSON; ``--samples PNG`` writes a grid of random heads G(z, c).

    .venv/bin/python benchmarks/default_generator.py RUN_DIR [--identities 16] [--samples docs/synthheads/samples.png]
    .venv/bin/python benchmarks/default_generator.py RUN_DIR --weights RUN_DIR/ema-02000.safetensors  # one snapshot

``--weights`` scores one of the run's per-checkpoint EMA snapshots with the identity codes saved beside it
(``<stem>_codes.safetensors``), so the best step can be chosen after training.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sym3dinv import cameras
from sym3dinv.generator import load_generator
from sym3dinv.metrics import depth_error, psnr
from sym3dinv.metrics import lpips as lpips_fn
from sym3dinv.synthheads.train import render_synthheads


def _grid(images: torch.Tensor, cols: int) -> np.ndarray:
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(x[i : i + cols]), axis=1) for i in range(0, len(x), cols)]
    return np.concatenate(rows, axis=0)


def training_codes(saved: torch.Tensor | dict) -> torch.Tensor:
    """z of every training identity from a checkpoint: v1 stores the tensor, v2 the IdentityCodes state."""
    if isinstance(saved, torch.Tensor):
        return saved
    from sym3dinv.synthheads.codes import IdentityCodes

    n, a = saved["attributes"].shape
    codes = IdentityCodes(torch.randn(n, a), saved["residual"].shape[1])
    codes.load_state_dict(saved)
    with torch.no_grad():
        return codes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="training output directory (ckpt-*.pt, default_G.safetensors)")
    ap.add_argument("--identities", type=int, default=16)
    ap.add_argument("--samples", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=None,
                    help="score this snapshot (e.g. RUN/ema-02000.safetensors) with its _codes file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    weights = args.weights or args.run / "default_G.safetensors"
    G = load_generator(weights)
    snap_codes = weights.with_name(weights.stem + "_codes.safetensors")
    if args.weights is not None and snap_codes.is_file():
        from safetensors.torch import load_file

        ckpt, codes = snap_codes, load_file(str(snap_codes))["z"]
    else:
        ckpt = sorted(args.run.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[-1]
        codes = training_codes(torch.load(ckpt, weights_only=True)["codes"])
    # held-out cameras: yaws between and beyond the stratified training ones, pitch 0
    held = cameras.camera_label(torch.deg2rad(torch.tensor([-50.0, -20.0, 0.0, 20.0, 50.0])), 0.0)
    res = G.img_resolution
    psnrs, lps, depths = [], [], []
    with torch.no_grad():
        for i in range(args.identities):
            ws = G.mapping(codes[i : i + 1], torch.zeros(1, 25)).expand(held.shape[0], -1, -1)
            out = G.synthesis(ws, held, sampling="deterministic")
            rgb, z, mask = render_synthheads(i, held, res)
            target = rgb * 2 - 1
            psnrs += psnr(out.image, target).tolist()
            lps += lpips_fn(out.image, target, net="alex").tolist()
            r = out.image_depth.shape[-1]
            zp = cameras.ray_distance_to_z(out.image_depth, held)
            zg = F.interpolate(z, size=(r, r), mode="area")
            m = F.interpolate(mask.float(), size=(r, r), mode="area") > 0.99
            depths += depth_error(zp, zg, m).mae.tolist()
        report = {
            "benchmark": "default_generator", "run": str(args.run), "weights": weights.name, "checkpoint": ckpt.name,
            "identities": args.identities, "heldout_views_per_identity": held.shape[0],
            "psnr_db": round(statistics.fmean(psnrs), 2), "lpips_alex": round(statistics.fmean(lps), 4),
            "depth_mae_world_units": round(statistics.fmean(depths), 4),
            "parameters": sum(p.numel() for p in G.parameters()),
        }
        if args.samples:
            from PIL import Image

            z = torch.randn(12, G.z_dim, generator=torch.Generator().manual_seed(0))
            c = cameras.camera_label(torch.linspace(-0.6, 0.6, 12), 0.0)
            img = G(z, c, sampling="deterministic").image
            fit = G.synthesis(G.mapping(codes[:6], torch.zeros(6, 25)), cameras.camera_label(torch.zeros(6), 0.0),
                              sampling="deterministic").image
            gt = torch.cat([render_synthheads(i, cameras.camera_label(0.0, 0.0), res)[0] * 2 - 1 for i in range(6)])
            Image.fromarray(np.concatenate([_grid(img, 6), _grid(fit, 6), _grid(gt, 6)], axis=0)).save(args.samples)
            report["samples"] = str(args.samples)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
