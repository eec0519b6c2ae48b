"""Inversion started from the encoder (issue 17): ``stage1.init = "encoder"``, the ``instant`` and ``quick``
presets, and the errors when the encoder is missing or belongs to another generator."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.config.encoder import EncoderConfig
from sym3dinv.config.presets import preset
from sym3dinv.encoder import Encoder, TrainedEncoder, encode
from sym3dinv.errors import ConfigError, EncoderMismatchError
from sym3dinv.generator.fingerprint import generator_fingerprint
from sym3dinv.invert import invert, invert_batch
from tests.plugin import make_cheap_losses, make_tiny

TOY = EncoderConfig(resolution=32, channels=(8, 8, 16), feature=16, w_avg_samples=64)


def _encoder(G: torch.nn.Module, seed: int = 0) -> TrainedEncoder:
    torch.manual_seed(seed)
    net = Encoder(TOY, G.num_ws, G.w_dim)
    with torch.no_grad():
        net.w_head[-1].weight.normal_(0, 0.05)  # a non-zero answer, unlike an untrained encoder's mean w
    return TrainedEncoder(net.eval(), generator_fingerprint(G), "tiny")


def _inputs(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(n, 3, 128, 128, generator=g) * 2 - 1, camera_label(torch.tensor([0.4, -0.3][:n]))


def test_instant_is_the_encoders_answer_with_no_optimisation() -> None:
    G, enc = make_tiny(0), None
    enc = _encoder(G)
    x, c = _inputs()
    cfg = replace(preset("instant"), resolution=128)
    assert cfg.stage1.steps == 0 and cfg.stage2.steps == 0 and cfg.stage1.init == "encoder"
    res = invert_batch(G, x, c, config=cfg, losses=make_cheap_losses(), encoder=enc)
    with torch.no_grad():
        want, _ = encode(enc.net, G, x, c)
    for i, r in enumerate(res):
        torch.testing.assert_close(r.ws, want[i:i + 1])
        assert r.delta == {} or all(float(v.abs().max()) == 0 for v in r.delta.values())  # G is not tuned
        assert r.stage2_steps == 0 and r.timings["encoder"] > 0 and r.metrics.psnr > 0


def test_quick_starts_from_the_encoder_and_tunes() -> None:
    G = make_tiny(0)
    enc = _encoder(G)
    x, c = _inputs(1)
    cfg = replace(preset("quick"), resolution=128)
    cfg = replace(cfg, stage1=replace(cfg.stage1, steps=3, w_avg_samples=64), stage2=replace(cfg.stage2, steps=2))
    r = invert(G, x[0], c[0], config=cfg, losses=make_cheap_losses(), encoder=enc)
    with torch.no_grad():
        start, _ = encode(enc.net, G, x, c)
    assert r.stage2_steps == 2 and len(r.history["stage1"]) == 3
    drift = float((r.ws - start).abs().max())
    assert 0 < drift < float(start.abs().max())  # optimised from the encoder's answer, not from elsewhere
    mean_start = invert(G, x[0], c[0], config=replace(cfg, stage1=replace(cfg.stage1, init="w_avg")),
                        losses=make_cheap_losses())
    assert not torch.allclose(mean_start.ws, r.ws)


def test_encoder_init_needs_the_generators_encoder() -> None:
    G = make_tiny(0)
    x, c = _inputs(1)
    cfg = replace(preset("instant"), resolution=128)
    with pytest.raises(ConfigError, match="encoder"):
        invert(G, x[0], c[0], config=cfg, losses=make_cheap_losses())
    with pytest.raises(EncoderMismatchError):
        invert(G, x[0], c[0], config=cfg, losses=make_cheap_losses(), encoder=_encoder(make_tiny(1)))
    # any preset can start from the encoder; the switch is hashed only when it is on
    from sym3dinv.config.pipeline import PipelineConfig

    base = PipelineConfig(preset="cpu")
    assert base.config_hash != base.with_set("stage1.init", "encoder").config_hash
    assert base.with_set("stage1.init", "encoder").inversion.stage1.init == "encoder"
    with pytest.raises(ConfigError):
        base.with_set("stage1.init", "pixel2style2pixel")
