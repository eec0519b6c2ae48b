"""Decode arbitrary photos into RGB uint8 arrays without surprises.

Every failure becomes a typed :mod:`sym3dinv.errors` item error: unreadable sources
(``unreadable``), bytes that are not an image or are truncated (``decode_error``), pixel modes that
cannot be made RGB (``unsupported_mode``), decompression bombs (``too_large``) and tiny images
(``too_small``). EXIF orientation is applied; alpha is composited on white (FFHQ-like light
backgrounds, and a black matte would read as hair/shadow to the landmarker); 16-bit data is scaled
to 8 bits by ``round(v / 257)`` so 65535 maps to 255.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from sym3dinv.errors import (
    DecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnreadableInputError,
    UnsupportedModeError,
)

ImageInput = str | os.PathLike[str] | bytes | Image.Image | np.ndarray
_PIL_LIMIT_LOCK = threading.Lock()
_BACKGROUND = 255  # alpha is composited on white


@contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Set PIL's bomb limit for one decode and restore it (the global is shared, hence the lock)."""
    with _PIL_LIMIT_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        # PIL raises above 2x its limit and only warns between 1x and 2x; we want a hard stop at max_pixels.
        Image.MAX_IMAGE_PIXELS = max(1, max_pixels // 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def read_bytes(source: str | os.PathLike[str]) -> bytes:
    """Bytes of a local path or any fsspec URL; missing/forbidden sources are ``unreadable``."""
    name = os.fspath(source)
    try:
        with fsspec.open(name, "rb") as f:
            return f.read()
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise UnreadableInputError(f"cannot read {name!r}: {exc.__class__.__name__}: {exc}") from exc
    except OSError as exc:
        raise UnreadableInputError(f"cannot read {name!r}: {exc}") from exc


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale integer/float arrays of any common depth to uint8."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype in (np.uint16, np.int32, np.uint32, np.int64, np.int16):
        a64 = a.astype(np.float64)
        top = 65535.0 if a64.max(initial=0) <= 65535 else float(a64.max())
        return np.clip(np.rint(a64 * (255.0 / top)), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise DecodeError("image holds NaN or infinite values")
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0  # [0, 1] floats or already 0..255
        return np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    raise UnsupportedModeError(f"unsupported pixel type {a.dtype}")


def _composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    al = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * al + _BACKGROUND * (1.0 - al)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def array_to_rgb(a: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 array of any common dtype -> contiguous HxWx3 uint8."""
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise UnsupportedModeError(f"unsupported array shape {a.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    a = _to_uint8(a)
    c = a.shape[2]
    rgb = np.repeat(a[..., :1], 3, axis=2) if c in (1, 2) else a[..., :3]
    if c in (2, 4):
        rgb = _composite(rgb, a[..., -1])
    return np.ascontiguousarray(rgb)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode we can interpret -> HxWx3 uint8 (EXIF orientation must already be applied)."""
    mode = im.mode
    if mode in ("RGB",):
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("1", "L", "LA", "RGBA", "RGBa", "La"):
        if mode == "RGBa":
            im = im.convert("RGBA")
        elif mode == "La":
            im = im.convert("LA")
        return array_to_rgb(np.asarray(im.convert("L") if mode == "1" else im))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return array_to_rgb(np.asarray(im.convert("RGBA" if has_alpha else "RGB")))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        return array_to_rgb(np.asarray(im))
    raise UnsupportedModeError(f"unsupported image mode {mode!r}")


def _check_size(w: int, h: int, max_pixels: int, min_side: int) -> None:
    if w * h > max_pixels:
        raise ImageTooLargeError(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    if min(w, h) < min_side:
        raise ImageTooSmallError(f"image is {w}x{h}; both sides must be at least {min_side} pixels")


def decode_bytes(data: bytes, max_pixels: int, min_side: int) -> np.ndarray:
    """Encoded image bytes -> HxWx3 uint8; the size is checked from the header before decoding."""
    if len(data) == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        with _pixel_limit(max_pixels):
            im = Image.open(io.BytesIO(data))
            _check_size(im.width, im.height, max_pixels, min_side)
            prev = ImageFile.LOAD_TRUNCATED_IMAGES
            if prev:  # never accept silently padded truncated images
                raise DecodeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to decode partially")
            im.load()
            im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image exceeds the pixel limit of {max_pixels}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not a recognised image format (unsupported or corrupt file)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"corrupt or truncated image: {exc}") from exc
    return pil_to_rgb(im)


def load_image(image: ImageInput, max_pixels: int = 100_000_000, min_side: int = 32) -> np.ndarray:
    """Path / fsspec URL / encoded bytes / PIL image / numpy array -> HxWx3 uint8 RGB."""
    if isinstance(image, np.ndarray):
        rgb = array_to_rgb(image)
        _check_size(rgb.shape[1], rgb.shape[0], max_pixels, min_side)
        return rgb
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height, max_pixels, min_side)
        return pil_to_rgb(ImageOps.exif_transpose(image))
    if isinstance(image, bytes | bytearray | memoryview):
        return decode_bytes(bytes(image), max_pixels, min_side)
    if isinstance(image, str | os.PathLike):
        if isinstance(image, Path) or "://" not in os.fspath(image):
            p = Path(image)
            if not p.exists():
                raise UnreadableInputError(f"no such file: {os.fspath(p)!r}")
        return decode_bytes(read_bytes(image), max_pixels, min_side)
    raise UnreadableInputError(f"cannot read an image from a {type(image).__name__}")
