"""The restricted EG3D unpickler: exact extraction from the fixture, and nothing from a file ever runs."""

from __future__ import annotations

import contextlib
import copyreg
import io
import json
import os
import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from torch import nn

from sym3dinv.errors import CheckpointError, UnsafePickleError
from sym3dinv.generator import safe_pickle
from sym3dinv.generator.safe_pickle import (
    PickledObject,
    decode_legacy_storage,
    module_state_dict,
    prescan,
    read_eg3d_pickle,
    safe_load,
)


# --- a tiny pickle assembler: lets a test name ANY global without importing or running it -----------
def _obj(x: object) -> bytes:
    """Opcodes that push ``x`` (protocol 2, no PROTO/STOP, no frames)."""
    return pickle.dumps(x, protocol=2)[2:-1]


def _call(module: str, name: str, *args: object) -> bytes:
    """Opcodes for ``module.name(*args)`` via GLOBAL + REDUCE, exactly what a malicious __reduce__ writes."""
    return b"c" + f"{module}\n{name}\n".encode() + b"".join([pickle.MARK, *map(_obj, args), pickle.TUPLE]) + pickle.REDUCE


def _dict(*items: tuple[str, bytes]) -> bytes:
    """Opcodes for a dict whose values are given as opcodes."""
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(_obj(k) + v for k, v in items) + pickle.SETITEMS


def _pickle(body: bytes) -> bytes:
    return pickle.PROTO + b"\x02" + body + pickle.STOP


def _snapshot(g_ema: bytes) -> bytes:
    """An EG3D-like training snapshot dict whose G_ema is the given opcodes."""
    entries = b"".join(_obj(k) + _obj(v) for k, v in
                       (("training_set_kwargs", {"path": "x.zip"}), ("G", None), ("D", None), ("augment_pipe", None)))
    return _pickle(pickle.EMPTY_DICT + pickle.MARK + entries + _obj("G_ema") + g_ema + pickle.SETITEMS)


@pytest.fixture(scope="module")
def pkl_bytes(eg3d_fixtures: Path) -> bytes:
    return (eg3d_fixtures / "tiny_network.pkl").read_bytes()


# --- extraction --------------------------------------------------------------------------------------
def test_fixture_extracts_bit_identical_state_dict_and_config(pkl_bytes: bytes, eg3d_fixtures: Path) -> None:
    ck = read_eg3d_pickle(io.BytesIO(pkl_bytes))
    ref = load_file(eg3d_fixtures / "tiny_G.safetensors")
    cfg = json.loads((eg3d_fixtures / "tiny_config.json").read_text())
    assert set(ck.state_dict) == set(ref) and len(ck.state_dict) == 177
    for k, v in ref.items():
        got = ck.state_dict[k]
        assert got.dtype == v.dtype and got.shape == v.shape and torch.equal(got, v), k
        assert not got.requires_grad
    assert ck.init_kwargs == cfg["init_kwargs"]
    assert ck.rendering_kwargs == cfg["rendering_kwargs"]
    assert ck.neural_rendering_resolution == 128
    assert ck.class_name == "TriPlaneGenerator"
    assert ck.top_level_keys == ("training_set_kwargs", "G", "D", "G_ema", "augment_pipe")
    assert ck.num_parameters == cfg["num_parameters"] == 2648744
    # buffers EG3D registers are there, the renderer's plane_axes attribute is not
    assert "dataset_label_std" in ck.state_dict and ck.state_dict["dataset_label_std"].shape == (25,)
    assert "backbone.mapping.w_avg" in ck.state_dict and "backbone.mapping.w_avg" not in ck.parameter_keys
    assert not any("plane_axes" in k for k in ck.state_dict)
    # init_kwargs are plain JSON values (no EasyDict / numpy left)
    assert json.loads(json.dumps(ck.init_kwargs)) == ck.init_kwargs
    assert type(ck.init_kwargs["mapping_kwargs"]) is dict


def test_state_dict_order_matches_our_module(pkl_bytes: bytes) -> None:
    from sym3dinv.generator.triplane_generator import TriPlaneGenerator

    ck = read_eg3d_pickle(io.BytesIO(pkl_bytes))
    G = TriPlaneGenerator(**ck.init_kwargs)
    assert list(ck.state_dict) == list(G.state_dict())  # same names in nn.Module.state_dict order
    assert set(ck.parameter_keys) == {n for n, _ in G.named_parameters()}


