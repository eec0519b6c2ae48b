"""Encoder training at toy size: the loss falls, an interrupted run resumes to the same weights, the export
is bound to its generator, and the SynthHeads share renders real heads with their angles."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sym3dinv.config.encoder import EncoderConfig, EncoderTrainConfig
from sym3dinv.encoder import load_encoder
from sym3dinv.encoder.data import SampleSource, build_bank
from sym3dinv.encoder.train import CHECKPOINT, LOG_FILE, EncoderTrainer, train_encoder
from sym3dinv.errors import ConfigError, EncoderMismatchError
from tests.plugin import make_tiny

TOY = EncoderConfig(resolution=32, channels=(8, 16, 16), feature=32, w_avg_samples=64)
RECIPE = EncoderTrainConfig(encoder=TOY, steps=40, batch=4, lr=2e-3, warmup=2, image_phase_start=40,
                            synthheads_fraction=0.0, checkpoint_every=5)


def _log(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


def test_export_is_bound_to_the_generator(tmp_path: Path) -> None:
    G = make_tiny(0)
    path = train_encoder(G, replace(RECIPE, steps=6), tmp_path / "run", generator_name="tiny")
    rows = _log(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(6))
    assert 0.5 < rows[0]["ws"] < 2  # in units of w's spread: predicting the mean scores about 1
    enc = load_encoder(path, G)
    assert enc.metadata["step"] == "6" and enc.generator == "tiny"
    assert any(v.abs().sum() > 0 for k, v in enc.net.state_dict().items() if k.startswith("w_head.3"))  # trained
    with pytest.raises(EncoderMismatchError):
        load_encoder(path, make_tiny(1))


def test_toy_training_loss_falls(tmp_path: Path) -> None:
    """Every term on, 10 steps: the loss of two held-out batches (the same before and after) falls."""
    G = make_tiny(0)
    cfg = replace(RECIPE, steps=10, image_phase_start=0, lr=1e-3, warmup=1, lpips_net="alex")
    tr = EncoderTrainer(G, cfg)
    held = [tr.source.batch(10_000 + k) for k in range(2)]

    def held_loss() -> float:
        with torch.no_grad():
            tr.net.eval()
            return sum(float(sum(tr.losses(b).values())) for b in held)

    before = held_loss()
    rows = [tr.train_step() for _ in range(10)]
    assert {"ws", "mse", "lpips", "novel", "camera", "total"} == set(rows[0])
    assert held_loss() < 0.95 * before


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    G = make_tiny(0)
    cfg = replace(RECIPE, steps=8, image_phase_start=6, lpips_net="alex")
    train_encoder(G, cfg, tmp_path / "whole")
    train_encoder(G, cfg, tmp_path / "parts", stop_at=5)
    assert torch.load(tmp_path / "parts" / CHECKPOINT, weights_only=True)["step"] == 5
    train_encoder(G, cfg, tmp_path / "parts")
    a = load_encoder(tmp_path / "whole" / "encoder.safetensors").net.state_dict()
    b = load_encoder(tmp_path / "parts" / "encoder.safetensors").net.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert [r["step"] for r in _log(tmp_path / "parts")] == list(range(8))
    with pytest.raises(EncoderMismatchError):  # the checkpoint belongs to generator 0
        EncoderTrainer(make_tiny(1), cfg).load(tmp_path / "parts" / CHECKPOINT)
    with pytest.raises(ConfigError, match="another training config"):
        EncoderTrainer(G, replace(cfg, lr=1e-4)).load(tmp_path / "parts" / CHECKPOINT)


def test_synthheads_share_renders_heads_composited_on_grey(tmp_path: Path) -> None:
    G = make_tiny(0)
    cfg = replace(RECIPE, batch=4, synthheads_fraction=0.5, synthheads_identities=2, synthheads_views=2)
    z = torch.randn(3, G.z_dim)
    bank = build_bank(cfg, z, 32, tmp_path / "bank.safetensors")
    assert bank.rgb.shape == (2, 2, 3, 32, 32) and bank.identities == 2
    assert float(bank.mask.float().mean()) > 0.1  # a head fills part of the frame
    assert bank.yaw_pitch.abs().max() <= cfg.yaw_max + 1e-6
    again = build_bank(cfg, z, 32, tmp_path / "bank.safetensors")  # read back, not re-rendered
    assert torch.equal(again.rgb, bank.rgb)
    src = SampleSource(G, cfg, replace(bank, rgb=torch.nn.functional.interpolate(
        bank.rgb.flatten(0, 1).float(), size=128).half().view(2, 2, 3, 128, 128),
        mask=torch.nn.functional.interpolate(bank.mask.flatten(0, 1).float(), size=128).half().view(2, 2, 1, 128, 128)))
    b = src.batch(3)
    assert src.n_synth == 2 and b.inputs.shape == (4, 3, 128, 128) and b.ws.shape == (4, G.num_ws, G.w_dim)
    assert b.novel_targets is not None and b.novel_targets.shape == b.inputs.shape
    assert not torch.equal(b.inputs[2:], b.targets[2:])  # the background was replaced on the encoder's side
    assert torch.equal(src.batch(3).inputs, b.inputs)  # a step's batch is a function of the step
    assert src.batch(4, images=False).novel_targets is None


def test_cli_trains_resumes_and_refuses_a_bad_generator(tmp_path: Path, tiny_checkpoint: str) -> None:
    from typer.testing import CliRunner

    from sym3dinv.cli import app

    out = tmp_path / "enc"
    args = ["encoder", "train", str(out), "--generator", tiny_checkpoint, "--steps", "3", "--batch", "2",
            "--threads", "1", "--set", "image_phase_start=2", "--set", "encoder.resolution=32",
            "--set", "encoder.channels=[8,8,16]", "--set", "encoder.feature=16", "--set", "encoder.w_avg_samples=64"]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--stop-at", "2"])
    assert first.exit_code == 0, first.output
    assert torch.load(out / CHECKPOINT, weights_only=True)["step"] == 2
    done = runner.invoke(app, args)
    assert done.exit_code == 0 and "encoder.safetensors" in done.output
    enc = load_encoder(out / "encoder.safetensors", make_tiny(0))
    assert enc.metadata["step"] == "3" and enc.config.resolution == 32
    assert [r["step"] for r in _log(out)] == [0, 1, 2]
    bad = runner.invoke(app, ["encoder", "train", str(tmp_path / "x"), "--generator", str(tmp_path / "none.pkl")])
    assert bad.exit_code == 2 and "error:" in bad.output
