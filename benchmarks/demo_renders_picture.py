"""docs/demo_renders.png: per done item of a store, the input and the stored renders at yaw -0.5, 0, +0.5 rad.

One row per done item (sorted by source name), 128 px tiles, no labels: input | yaw -0.5 | 0 | +0.5.

    sym3dinv demo --out /tmp/demo
    python benchmarks/demo_renders_picture.py /tmp/demo --out docs/demo_renders.png
"""

from __future__ import annotations

import argparse
import io

from PIL import Image

TILE = 128  # px


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("--out", default="docs/demo_renders.png")
    args = ap.parse_args()

    from sym3dinv.store import RunStore
    from sym3dinv.store.layout import input_outputs, render_views

    store = RunStore(args.store)
    rows = sorted(store.done_rows(), key=lambda r: str(r.source_uri))
    grid: list[list[Image.Image]] = []
    for r in rows:
        outs = dict(r.outputs)
        rels = [input_outputs(outs)[0], *(rel for _, _, rel in render_views(outs))]
        grid.append([Image.open(io.BytesIO(store.cat(rel))).convert("RGB").resize((TILE, TILE)) for rel in rels])
    img = Image.new("RGB", (TILE * max(len(g) for g in grid), TILE * len(grid)), "black")
    for i, tiles in enumerate(grid):
        for j, tile in enumerate(tiles):
            img.paste(tile, (j * TILE, i * TILE))
    img.save(args.out)
    print(f"wrote {args.out} ({img.width}x{img.height}): {len(rows)} items: "
          + ", ".join(str(r.source_uri).rsplit("/", 1)[-1] for r in rows))


if __name__ == "__main__":
    main()
