"""A messy input bucket, generated (not hand-picked): every entry is built from code at test time.

``make_corpus(root)`` writes the files and returns ``{file name: Expect}``: what decoding must give
(``ok`` or an error code) and, where alignment decides, the set of acceptable per-item outcomes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FACE_CROP = (slice(0, 300), slice(100, 360))  # the astronaut's head and shoulders, 300x260
ITEM_OUTCOMES = frozenset({"done", "no_face", "face_too_small", "low_confidence", "extreme_pose", "align_error"})
"""Outcomes a real photo may legitimately get from alignment + inversion."""


@dataclass(frozen=True)
class Expect:
    decode: str
    """``ok`` or the error code ``decode_bytes`` must raise."""
    row: frozenset[str] | None = None
    """Acceptable ``done``/error classes of the item's row; None = the decode code (or ``done`` if ok)."""
    listed: bool = True
    """False for files the lister ignores (no image extension)."""


def face() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[FACE_CROP])


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (8-bit grey) with a tiny, wrong IDAT: the size guard must fire
    before any decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def exif_rotated(rgb: np.ndarray) -> bytes:
    """JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view)."""
    stored = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)  # what a phone writes
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def make_corpus(root: Path) -> dict[str, Expect]:
    root.mkdir(parents=True, exist_ok=True)
    f = face()
    h, w = f.shape[:2]
    img = Image.fromarray(f)
    grey = img.convert("L")
    files: dict[str, bytes] = {}
    expect: dict[str, Expect] = {}

    def add(name: str, data: bytes, decode: str, row: set[str] | None = None, listed: bool = True) -> None:
        files[name] = data
        expect[name] = Expect(decode, frozenset(row) if row is not None else None, listed)

    jpeg, png, webp = encode(img, "JPEG", quality=90), encode(img, "PNG"), encode(img, "WEBP", quality=80)
    face_ok = set(ITEM_OUTCOMES)
    # --- good photos in every pixel format
    add("face.jpg", jpeg, "ok", face_ok)
    add("face.png", png, "ok", face_ok)
    add("face.webp", webp, "ok", face_ok)
    add("grey.png", encode(grey, "PNG"), "ok", face_ok)
    add("cmyk.jpg", encode(img.convert("CMYK"), "JPEG", quality=90), "ok", face_ok)
    add("palette.png", encode(img.quantize(64), "PNG"), "ok", face_ok)
    add("grey16.png", encode(Image.fromarray(f[..., 1].astype(np.uint16) * 257), "PNG"), "ok", face_ok)
    rgba = np.dstack([f, np.full((h, w), 200, np.uint8)])
    add("alpha.png", encode(Image.fromarray(rgba), "PNG"), "ok", face_ok)
    add("alpha.webp", encode(Image.fromarray(rgba), "WEBP", lossless=True), "ok", face_ok)
    add("exif-rotated.jpg", exif_rotated(f), "ok", face_ok)
    add("png-named.jpg", encode(img.rotate(1), "PNG"), "ok", face_ok)  # wrong extension: sniffed, not named
    # --- faces: none, many, cut by the border
    rng = np.random.default_rng(0)
    add("no-face.png", encode(Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)), "PNG"), "ok",
        {"no_face"})
    add("many-faces.jpg", encode(Image.fromarray(np.concatenate([f, f[:, ::-1], f], axis=1)), "JPEG"), "ok", face_ok)
    add("face-cut-by-border.png", encode(Image.fromarray(np.ascontiguousarray(f[:, w // 2:])), "PNG"), "ok", face_ok)
    # --- broken bytes
    add("empty.jpg", b"", "decode_error")
    add("truncated.jpg", jpeg[: len(jpeg) // 2], "decode_error")
    add("truncated.png", png[: len(png) // 2], "decode_error")
    add("truncated.webp", webp[: len(webp) // 2], "decode_error")
    add("header-only.jpg", jpeg[:200], "decode_error")
    corrupt = bytearray(png)
    corrupt[len(png) // 2: len(png) // 2 + 64] = bytes(64)  # zeros inside IDAT: zlib/CRC failure
    add("corrupt.png", bytes(corrupt), "decode_error")
    add("text-named.png", b"just some text, not an image\n" * 10, "decode_error")
    add("pdf-named.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "decode_error")
    add("notes.txt", b"not an image and not named like one", "decode_error", listed=False)
    # --- sizes
    add("1x1.png", encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), "too_small")
    add("bomb-20000.png", encode(Image.new("1", (20000, 20000)), "PNG"), "too_large")
    add("bomb-header-65535.png", png_header_only(65535, 65535), "too_large")
    # --- awkward names (outputs are keyed by content hash, so none can escape the store)
    add("with space é 顔.png", encode(img.rotate(3), "PNG"), "ok", face_ok)
    add("..png", encode(img.rotate(-3), "PNG"), "ok", face_ok)
    add("a..b.jpg", encode(img.rotate(5), "JPEG"), "ok", face_ok)
    for name, data in files.items():
        (root / name).write_bytes(data)
    # --- links: to a file in the folder (same content = same item), to a missing file, and a loop
    os.symlink(root / "face.png", root / "link-to-face.png")
    expect["link-to-face.png"] = Expect("ok", frozenset(face_ok))
    os.symlink(root / "missing.png", root / "broken-link.png")
    expect["broken-link.png"] = Expect("unreadable", frozenset({"unreadable"}))
    os.symlink(root / "loop-b.png", root / "loop-a.png")
    os.symlink(root / "loop-a.png", root / "loop-b.png")
    expect["loop-a.png"] = expect["loop-b.png"] = Expect("unreadable", frozenset({"unreadable"}))
    (root / "folder.png").mkdir()  # a directory with an image name: not a file, not listed
    expect["folder.png"] = Expect("unreadable", None, listed=False)
    return expect
