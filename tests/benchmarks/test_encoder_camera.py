"""benchmarks/encoder_camera.py at toy size: the tiny generator with an encoder bound to it, one identity."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sym3dinv.config.encoder import EncoderConfig
from sym3dinv.encoder import Encoder, TrainedEncoder, save_encoder
from sym3dinv.generator.fingerprint import generator_fingerprint
from tests.plugin import make_tiny

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import encoder_camera as ec  # noqa: E402  (a script folder, not a package)


def test_buckets_split_by_absolute_yaw() -> None:
    b = ec.buckets(np.array([0.0, -20.0, 20.0, 50.0]), np.array([1.0, -2.0, 4.0, np.nan]))
    assert b["0-15"] == {"n": 1, "mean": 1.0, "max": 1.0}
    assert b["15-30"] == {"n": 2, "mean": 3.0, "max": 4.0}
    assert "45-60" not in b and b["all"]["n"] == 3


def test_toy_run_reports_the_encoders_errors(tmp_path: Path, tiny_checkpoint: str) -> None:
    G = make_tiny(0)
    net = Encoder(EncoderConfig(resolution=32, channels=(8, 8, 16), feature=16, w_avg_samples=64), G.num_ws, G.w_dim)
    enc = save_encoder(TrainedEncoder(net, generator_fingerprint(G), "tiny"), tmp_path / "e.safetensors")
    out = ec.main(["--generator", tiny_checkpoint, "--encoder", str(enc), "--identities", "1", "--yaws=-30,0",
                   "--pitches", "0", "--no-aligner"])
    assert out["images"] == 2 and out["encoder"]["yaw"]["all"]["n"] == 2 and "aligner" not in out
    # an untrained camera head says about 0: its yaw errors are about the true |yaw|
    assert abs(out["encoder"]["yaw"]["30-45"]["mean"] - 30) < 10  # 30 deg opens the 30-45 bucket and out["encoder_ms_per_image"] > 0
