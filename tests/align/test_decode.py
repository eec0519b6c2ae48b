"""Every bad-input class gets its typed error; EXIF, CMYK, 16-bit, palette and alpha round trips."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sym3dinv.align.decode import load_image
from sym3dinv.errors import (
    DecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnreadableInputError,
    UnsupportedModeError,
)


def _gradient(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 80)], -1).astype(np.uint8)


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_png_round_trip_from_path_url_and_bytes(tmp_path: Path) -> None:
    a = _gradient()
    p = tmp_path / "g.png"
    Image.fromarray(a).save(p)
    for src in (p, str(p), f"file://{p}", p.read_bytes(), Image.open(p), a):
        assert np.array_equal(load_image(src), a)


def test_exif_rotation_applied() -> None:
    a = _gradient()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 deg clockwise for display
    data = _encode(Image.fromarray(a), "PNG", exif=exif)
    out = load_image(data)
    assert out.shape == (64, 48, 3)
    assert np.array_equal(out, np.rot90(a, k=-1))


def test_cmyk_round_trip() -> None:
    a = _gradient()
    cmyk = Image.fromarray(a).convert("CMYK")
    out = load_image(_encode(cmyk, "JPEG", quality=100))
    assert out.shape == a.shape
    assert np.abs(out.astype(int) - a).mean() < 3.0


def test_16bit_grayscale_scaled_to_8bit() -> None:
    v = np.array([[0, 257, 65535, 32896] * 16] * 32, dtype=np.uint16)
    out = load_image(_encode(Image.fromarray(v), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (32, 64, 3)
    assert out[0, :4, 0].tolist() == [0, 1, 255, 128]
    assert np.array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_array_and_float_array() -> None:
    a = _gradient()
    assert np.array_equal(load_image(a.astype(np.uint16) * 257), a)
    assert np.array_equal(load_image(a.astype(np.float32) / 255), a)


def test_gray_palette_alpha_modes() -> None:
    a = _gradient()
    gray = load_image(_encode(Image.fromarray(a).convert("L"), "PNG"))
    assert np.array_equal(gray[..., 0], gray[..., 1])
    pal = load_image(_encode(Image.fromarray(a).convert("P"), "PNG"))
    assert pal.shape == a.shape
    rgba = np.dstack([a, np.zeros(a.shape[:2], np.uint8)])
    rgba[:, :32, 3] = 255
    out = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert np.array_equal(out[:, :32], a[:, :32])  # opaque kept
    assert (out[:, 32:] == 255).all()  # transparent composited on white


@pytest.mark.parametrize(
    ("data", "err"),
    [
        (b"", DecodeError),
        (b"this is not an image at all, just text" * 4, DecodeError),
        (b"%PDF-1.4 unsupported format\n" * 8, DecodeError),
    ],
)
def test_bad_bytes(data: bytes, err: type[Exception]) -> None:
    with pytest.raises(err) as exc:
        load_image(data)
    assert exc.value.code == "decode_error"  # type: ignore[attr-defined]


def test_truncated_and_corrupt() -> None:
    good = _encode(Image.fromarray(_gradient(200, 200)), "JPEG")
    with pytest.raises(DecodeError, match="truncated|corrupt"):
        load_image(good[: len(good) // 2])
    png = bytearray(_encode(Image.fromarray(_gradient(200, 200)), "PNG"))
    png[60:120] = b"\x00" * 60  # break the IDAT stream
    with pytest.raises(DecodeError):
        load_image(bytes(png))


def test_too_large_checked_from_header_and_too_small() -> None:
    big = _encode(Image.new("L", (4000, 3000)), "PNG")  # tiny file, 12 MP
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(big, max_pixels=1_000_000)
    assert exc.value.code == "too_large"
    with pytest.raises(ImageTooLargeError):
        load_image(big, max_pixels=5_000_000)  # between PIL's warn and error thresholds
    assert Image.MAX_IMAGE_PIXELS != 500_000  # the global was restored
    with pytest.raises(ImageTooSmallError):
        load_image(_gradient(10, 64))


def test_unreadable_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInputError) as exc:
        load_image(tmp_path / "missing.png")
    assert exc.value.code == "unreadable"
    with pytest.raises(UnreadableInputError):
        load_image(f"memory://nope/{tmp_path.name}.png")
    with pytest.raises(UnsupportedModeError):
        load_image(np.zeros((40, 40, 5), np.uint8))
    with pytest.raises(UnsupportedModeError):
        load_image(np.zeros((40, 40, 3), np.complex64))


def test_fsspec_memory_url() -> None:
    import fsspec

    a = _gradient()
    with fsspec.open("memory://align-test/g.png", "wb") as f:
        f.write(_encode(Image.fromarray(a), "PNG"))
    assert np.array_equal(load_image("memory://align-test/g.png"), a)
