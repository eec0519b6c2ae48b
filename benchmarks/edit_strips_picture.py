"""docs/editing-strips.png: the before/after strips of one ``edit apply`` folder, laid out as the report does.

Reads ``STORE/edits/NAME/edit.json`` (written by ``sym3dinv edit apply``) and its PNGs; one row per item
and direction, one group of strength tiles per view, the unedited render (strength 0) framed. A
composite of the strip files, not a browser screenshot (no Chromium needed).

    sym3dinv demo --out /tmp/demo
    sym3dinv edit apply /tmp/demo --learned hair_lightness,parting_side -s -2 -s 2 --name learned
    python benchmarks/edit_strips_picture.py /tmp/demo --name learned --match synthheads \
        --out docs/editing-strips.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

TILE, GAP, LABEL_W, TEXT_H = 128, 16, 170, 16  # px


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--name", default="learned", help="edit folder STORE/edits/NAME")
    ap.add_argument("--match", default="", help="only items whose source_uri contains this")
    ap.add_argument("--out", default="docs/editing-strips.png")
    args = ap.parse_args()

    folder = args.store / "edits" / args.name
    manifest = json.loads((folder / "edit.json").read_text())
    items = [it for it in manifest["items"] if args.match in it["source_uri"]]
    views = manifest["views"]
    strengths = {d["name"]: d["strengths"] for d in manifest["directions"]}
    rows = [(it, d) for it in items for d in strengths]
    n_s = max(len(s) for s in strengths.values())
    width = LABEL_W + len(views) * (n_s * (TILE + 4) + GAP)
    row_h = TEXT_H + TILE + TEXT_H + 12
    img = Image.new("RGB", (width, TEXT_H + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(img)
    for v, view in enumerate(views):
        draw.text((LABEL_W + v * (n_s * (TILE + 4) + GAP), 2), f"yaw {view['yaw']:+.2f} pitch {view['pitch']:+.2f}",
                  fill="black")
    for r, (it, d) in enumerate(rows):
        y0 = TEXT_H + r * row_h
        draw.text((6, y0 + TEXT_H + TILE // 2 - 12), Path(it["source_uri"]).name, fill="black")
        draw.text((6, y0 + TEXT_H + TILE // 2 + 4), d, fill="black")
        paths = {(x["strength"], x["view"]): x["path"] for x in it["renders"] if x["direction"] == d}
        for v, view in enumerate(views):
            for k, s in enumerate(strengths[d]):
                x = LABEL_W + v * (n_s * (TILE + 4) + GAP) + k * (TILE + 4)
                tile = Image.open(folder / paths[(s, view["name"])]).convert("RGB").resize((TILE, TILE))
                img.paste(tile, (x, y0 + TEXT_H))
                if s == 0:
                    draw.rectangle((x - 2, y0 + TEXT_H - 2, x + TILE + 1, y0 + TEXT_H + TILE + 1), outline=(40, 90, 170),
                                   width=2)
                draw.text((x + 40, y0 + TEXT_H + TILE + 3), "original" if s == 0 else f"strength {s:+g}", fill="black")
    img.save(args.out)
    print(f"wrote {args.out} ({img.width}x{img.height}): {len(items)} items x {len(strengths)} directions")


if __name__ == "__main__":
    main()
