"""Property-based tests (hypothesis) of the image decoder and of config parsing: whatever the bytes or
strings, the result is a valid image/config or a typed sym3dinv error, never another exception.

Strategies use integers and bytes only: tests run with ``torch.set_flush_denormal(True)``, which clashes
with hypothesis' float strategies (they check that denormals survive)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sym3dinv.align.decode import array_to_rgb, decode_bytes
from sym3dinv.config import replace_path
from sym3dinv.config.align import AlignConfig
from sym3dinv.config.presets import preset
from sym3dinv.errors import ConfigError, ItemError
from sym3dinv.pipeline import PipelineConfig
from tests.plugin import CHEAP_LOSSES

MAX_PIXELS, MIN_SIDE = 4_000_000, 8
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_decoded(data: bytes) -> None:
    try:
        rgb = decode_bytes(data, MAX_PIXELS, MIN_SIDE)
    except ItemError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags.c_contiguous
    assert rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS and min(rgb.shape[:2]) >= MIN_SIDE


def _sample(fmt: str) -> bytes:
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


SAMPLES = {fmt: _sample(fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")}


@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_item_error(data: bytes) -> None:
    _check_decoded(data)


@SETTINGS
@given(fmt=st.sampled_from(sorted(SAMPLES)), cut=st.integers(0, 10_000), flips=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=8))
def test_mutated_images_decode_or_item_error(fmt: str, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLES[fmt])
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    _check_decoded(bytes(data[: max(0, len(data) - cut % len(data))]) if cut % 3 == 0 else bytes(data))


@SETTINGS
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.sampled_from([None, 1, 2, 3, 4]),
       dtype=st.sampled_from(["uint8", "uint16", "int32", "bool"]), seed=st.integers(0, 2**32 - 1))
def test_arrays_of_any_depth_become_rgb(h: int, w: int, c: int | None, dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c is None else (h, w, c)
    top = {"uint8": 256, "uint16": 65536, "int32": 65536, "bool": 2}[dtype]
    a = rng.integers(0, top, shape).astype(dtype)
    rgb = array_to_rgb(a)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    if dtype == "uint8" and c == 3:
        np.testing.assert_array_equal(rgb, a)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")  # lossless round trip through the byte decoder
        if min(h, w) >= 1:
            np.testing.assert_array_equal(decode_bytes(buf.getvalue(), MAX_PIXELS, 1), a)
    if c in (None, 1) and dtype == "uint8":  # grey: three equal channels
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def _leaf_paths(cfg: object, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out += _leaf_paths(v, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


BASE = preset("smoke", "w+")
PATHS = _leaf_paths(BASE)
VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "true", "false", "null", "[1, 2]", "{}", '"x"', "0",
                     "0.5", "[]", "1e-400", "2", "-3"]),
    st.integers(-(2**40), 2**40),
)


@SETTINGS
@given(path=st.one_of(st.sampled_from(PATHS), st.text(max_size=20)), value=VALUES)
def test_overrides_parse_or_config_error(path: str, value: object) -> None:
    try:
        cfg = replace_path(BASE, path, value)
    except ConfigError:
        return
    got = cfg
    for part in path.split("."):
        got = getattr(got, part)
    old = BASE
    for part in path.split("."):
        old = getattr(old, part)
    if old is not None and not isinstance(old, str):  # typed fields keep their type
        assert isinstance(got, type(old)), (path, value, got)


@SETTINGS
@given(preset_name=st.one_of(st.sampled_from(["smoke", "cpu", "paper", "cpu-demo"]), st.text(max_size=8)),
       mode=st.one_of(st.sampled_from(["spi", "pti", "w+"]), st.text(max_size=4)),
       key=st.sampled_from(PATHS), value=VALUES)
def test_pipeline_config_builds_or_config_error(preset_name: str, mode: str, key: str, value: object) -> None:
    try:
        cfg = PipelineConfig(generator="g", preset=preset_name, mode=mode, losses=CHEAP_LOSSES,
                             overrides=((key, value),))
    except ConfigError:
        return
    assert len(cfg.config_hash) == 16


@SETTINGS
@given(output_size=st.integers(-5, 4096), max_pixels=st.integers(-5, 10**9), min_side=st.integers(-5, 64),
       max_faces=st.integers(-2, 16), multi=st.text(max_size=8) | st.sampled_from(["largest", "all"]),
       conf=st.integers(-5, 15))
def test_align_config_validates(output_size: int, max_pixels: int, min_side: int, max_faces: int, multi: str,
                                conf: int) -> None:
    try:
        AlignConfig(output_size=output_size, max_pixels=max_pixels, min_side=min_side, max_faces=max_faces,
                    multi_face=multi, min_confidence=conf / 10)
    except ConfigError:
        assert (output_size < 16 or max_pixels <= 0 or min_side < 1 or max_faces < 1
                or multi not in ("largest", "all") or not 0 <= conf <= 10)
        return
    assert output_size >= 16 and max_pixels > 0 and multi in ("largest", "all")


@pytest.mark.parametrize("text", ["1e400", "-1e400", "NaN", "Infinity"])
def test_non_finite_or_huge_numbers_for_int_fields_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        replace_path(BASE, "stage1.steps", text)
