"""The encoder network, its file, and the generator fingerprint that binds the two."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.config.encoder import EncoderConfig
from sym3dinv.encoder import (
    Encoder,
    TrainedEncoder,
    encode,
    encoder_path,
    load_encoder,
    mean_w_plus,
    save_encoder,
)
from sym3dinv.errors import CheckpointError, ConfigError, EncoderMismatchError, ModelNotFoundError
from sym3dinv.generator.fingerprint import generator_fingerprint
from tests.plugin import make_tiny

TOY = EncoderConfig(resolution=32, channels=(8, 8, 16), feature=16, w_avg_samples=64)


def test_shapes_and_untrained_start_is_the_mean_w() -> None:
    G = make_tiny(0)
    net = Encoder(TOY, G.num_ws, G.w_dim)
    c = camera_label(torch.tensor([0.3, -0.4, 0.0]), torch.tensor([0.0, 0.1, -0.1]))
    x = torch.rand(3, 3, 128, 128) * 2 - 1
    ws, out = encode(net, G, x, c)
    assert ws.shape == (3, G.num_ws, G.w_dim) and out.offsets.shape == ws.shape and out.yaw_pitch.shape == (3, 2)
    assert torch.equal(ws, mean_w_plus(G, c, TOY))  # zero-initialised head: offsets exactly 0
    assert not torch.equal(ws[0], ws[1])  # camera-conditioned (the tiny generator conditions on c)
    with pytest.raises(ValueError, match="camera"):
        net(x)  # a camera-conditioned encoder needs the label
    blind = Encoder(EncoderConfig(resolution=32, channels=(8,), pyramid=1, feature=8, use_camera=False,
                                  predict_camera=False), G.num_ws, G.w_dim)
    assert blind(x).yaw_pitch is None and blind(x).offsets.shape == (3, G.num_ws, G.w_dim)
    with pytest.raises(ConfigError):
        EncoderConfig(channels=(8, 8), pyramid=3)


def test_file_round_trip_and_generator_check(tmp_path: Path) -> None:
    G = make_tiny(0)
    net = Encoder(TOY, G.num_ws, G.w_dim)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    path = save_encoder(TrainedEncoder(net, generator_fingerprint(G), "tiny"), tmp_path / "enc.safetensors",
                        train_config={"steps": 3})
    assert path.with_suffix(".json").is_file()
    enc = load_encoder(path, G)
    x, c = torch.rand(2, 3, 32, 32), camera_label(torch.tensor([0.2, -0.2]))
    with torch.no_grad():
        torch.testing.assert_close(enc.net(x, c).offsets, net(x, c).offsets, rtol=2e-2, atol=2e-3)  # float16 on disk
    assert enc.config == TOY and enc.metadata["train_config"] == '{"steps": 3}'
    other = make_tiny(1)
    with pytest.raises(EncoderMismatchError, match=generator_fingerprint(G)[:12]) as err:
        load_encoder(path, other)
    assert generator_fingerprint(other)[:12] in str(err.value) and "'tiny'" in str(err.value)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        load_encoder(tmp_path / "junk.safetensors")


def test_missing_encoder_names_the_file_and_the_command(tmp_path: Path) -> None:
    gen = tmp_path / "mine.safetensors"
    with pytest.raises(ModelNotFoundError) as err:
        encoder_path(str(gen))
    msg = str(err.value)
    assert str(tmp_path / "mine_encoder.safetensors") in msg and "sym3dinv encoder train OUT --generator" in msg
    with pytest.raises(ModelNotFoundError, match="default_G_encoder.safetensors"):
        encoder_path("synthheads-v1")  # v1 ships no encoder (v2's does: tests/encoder/test_shipped.py)
    with pytest.raises(ModelNotFoundError, match="explicit"):
        encoder_path("synthheads", tmp_path / "nope.safetensors")
    with pytest.raises(ModelNotFoundError, match="not a local"):
        encoder_path("s3://bucket/g.pkl")
    (tmp_path / "mine_encoder.safetensors").write_bytes(b"x")
    assert encoder_path(str(gen)) == tmp_path / "mine_encoder.safetensors"
