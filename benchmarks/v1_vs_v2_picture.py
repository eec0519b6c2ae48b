"""docs/synthheads/v1_vs_v2.png: the world's ground truth, v1 and v2 on the same training identities.

Rows: SynthHeads world render (on black), ``synthheads-v1``, ``synthheads-v2``; columns: identities
(training seeds of both generators) x yaws (pitch 0), 128 px. v2 renders identity i from the code its
training learnt, ``G.mapping(embedded_codes("synthheads-v2")[i], c)``. v1 ships no codes: its latent is
the ``w`` fitted to that seed's frontal world render (``sym3dinv edit build-attribute-set --method fit``,
25 steps, the v1 attribute set shipped until 2026-12-04; pass it with ``--v1-set``), so its side views
show what v1 makes of a frontal fit.

    git show 1bb673e:sym3dinv/edit/data/synthheads_attributes.npz > v1_attributes.npz  # the v1 set
    OMP_NUM_THREADS=1 python benchmarks/v1_vs_v2_picture.py --v1-set v1_attributes.npz \
        --out docs/synthheads/v1_vs_v2.png
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

LABEL_W = 96  # px of row labels on the left


def v1_latents(path: str, seeds: list[int], num_ws: int) -> list[np.ndarray]:
    d = np.load(path, allow_pickle=False)
    idx = [int(np.flatnonzero(d["seeds"] == s)[0]) for s in seeds]
    return [np.broadcast_to(d["latents"][i], (num_ws, d["latents"].shape[-1])).copy() for i in idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--v1-set", required=True, help="attribute set .npz of v1 (method fit) holding the seeds")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--yaws", default="-45,0,45", help="degrees")
    ap.add_argument("--out", default="docs/synthheads/v1_vs_v2.png")
    args = ap.parse_args()

    from sym3dinv.cameras import camera_label
    from sym3dinv.dataset.render import render_identity
    from sym3dinv.generator import load_generator
    from sym3dinv.synthheads import render_views
    from sym3dinv.synthheads.codes import embedded_codes

    t0 = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    yaws = torch.tensor([math.radians(float(y)) for y in args.yaws.split(",")])
    labels = camera_label(yaws, torch.zeros_like(yaws))
    g1, g2 = load_generator("synthheads-v1").eval(), load_generator("synthheads-v2").eval()
    with torch.no_grad():
        w2 = g2.mapping(embedded_codes("synthheads-v2")[seeds], torch.zeros(len(seeds), 25))
    rows: list[list[np.ndarray]] = [[], [], []]
    for k, (s, w1) in enumerate(zip(seeds, v1_latents(args.v1_set, seeds, g1.num_ws), strict=True)):
        gt = render_views(s, labels, 128, background=(0.0, 0.0, 0.0)).rgb  # [V, 3, 128, 128] in [0, 1]
        rows[0] += list((gt.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
        rows[1] += list(render_identity(g1, w1, labels).rgb)
        rows[2] += list(render_identity(g2, w2[k].numpy(), labels).rgb)
    v = len(yaws)
    gap = np.full((128, 4, 3), 255, np.uint8)  # white line between identities

    def row(tiles: list[np.ndarray]) -> np.ndarray:
        groups = [np.concatenate(tiles[i:i + v], axis=1) for i in range(0, len(tiles), v)]
        return np.concatenate([x for g in groups for x in (g, gap)][:-1], axis=1)

    grid = np.concatenate([row(r) for r in rows], axis=0)  # [3*128, n*v*128 + gaps, 3]
    img = Image.new("RGB", (LABEL_W + grid.shape[1], grid.shape[0]), "white")
    img.paste(Image.fromarray(grid), (LABEL_W, 0))
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(("ground truth", "synthheads-v1", "synthheads-v2")):
        draw.text((6, i * 128 + 58), text, fill="black")
    img.save(args.out)
    print(f"wrote {args.out} ({img.width}x{img.height}) in {time.perf_counter() - t0:.0f} s: seeds {seeds}, "
          f"yaws {args.yaws} deg")


if __name__ == "__main__":
    main()
