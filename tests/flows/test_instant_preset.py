"""The ``instant`` preset through the real flow (issue 17): the actors load the encoder next to the generator
and write normal done rows; a missing encoder is a configuration error before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flows.bulk_invert import bulk_invert
from sym3dinv.config.encoder import EncoderConfig
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.encoder import Encoder, TrainedEncoder, save_encoder
from sym3dinv.errors import ModelNotFoundError
from sym3dinv.generator import save_generator
from sym3dinv.generator.fingerprint import generator_fingerprint
from sym3dinv.store import RunStore
from tests.plugin import make_folder, make_tiny, tiny_pipeline


def test_instant_writes_normal_rows_and_needs_its_encoder(tmp_path: Path, ray_local: None) -> None:
    folder = make_folder(tmp_path / "in", n_good=2)
    G = make_tiny(0)
    ckpt = save_generator(G, tmp_path / "gen.safetensors")
    cfg = tiny_pipeline(str(ckpt), overrides={"stage1.w_avg_samples": 64}, preset="instant", mode="spi",
                        render=RenderSpec(views=((0.0, 0.0), (0.5, 0.0)), depth=False))
    assert cfg.inversion.stage1.init == "encoder"
    with pytest.raises(ModelNotFoundError, match="gen_encoder.safetensors"):
        bulk_invert(input=str(folder), out=str(tmp_path / "store"), config=cfg,
                    execution=ExecutionConfig(shard_size=8, num_actors=1))
    assert not RunStore(str(tmp_path / "store")).latest_rows()  # refused at planning: nothing written

    torch.manual_seed(0)
    net = Encoder(EncoderConfig(resolution=32, channels=(8, 8, 16), feature=16, w_avg_samples=64), G.num_ws, G.w_dim)
    with torch.no_grad():
        net.w_head[-1].weight.normal_(0, 0.05)
    save_encoder(TrainedEncoder(net, generator_fingerprint(G), str(ckpt)), tmp_path / "gen_encoder.safetensors")
    s = bulk_invert(input=str(folder), out=str(tmp_path / "store"), config=cfg,
                    execution=ExecutionConfig(shard_size=8, num_actors=1))
    assert s.counts["done"] == 2
    store = RunStore(str(tmp_path / "store"))
    for r in store.done_rows():
        assert r.generator_fingerprint == generator_fingerprint(G) and r.quality in ("ok", "poor_fit")
        assert r.metrics["lpips_alex"] is not None and r.stage_seconds["invert_encoder"] > 0
        assert r.stage_seconds["invert_stage2"] < r.stage_seconds["total"]
        assert {f"render/{v}" for v in cfg.render.names()} <= set(r.outputs), r.outputs
        assert all(store.exists(rel) for rel in r.outputs.values()), r.outputs
