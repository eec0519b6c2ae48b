"""Generator checkpoints: EG3D pickle and safetensors load bit-identically; our format round-trips;
every bad input is a CheckpointError that says what is wrong."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import fsspec
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from sym3dinv.errors import CheckpointError, ConfigError, ModelNotFoundError, UnsafePickleError
from sym3dinv.generator import checkpoint
from sym3dinv.generator.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_generator,
    read_checkpoint,
    save_generator,
    sniff_format,
)
from sym3dinv.generator.triplane_generator import TriPlaneGenerator
from tests.plugin import TINY

SMALL = TINY  # the shared tiny EG3D-family config (tests/tiny.py): fast to build and load


def _equal_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def tiny_from_pkl(eg3d_fixtures: Path) -> TriPlaneGenerator:
    return load_generator(eg3d_fixtures / "tiny_network.pkl")


@pytest.fixture(scope="module")
def ref_sd(eg3d_fixtures: Path) -> dict[str, torch.Tensor]:
    return load_file(eg3d_fixtures / "tiny_G.safetensors")


def test_pickle_and_safetensors_fixtures_load_bit_identically(eg3d_fixtures: Path, tiny_from_pkl: TriPlaneGenerator,
                                                               ref_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    G1 = tiny_from_pkl
    assert isinstance(G1, TriPlaneGenerator) and not G1.training
    assert G1.neural_rendering_resolution == 128 and G1.num_ws == 14
    assert not any(p.requires_grad for p in G1.parameters())
    sd1 = G1.state_dict()
    assert set(sd1) == set(ref_sd) and all(torch.equal(sd1[k], ref_sd[k]) for k in ref_sd)
    # the raw state dict + the fixture's config JSON
    G2 = load_generator(eg3d_fixtures / "tiny_G.safetensors", config=eg3d_fixtures / "tiny_config.json")
    assert _equal_state(G2.state_dict(), sd1)
    # our format written from the pickle-loaded generator: bit-exact round trip
    out = save_generator(G1, tmp_path / "sub" / "tiny.safetensors", metadata={"origin": "fixture", "step": 3})
    assert out == str(tmp_path / "sub" / "tiny.safetensors")
    G3 = load_generator(out)
    assert _equal_state(G3.state_dict(), sd1)
    assert G3.init_kwargs == G1.init_kwargs
    ck = read_checkpoint(out)
    assert ck.format == FORMAT and ck.metadata == {"origin": "fixture", "step": "3"}
    side = json.loads((tmp_path / "sub" / "tiny.json").read_text())
    assert side["init_kwargs"]["channel_max"] == 16 and side["weights"] == "tiny.safetensors"
    assert len(side["sha256"]) == 64
    assert not [p.name for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]  # no temp files left


def test_memory_url_and_format_sniffed_not_named(tiny_from_pkl: TriPlaneGenerator, eg3d_fixtures: Path,
                                                 ref_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    save_generator(tiny_from_pkl, "memory://ckpts/g.safetensors")
    fs = fsspec.filesystem("memory")
    assert fs.exists("/ckpts/g.json")
    assert _equal_state(load_generator("memory://ckpts/g.safetensors").state_dict(), tiny_from_pkl.state_dict())
    # an EG3D pickle under a misleading name, via memory:// too
    fs.pipe("/ckpts/network.safetensors", (eg3d_fixtures / "tiny_network.pkl").read_bytes())
    G = load_generator("memory://ckpts/network.safetensors")
    assert torch.equal(G.state_dict()["decoder.net.2.bias"], ref_sd["decoder.net.2.bias"])
    fs.rm("/ckpts", recursive=True)


def test_fp16_storage_round_trip(tmp_path: Path) -> None:
    G = TriPlaneGenerator(**SMALL)
    save_generator(G, tmp_path / "h.safetensors", dtype=torch.float16)
    assert {t.dtype for t in load_file(tmp_path / "h.safetensors").values()} == {torch.float16}
    H = load_generator(tmp_path / "h.safetensors")
    for k, v in G.state_dict().items():
        assert H.state_dict()[k].dtype == torch.float32
        assert torch.equal(H.state_dict()[k], v.half().float()), k


def test_truncated_or_tampered_own_format(tmp_path: Path) -> None:
    G = TriPlaneGenerator(**SMALL)
    data = Path(save_generator(G, tmp_path / "g.safetensors")).read_bytes()
    for cut in (9, 100, len(data) // 2, len(data) - 1):
        with pytest.raises(CheckpointError, match="corrupt or truncated safetensors|unknown checkpoint format"):
            load_generator(_write(tmp_path / "cut.safetensors", data[:cut]), config=SMALL)
    sd = load_file(tmp_path / "g.safetensors")
    save_file(sd, str(tmp_path / "nometa.safetensors"), metadata={"format": FORMAT, "version": FORMAT_VERSION})
    with pytest.raises(CheckpointError, match="init_kwargs metadata is missing"):
        load_generator(tmp_path / "nometa.safetensors")


def test_full_size_kwargs_build_through_the_loader(eg3d_fixtures: Path, tmp_path: Path) -> None:
    """The full-size ffhqrebalanced512-128 init_kwargs go through our format's kwargs path unchanged.

    Weights are random and the network small for speed: the full widths shrunk to the tiny ones, the
    rest of the kwargs (rendering, SR module, mapping, fp16 settings) exactly as in full_manifest.json.
    """
    full = json.loads((eg3d_fixtures / "full_manifest.json").read_text())
    kw = json.loads(json.dumps(full["init_kwargs"]))
    assert (kw["channel_base"], kw["channel_max"]) == (32768, 512)
    kw.update(channel_base=2048, channel_max=16, sr_kwargs=dict(kw["sr_kwargs"], channel_base=2048, channel_max=16))
    torch.manual_seed(0)
    G = TriPlaneGenerator(**kw)
    save_generator(G, tmp_path / "full.safetensors")
    ck = read_checkpoint(tmp_path / "full.safetensors")
    expect = {k: v for k, v in full["init_kwargs"].items() if k not in ("channel_base", "channel_max", "sr_kwargs")}
    assert {k: ck.init_kwargs[k] for k in expect} == expect
    H = load_generator(tmp_path / "full.safetensors")
    assert _equal_state(H.state_dict(), G.state_dict())
    assert H.rendering_kwargs["superresolution_module"] == "training.superresolution.SuperresolutionHybrid8XDC"
    # the same keys/shapes as EG3D's full model except the width-dependent ones
    assert set(H.state_dict()) == set(full["state_dict"])


def test_synthheads_default_missing_names_both_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    w, s = tmp_path / "weights" / "default_G.safetensors", tmp_path / "weights" / "default_G.json"
    monkeypatch.setattr(checkpoint, "default_generator_paths", lambda name=None: (w, s))
    for source in (None, "synthheads", "SynthHeads"):
        with pytest.raises(ModelNotFoundError, match="default_G.safetensors.*default_G.json"):
            load_generator(source)
    G = TriPlaneGenerator(**SMALL)
    save_generator(G, w)
    assert _equal_state(load_generator("synthheads").state_dict(), G.state_dict())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("content", "fmt", "message"), [
    (b"", "unknown", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "unknown", "PNG image"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n", "unknown", "Git LFS pointer"),
    (b"<!DOCTYPE html><html>404</html>", "unknown", "HTML page"),
    (b"\x13\x07\x99\x01" * 64, "unknown", "starting with"),
    (b"PK\x03\x04" + bytes(60), "torch-zip", "torch.save zip archive"),
    (b"\x80\x04\x95garbage", "eg3d-pickle", "truncated or corrupt"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": [1, 2, 3]}", "safetensors", "corrupt or truncated safetensors"),
])
def test_unknown_and_corrupt_formats(tmp_path: Path, content: bytes, fmt: str, message: str) -> None:
    assert sniff_format(content[:16]) == fmt
    path = _write(tmp_path / "model.pkl", content)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path, config=SMALL)  # config= so a safetensors case fails on the bytes, not the sidecar


def test_missing_file_and_bad_url(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.pkl")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator("nosuchprotocol://bucket/x.pkl")


@pytest.mark.parametrize("cut", [1, 100, 5000, 300_000, 7_000_000, 14_258_875])
def test_truncated_pickle_fixture(eg3d_fixtures: Path, tmp_path: Path, cut: int) -> None:
    data = (eg3d_fixtures / "tiny_network.pkl").read_bytes()
    with pytest.raises(CheckpointError, match="truncated or corrupt|unknown checkpoint format"):
        load_generator(_write(tmp_path / "cut.pkl", data[:cut]))


def test_wrong_shapes_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    G = TriPlaneGenerator(**SMALL)
    sd = {k: v.clone() for k, v in G.state_dict().items()}
    sd["decoder.net.0.weight"] = torch.zeros(3, 3)
    del sd["decoder.net.2.bias"]
    sd["extra.weight"] = torch.zeros(1)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    (tmp_path / "bad.json").write_text(json.dumps({"init_kwargs": SMALL}))  # sidecar found by name
    with pytest.raises(CheckpointError) as exc:
        load_generator(tmp_path / "bad.safetensors")
    msg = str(exc.value)
    assert "1 missing keys: decoder.net.2.bias" in msg
    assert "1 unexpected keys: extra.weight" in msg
    assert "1 shape mismatches: decoder.net.0.weight (expected [64, 32], got [3, 3])" in msg


def test_raw_state_dict_needs_a_config(tmp_path: Path) -> None:
    save_file({k: v.contiguous() for k, v in TriPlaneGenerator(**SMALL).state_dict().items()},
              str(tmp_path / "raw.safetensors"))
    with pytest.raises(CheckpointError, match=r"config= or the sidecar .*raw\.json"):
        load_generator(tmp_path / "raw.safetensors")
    with pytest.raises(CheckpointError, match="has no 'init_kwargs'"):
        load_generator(tmp_path / "raw.safetensors", config={"z_dim": 16})
    assert load_generator(tmp_path / "raw.safetensors", config={"init_kwargs": SMALL}).z_dim == 16


def test_bad_init_kwargs_and_versions(tmp_path: Path) -> None:
    G = TriPlaneGenerator(**SMALL)
    with pytest.raises(CheckpointError, match="cannot build a generator .*bogus_option"):
        load_generator(_raw(tmp_path, G, dict(SMALL, bogus_option=1)))
    blob = tmp_path / "v.safetensors"
    save_generator(G, blob)
    sd = load_file(blob)
    save_file(sd, str(blob), metadata={"format": FORMAT, "version": "99", "init_kwargs": "{}"})
    with pytest.raises(CheckpointError, match="version '99'"):
        load_generator(blob)


def _raw(tmp_path: Path, G: TriPlaneGenerator, init_kwargs: dict) -> Path:
    path = tmp_path / "raw_cfg.safetensors"
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(path))
    (tmp_path / "raw_cfg.json").write_text(json.dumps({"init_kwargs": init_kwargs}))
    return path


def test_evil_pickle_through_load_generator(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = _write(tmp_path / "evil.pkl", pickle.dumps({"G_ema": Evil(), "G": None, "D": None}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        load_generator(path)
    assert not marker.exists()
    runner = CliRunner()
    result = runner.invoke(_cli(), ["generator", "info", str(path)])
    assert result.exit_code == 2 and "refused to load global" in result.output and not marker.exists()


def test_device_and_map_location() -> None:
    with pytest.raises(ConfigError, match="disagree"):
        load_generator("unused.pkl", device="cuda", map_location="meta")


def test_save_refuses_reserved_metadata_and_wrong_suffix(tmp_path: Path) -> None:
    G = TriPlaneGenerator(**SMALL)
    with pytest.raises(ConfigError, match="reserved"):
        save_generator(G, tmp_path / "x.safetensors", metadata={"init_kwargs": "{}"})
    with pytest.raises(ConfigError, match="NAME.safetensors"):
        save_generator(G, tmp_path / "x.pt")


def _cli():
    from sym3dinv.cli import app

    return app


def test_cli_info_and_convert(eg3d_fixtures: Path, ref_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(_cli(), ["generator", "info", str(eg3d_fixtures / "tiny_network.pkl")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["format"] == "eg3d-pickle" and info["num_parameters"] == 2648744 and info["num_ws"] == 14
    assert info["neural_rendering_resolution"] == 128 and info["img_resolution"] == 512
    assert info["triplane_resolution"] == 256 and info["num_state_dict_entries"] == 177
    assert info["init_kwargs"]["channel_max"] == 16 and info["dtypes"] == ["float32"]
    out = tmp_path / "conv.safetensors"
    res = runner.invoke(_cli(), ["generator", "convert", str(eg3d_fixtures / "tiny_network.pkl"), str(out)])
    assert res.exit_code == 0, res.output
    assert _equal_state(load_generator(out).state_dict(), load_generator(eg3d_fixtures / "tiny_network.pkl").state_dict())
    conv = load_file(out)
    assert set(conv) == set(ref_sd) and all(torch.equal(conv[k], ref_sd[k]) for k in ref_sd)
    res = runner.invoke(_cli(), ["generator", "info", str(out)])
    assert json.loads(res.stdout)["metadata"] == {"converted_from": str(eg3d_fixtures / "tiny_network.pkl")}
    res = runner.invoke(_cli(), ["generator", "convert", str(out), str(tmp_path / "h.safetensors"), "--dtype", "int8"])
    assert res.exit_code == 2 and "--dtype must be one of" in res.output


def test_cli_without_embedded_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(checkpoint, "default_generator_paths",
                        lambda name=None: (tmp_path / "default_G.safetensors", tmp_path / "default_G.json"))
    res = CliRunner().invoke(_cli(), ["generator", "info"])
    assert res.exit_code == 2 and "is missing" in res.output and "default_G.json" in res.output


def test_embedded_generators_by_name() -> None:
    assert checkpoint.embedded_name(None) == checkpoint.DEFAULT_EMBEDDED
    assert checkpoint.embedded_name("SynthHeads") == checkpoint.DEFAULT_EMBEDDED
    assert checkpoint.embedded_name("synthheads-v2") == "synthheads-v2"
    assert checkpoint.embedded_name("/some/file.pkl") is None
    v1, _ = checkpoint.default_generator_paths("synthheads-v1")
    v2, _ = checkpoint.default_generator_paths("synthheads-v2")
    assert v1.name == "default_G.safetensors" and v2.name == "synthheads_v2.safetensors"
    for name, (w, _) in ((n, checkpoint.default_generator_paths(n)) for n in checkpoint.EMBEDDED_FILES):
        if w.is_file():  # every shipped embedded generator loads by its name
            assert load_generator(name).img_resolution == 128
