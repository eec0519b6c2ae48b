"""Checkpoint loading: EG3D pickles without running their code, our format, clear errors."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import fsspec
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from sym3dinv.errors import CheckpointError, ModelNotFoundError, UnsafePickleError
from sym3dinv.generator import TriPlaneGenerator, load_generator, read_eg3d_pickle, save_generator
from sym3dinv.generator.loading import sniff_format

SMALL = {  # a small EG3D-family config (our extensions keep it fast)
    "z_dim": 16, "w_dim": 32, "c_dim": 25, "img_resolution": 128, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 256, "channel_max": 16,
    "fused_modconv_default": "inference_only", "num_fp16_res": 0, "sr_num_fp16_res": 0, "conv_clamp": None,
    "sr_kwargs": {}, "triplane_resolution": 16, "triplane_channels": 32, "neural_rendering_resolution": 16,
    "sr_channels": [8, 8],
    "rendering_kwargs": {"superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
                         "depth_resolution": 8, "depth_resolution_importance": 8},
}


@pytest.fixture(scope="module")
def pkl_bytes(eg3d_fixtures) -> bytes:
    return (eg3d_fixtures / "tiny_network.pkl").read_bytes()


def test_pickle_and_safetensors_fixtures_load_identically(eg3d_fixtures, tmp_path) -> None:
    ref = load_file(eg3d_fixtures / "tiny_G.safetensors")
    G1 = load_generator(eg3d_fixtures / "tiny_network.pkl")
    assert G1.neural_rendering_resolution == 128 and not G1.training
    sd1 = G1.state_dict()
    assert set(sd1) == set(ref) and all(torch.equal(sd1[k], ref[k]) for k in ref)
    # the raw state dict + its config (sidecar given explicitly)
    G2 = load_generator(eg3d_fixtures / "tiny_G.safetensors", config=eg3d_fixtures / "tiny_config.json")
    assert all(torch.equal(G2.state_dict()[k], ref[k]) for k in ref)
    # our format round trip, bit-exact, and through a memory:// URL
    out = tmp_path / "g.safetensors"
    save_generator(G1, out)
    assert json.loads((tmp_path / "g.json").read_text())["init_kwargs"]["channel_max"] == 16
    G3 = load_generator(out)
    assert all(torch.equal(G3.state_dict()[k], ref[k]) for k in ref)
    fsspec.filesystem("memory").pipe("/ckpt/g.safetensors", out.read_bytes())
    assert torch.equal(load_generator("memory://ckpt/g.safetensors").state_dict()["decoder.net.2.bias"],
                       ref["decoder.net.2.bias"])


def test_read_eg3d_pickle_extracts_kwargs_without_building(pkl_bytes, eg3d_fixtures) -> None:
    ck = read_eg3d_pickle(io.BytesIO(pkl_bytes))
    cfg = json.loads((eg3d_fixtures / "tiny_config.json").read_text())
    assert ck.init_kwargs == cfg["init_kwargs"]
    assert ck.class_name == "TriPlaneGenerator" and ck.neural_rendering_resolution == 128
    assert set(ck.top_level_keys) == {"G", "G_ema", "D", "augment_pipe", "training_set_kwargs"}
    assert list(ck.state_dict)[0] == "dataset_label_std"  # Module.state_dict order, not alphabetical


class _Evil:
    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        cmd = f"touch {self.marker}"
        if self.how == "os.system":
            return (os.system, (cmd,))
        if self.how == "subprocess":
            return (subprocess.call, (["touch", str(self.marker)],))
        if self.how == "eval":
            return (eval, (f"__import__('os').system('{cmd}')",))
        return (exec, (f"import os; os.system('{cmd}')",))


@pytest.mark.parametrize("how", ["os.system", "subprocess", "eval", "exec"])
def test_pickle_that_runs_a_shell_command_is_refused(tmp_path, how: str) -> None:
    marker = tmp_path / "pwned"
    snapshot = {"G_ema": _Evil(marker, how), "G": None, "D": None, "augment_pipe": None}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(snapshot, protocol=4))
    with pytest.raises(UnsafePickleError, match="refused to load global") as exc:
        load_generator(path)
    assert any(name in str(exc.value) for name in ("system", "subprocess", "eval", "exec"))
    assert not marker.exists()


def test_persistent_object_source_is_never_executed(tmp_path, monkeypatch) -> None:
    # EG3D pickles carry module source that EG3D's loader execs; plant a command in it
    import sys
    import types

    marker = tmp_path / "ran"
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # only used to pickle; the loader never calls this one
        raise AssertionError

    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", fake)

    class Persistent:
        def __reduce__(self):
            meta = {"type": "class", "version": 6, "class_name": "training.triplane.TriPlaneGenerator",
                    "module_src": f"import os\nos.system('touch {marker}')\n", "state": {"x": 1}}
            return (_reconstruct_persistent_obj, (meta,))

    path = _write(tmp_path / "src.pkl", pickle.dumps({"G_ema": Persistent()}, protocol=4))
    with pytest.raises(CheckpointError, match="constructor kwargs|module record"):
        load_generator(path)
    assert not marker.exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Foo:  # a class of this test module: not on the allow-list
    pass


def test_unknown_global_is_named(tmp_path) -> None:
    path = _write(tmp_path / "x.pkl", pickle.dumps({"G_ema": Foo()}))
    with pytest.raises(UnsafePickleError, match=r"test_loading.*Foo|Foo"):
        load_generator(path)


@pytest.mark.parametrize("content,kind", [(b"", "unknown"), (b"\x89PNG\r\n\x1a\n" + b"0" * 64, "unknown"),
                                          (os.urandom(256), None), (b"PK\x03\x04" + b"0" * 60, "torch-zip")])
def test_unknown_formats_are_clear_errors(tmp_path, content: bytes, kind) -> None:
    path = _write(tmp_path / "ckpt.bin", content)
    if kind is not None:
        assert sniff_format(content) == kind
    with pytest.raises(CheckpointError):
        load_generator(path)


def test_missing_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.pkl")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(permille=st.integers(min_value=0, max_value=999))  # integers: floats clash with flush-denormal
def test_truncated_pickle_is_a_checkpoint_error(pkl_bytes, tmp_path, permille: int) -> None:
    cut = pkl_bytes[: len(pkl_bytes) * permille // 1000]
    with pytest.raises(CheckpointError):
        load_generator(_write(tmp_path / "cut.pkl", cut))


def test_shape_mismatch_and_missing_keys_are_listed(tmp_path) -> None:
    G = TriPlaneGenerator(**SMALL)
    sd = {k: v.clone() for k, v in G.state_dict().items()}
    sd["decoder.net.0.weight"] = torch.zeros(3, 3)
    del sd["decoder.net.2.bias"]
    save_file(sd, str(tmp_path / "bad.safetensors"))
    (tmp_path / "bad.json").write_text(json.dumps({"init_kwargs": SMALL}))
    with pytest.raises(CheckpointError) as exc:
        load_generator(tmp_path / "bad.safetensors")
    msg = str(exc.value)
    assert "decoder.net.0.weight: expected (64, 32), got (3, 3)" in msg and "decoder.net.2.bias" in msg
    # truncated safetensors
    good = tmp_path / "good.safetensors"
    save_generator(G, good)
    _write(tmp_path / "trunc.safetensors", good.read_bytes()[:-100])
    shutil.copy(tmp_path / "good.json", tmp_path / "trunc.json")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(tmp_path / "trunc.safetensors")


def test_small_config_round_trip_fp16(tmp_path) -> None:
    G = TriPlaneGenerator(**SMALL)
    save_generator(G, tmp_path / "h.safetensors", dtype=torch.float16)
    H = load_generator(tmp_path / "h.safetensors")
    for k, v in G.state_dict().items():
        assert torch.allclose(H.state_dict()[k], v.half().float()), k


def test_missing_embedded_default_names_the_file(monkeypatch, tmp_path) -> None:
    import sym3dinv.generator.loading as loading

    monkeypatch.setattr(loading, "default_weights_path", lambda: tmp_path / "default_G.safetensors")
    with pytest.raises(ModelNotFoundError, match="default_G.safetensors"):
        load_generator("synthheads")
