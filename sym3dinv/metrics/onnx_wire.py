"""Minimal ONNX protobuf wire-format helpers (the ``onnx`` package is not a dependency).

Used to repair the OpenCV Zoo int8 block-quantised SFace file: its graph still declares the original
float weights (``conv_1_conv2d_weight``, ...) as graph *inputs* although no node reads them any more (the
convs read ``*_weight_reshaped``, made by DequantizeLinear + Reshape from int8 initializers), so
onnxruntime asks the caller to feed them. Dropping those unused input declarations (and nothing else)
makes the graph runnable; the bytes of every other field are copied unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

from sym3dinv.errors import CheckpointError

MODEL_GRAPH = 7  # ModelProto.graph
GRAPH_NODE = 1  # GraphProto.node
GRAPH_INPUT = 11  # GraphProto.input
NODE_INPUT = 1  # NodeProto.input
VALUE_INFO_NAME = 1  # ValueInfoProto.name


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated ONNX file (varint)")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int, bytes]]:
    """Yield (field number, wire type, value, raw bytes of the whole field) of one message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        val: bytes | int
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wt} in ONNX file")
        if pos > len(buf):
            raise CheckpointError("truncated ONNX file")
        yield num, wt, val, buf[start:pos]


def length_delimited(num: int, payload: bytes) -> bytes:
    return encode_varint(num << 3 | 2) + encode_varint(len(payload)) + payload


def _string_field(msg: bytes, num: int) -> list[str]:
    return [v.decode() for n, wt, v, _ in fields(msg) if n == num and wt == 2 and isinstance(v, bytes)]


def drop_unused_inputs(model: bytes) -> tuple[bytes, list[str]]:
    """Remove graph-input declarations that no node reads; returns (model bytes, dropped names)."""
    out = bytearray()
    dropped: list[str] = []
    for num, wt, val, raw in fields(model):
        if num != MODEL_GRAPH or wt != 2 or not isinstance(val, bytes):
            out += raw
            continue
        consumed = {i for n, _, v, _ in fields(val) if n == GRAPH_NODE and isinstance(v, bytes)
                    for i in _string_field(v, NODE_INPUT)}
        graph = bytearray()
        for gnum, _, gval, graw in fields(val):
            if gnum == GRAPH_INPUT and isinstance(gval, bytes):
                names = _string_field(gval, VALUE_INFO_NAME)
                if names and names[0] not in consumed:
                    dropped.append(names[0])
                    continue
            graph += graw
        out += length_delimited(MODEL_GRAPH, bytes(graph))
    return bytes(out), dropped
