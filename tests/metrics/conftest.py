"""Shared inputs for the metrics tests: the LPIPS fixture pairs, real portraits, a tiny ONNX writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sym3dinv.metrics.onnx_wire import encode_varint, length_delimited


def to_pm1(u8: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> [1, 3, H, W] in [-1, 1], the fixture's convention: float32(u8) / 127.5 - 1."""
    x = u8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


@pytest.fixture(scope="session")
def lpips_reference(lpips_fixtures: Path) -> dict:
    return json.loads((lpips_fixtures / "reference.json").read_text())


@pytest.fixture(scope="session")
def lpips_pairs(lpips_fixtures: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(lpips_fixtures / "pairs.safetensors"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()  # 512x512 RGB


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    import matplotlib

    p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    img = np.asarray(Image.open(p).convert("RGB"))  # 600x512
    return img[44:556]  # 512x512, face kept


# --- a tiny ONNX model written directly in protobuf wire format (the onnx package is not installed) ------
def _vint(num: int, v: int) -> bytes:
    return encode_varint(num << 3) + encode_varint(v)


def _str(num: int, s: str) -> bytes:
    return length_delimited(num, s.encode())


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(length_delimited(1, _vint(1, d) if isinstance(d, int) else _str(2, d)) for d in dims)
    tensor_type = _vint(1, 1) + length_delimited(2, shape)  # elem_type FLOAT
    return _str(1, name) + length_delimited(2, length_delimited(1, tensor_type))


def _attr_ints(name: str, values: list[int]) -> bytes:
    return length_delimited(5, _str(1, name) + _vint(20, 7) + b"".join(_vint(8, v) for v in values))


def _attr_int(name: str, value: int) -> bytes:
    return length_delimited(5, _str(1, name) + _vint(20, 2) + _vint(3, value))


def _node(op: str, inputs: list[str], outputs: list[str], attrs: bytes = b"") -> bytes:
    body = b"".join(_str(1, i) for i in inputs) + b"".join(_str(2, o) for o in outputs) + _str(4, op) + attrs
    return length_delimited(1, body)


def tiny_face_onnx(weight: np.ndarray, pool: int = 16) -> bytes:
    """data [N,3,112,112] -> AveragePool(pool) -> Flatten -> MatMul(weight [3*(112/pool)^2, D]) -> fc1 [N, D]."""
    init = (b"".join(_vint(1, d) for d in weight.shape) + _vint(2, 1) + _str(8, "W")
            + length_delimited(9, weight.astype("<f4").tobytes()))
    graph = (
        _node("AveragePool", ["data"], ["p"], _attr_ints("kernel_shape", [pool, pool]) + _attr_ints("strides", [pool, pool]))
        + _node("Flatten", ["p"], ["f"], _attr_int("axis", 1))
        + _node("MatMul", ["f", "W"], ["fc1"])
        + _str(2, "tiny_arcface")
        + length_delimited(5, init)
        + length_delimited(11, _value_info("data", ["N", 3, 112, 112]))
        + length_delimited(12, _value_info("fc1", ["N", int(weight.shape[1])]))
    )
    opset = _str(1, "") + _vint(2, 13)
    return _vint(1, 7) + _str(2, "sym3dinv-test") + length_delimited(7, graph) + length_delimited(8, opset)