class _Toy(nn.Module):
    """Parameters, a persistent and a non-persistent buffer, a None slot and a child: state_dict order."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("b_keep", torch.arange(3.0))
        self.w = nn.Parameter(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("b_skip", torch.ones(4), persistent=False)
        self.register_parameter("empty", None)
        self.net = nn.Sequential(nn.Softplus())
        self.view = torch.arange(12.0).view(3, 4)[1:, ::2]  # a strided view with an offset (attribute)


def test_module_walk_equals_torch_state_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"{__name__}._Toy"
    monkeypatch.setitem(safe_pickle.ALLOWED_GLOBALS, name, safe_pickle._inert_class(name))
    toy = _Toy()
    rec = safe_load(io.BytesIO(pickle.dumps(toy, protocol=4)))
    assert isinstance(rec, PickledObject) and rec.class_name == name
    sd, params = module_state_dict(rec)
    ref = toy.state_dict()
    assert list(sd) == list(ref) == ["w", "b_keep"] and params == ["w"]
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    assert torch.equal(rec.state["view"], toy.view)  # offset + stride rebuilt exactly


def _storage_reduce(t: torch.Tensor) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        return t.storage().__reduce__()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool,
                                   torch.float64, torch.uint8])
def test_legacy_storage_decoder_matches_torch(dtype: torch.dtype) -> None:
    t = (torch.arange(7) % 3).to(dtype)
    fn, (blob,) = _storage_reduce(t)
    assert fn is torch.storage._load_from_bytes  # what pickling a tensor writes for its storage
    rec = decode_legacy_storage(blob)
    assert rec.data.dtype == dtype and torch.equal(rec.data, t)
    empty = _storage_reduce(torch.empty(0, dtype=dtype))[1][0]
    assert decode_legacy_storage(empty).data.numel() == 0
    with pytest.raises(CheckpointError):
        decode_legacy_storage(blob[:-1])  # one byte short
    with pytest.raises(CheckpointError):
        decode_legacy_storage(blob + b"\0")  # one byte too many


# --- refusing code execution ------------------------------------------------------------------------
def _payloads(marker: Path) -> list[tuple[str, bytes]]:
    cmd = f"touch {marker}"
    return [
        ("os.system", _call("os", "system", cmd)),
        ("posix.system", _call("posix", "system", cmd)),
        ("builtins.eval", _call("builtins", "eval", f"__import__('os').system('{cmd}')")),
        ("builtins.exec", _call("builtins", "exec", f"import os; os.system('{cmd}')")),
        ("subprocess.Popen", _call("subprocess", "Popen", ["touch", str(marker)])),
        ("subprocess.check_call", _call("subprocess", "check_call", ["touch", str(marker)])),
        ("builtins.__import__", _call("builtins", "__import__", "os")),
        ("builtins.getattr", _call("builtins", "getattr", 1, "real")),
        ("torch.load", _call("torch", "load", "/dev/null")),
        ("collections.OrderedDict.fromkeys", _call("collections", "OrderedDict.fromkeys", [1])),
    ]


def test_payload_is_real(tmp_path: Path) -> None:
    """Sanity check of the test itself: plain pickle.loads of the os.system payload does run it."""
    marker = tmp_path / "plain_pickle_ran"
    pickle.loads(_pickle(_payloads(marker)[0][1]))
    assert marker.exists()


@pytest.mark.parametrize("index", range(10))
@pytest.mark.parametrize("nested", [False, True], ids=["bare", "in_snapshot"])
def test_code_execution_is_refused_and_nothing_runs(tmp_path: Path, index: int, nested: bool) -> None:
    marker = tmp_path / "pwned"
    qualname, body = _payloads(marker)[index]
    data = _snapshot(body) if nested else _pickle(body)
    with pytest.raises(UnsafePickleError, match=re.escape(qualname)):
        read_eg3d_pickle(io.BytesIO(data))
    assert not marker.exists()


def test_persistent_object_source_is_never_executed(tmp_path: Path) -> None:
    # EG3D's loader execs meta['module_src']; put a command there in an otherwise well-formed record
    marker = tmp_path / "src_ran"
    meta = {"type": "class", "version": 6, "class_name": "training.triplane.TriPlaneGenerator",
            "module_src": f"import os\nos.system('touch {marker}')\n",
            "state": {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_args": (),
                      "_init_kwargs": {"z_dim": 8}, "neural_rendering_resolution": 64}}
    ck = read_eg3d_pickle(io.BytesIO(_snapshot(_call("torch_utils.persistence", "_reconstruct_persistent_obj", meta))))
    assert ck.init_kwargs == {"z_dim": 8} and ck.state_dict == {} and ck.neural_rendering_resolution == 64
    assert not marker.exists()
    # a command as the argument of the (allowed) persistence hook is still refused at its own global
    data = _snapshot(b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n" + pickle.MARK
                     + _call("os", "system", f"touch {marker}") + pickle.TUPLE + pickle.REDUCE)
    with pytest.raises(UnsafePickleError, match="os.system"):
        read_eg3d_pickle(io.BytesIO(data))
    assert not marker.exists()


def test_storage_bytes_are_not_torch_loaded(tmp_path: Path) -> None:
    # torch.storage._load_from_bytes would torch.load(weights_only=False) these bytes and run the payload
    marker = tmp_path / "storage_ran"
    inner = _pickle(_call("os", "system", f"touch {marker}"))
    with pytest.raises(UnsafePickleError, match="os.system"):
        safe_load(io.BytesIO(_pickle(_call("torch.storage", "_load_from_bytes", inner))))
    assert not marker.exists()


def test_tensor_backward_hooks_and_bad_views_are_refused() -> None:
    blob = _storage_reduce(torch.arange(4.0))[1][0]
    storage = _call("torch.storage", "_load_from_bytes", blob)

    def tensor(size: tuple[int, ...], hooks: bytes) -> bytes:
        return _pickle(b"ctorch._utils\n_rebuild_tensor_v2\n" + pickle.MARK + storage + _obj(0) + _obj(size)
                       + _obj((1,) * len(size)) + _obj(False) + hooks + pickle.TUPLE + pickle.REDUCE)

    ok = safe_load(io.BytesIO(tensor((4,), _call("collections", "OrderedDict"))))
    assert torch.equal(ok, torch.arange(4.0))
    with pytest.raises(UnsafePickleError, match="backward hooks"):
        safe_load(io.BytesIO(tensor((4,), _call("collections", "OrderedDict", [(0, "hook")]))))
    with pytest.raises(CheckpointError, match="reaches element"):
        safe_load(io.BytesIO(tensor((5,), _call("collections", "OrderedDict"))))


def test_other_refusals() -> None:
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_load(io.BytesIO(_pickle(_obj("id") + pickle.BINPERSID)))
    with pytest.raises(UnsafePickleError, match="numpy dtype"):
        safe_load(io.BytesIO(_pickle(_call("numpy", "dtype", "O"))))
    # the copyreg extension registry (EXT opcodes) still goes through find_class
    module = os.system.__module__  # "posix" on Linux
    copyreg.add_extension(module, "system", 0x7FEE)
    try:
        data = pickle.dumps(os.system, protocol=2)
        assert pickle.EXT2 in data and b"system" not in data
        with pytest.raises(UnsafePickleError, match=f"{module}.system"):
            safe_load(io.BytesIO(data))
    finally:
        copyreg.remove_extension(module, "system", 0x7FEE)
    # a huge memo index would make CPython allocate ~32 GB; it is refused before unpickling
    with pytest.raises(CheckpointError, match="out of sequence"):
        prescan(_pickle(_obj(1) + pickle.LONG_BINPUT + (0x7FFFFFF0).to_bytes(4, "little")))
    with pytest.raises(CheckpointError, match="does not exist"):
        prescan(_pickle(pickle.BINGET + b"\x05"))


def test_not_a_generator_snapshot() -> None:
    with pytest.raises(CheckpointError, match="snapshot dict"):
        read_eg3d_pickle(io.BytesIO(pickle.dumps([1, 2])))
    with pytest.raises(CheckpointError, match="no 'G_ema'"):
        read_eg3d_pickle(io.BytesIO(pickle.dumps({"G": None})))
    with pytest.raises(CheckpointError, match="not an EG3D persistent network"):
        read_eg3d_pickle(io.BytesIO(pickle.dumps({"G_ema": OrderedDict()})))
    with pytest.raises(CheckpointError, match="not an EG3D persistent network"):  # an inert torch.nn record
        read_eg3d_pickle(io.BytesIO(pickle.dumps({"G_ema": nn.Sequential()}, protocol=4)))
    # nesting the unpickler builds iteratively but that is too deep to walk recursively
    n = 50_000
    deep = pickle.EMPTY_LIST * n + pickle.APPEND * (n - 1)
    state = _dict(("_parameters", _obj({})), ("_buffers", _obj({})), ("_modules", _obj({})),
                  ("_init_kwargs", _dict(("x", deep))))
    rec = _dict(("type", _obj("class")), ("class_name", _obj("TriPlaneGenerator")), ("state", state))
    data = _snapshot(b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n" + pickle.MARK + rec
                     + pickle.TUPLE + pickle.REDUCE)
    with pytest.raises(CheckpointError, match="malformed network record"):
        read_eg3d_pickle(io.BytesIO(data))
    meta = {"type": "class", "class_name": "Generator", "state": {"_parameters": {}, "_buffers": {}, "_modules": {}}}
    with pytest.raises(CheckpointError, match="not an EG3D TriPlaneGenerator"):
        read_eg3d_pickle(io.BytesIO(_snapshot(_call("torch_utils.persistence", "_reconstruct_persistent_obj", meta))))


# --- corruption -------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(permille=st.integers(min_value=0, max_value=999))  # integers: floats clash with flush-denormal
def test_any_truncation_is_a_checkpoint_error(pkl_bytes: bytes, permille: int) -> None:
    with pytest.raises(CheckpointError):
        read_eg3d_pickle(io.BytesIO(pkl_bytes[: len(pkl_bytes) * permille // 1000]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.one_of(st.integers(0, 60_000), st.integers(0, 14_258_875)), bit=st.integers(0, 7))
def test_bit_flips_load_or_fail_cleanly(pkl_bytes: bytes, pos: int, bit: int) -> None:
    # a flipped bit either lands in tensor data (loads, different value) or fails as a CheckpointError;
    # never another exception type, never a hang or a giant allocation
    data = bytearray(pkl_bytes)
    data[pos % len(data)] ^= 1 << bit
    with contextlib.suppress(CheckpointError):
        read_eg3d_pickle(io.BytesIO(bytes(data)))
