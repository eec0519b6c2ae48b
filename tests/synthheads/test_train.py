"""The default-generator trainer at toy size: it learns, checkpoints, resumes, and exports a loadable model."""

from __future__ import annotations

import dataclasses

import torch

from sym3dinv.generator import load_generator
from sym3dinv.synthheads.train import (
    TrainConfig,
    build_cache,
    lr_at,
    render_synthheads,
    sample_training_labels,
    train,
)

TOY = TrainConfig(identities=2, views=2, resolution=128, neural_rendering_resolution=16, triplane_resolution=16,
                  channel_base=256, channel_max=16, sr_channels=(8, 8), depth_samples=8, steps=4, batch=2,
                  checkpoint_every=2)


def test_labels_cover_both_sides_and_are_deterministic() -> None:
    cfg = dataclasses.replace(TOY, views=8)
    a, b = sample_training_labels(cfg, 3), sample_training_labels(cfg, 3)
    assert torch.equal(a, b) and a.shape == (8, 25)
    from sym3dinv.cameras import yaw_pitch_roll

    yaw = yaw_pitch_roll(a)[:, 0]
    assert float(yaw.min()) < -0.5 and float(yaw.max()) > 0.5 and float(yaw.abs().max()) <= cfg.yaw_range + 1e-5


def test_lr_schedule() -> None:
    assert lr_at(0, 1000, 1.0) < 0.1
    assert abs(lr_at(20, 1000, 1.0) - 1.0) < 1e-6
    assert abs(lr_at(999, 1000, 1.0) - 0.1) < 1e-3


def test_train_checkpoints_resumes_and_exports(tmp_path) -> None:
    cache = build_cache(TOY, render_synthheads, tmp_path / "cache.safetensors")
    assert cache.images.shape == (2, 2, 3, 128, 128) and cache.depth.shape == (2, 2, 1, 16, 16)
    assert bool(cache.mask.any()) and float(cache.images.min()) >= -1 and float(cache.images.max()) <= 1
    again = build_cache(TOY, render_synthheads, tmp_path / "cache.safetensors")  # loads the cached file
    assert torch.equal(again.images, cache.images)
    losses: list[float] = []
    half = dataclasses.replace(TOY, steps=2)
    train(half, cache, tmp_path / "run", progress=lambda s, d: losses.append(d["image"]))
    assert (tmp_path / "run" / "ckpt-2.pt").is_file() and len(losses) == 2
    steps_seen: list[int] = []
    weights = train(TOY, cache, tmp_path / "run", progress=lambda s, d: steps_seen.append(s))
    assert steps_seen == [2, 3]  # resumed from step 2, not restarted
    G = load_generator(weights)
    assert G.img_resolution == 128 and G.z_dim == TOY.z_dim
    assert G.rendering_kwargs["c_gen_conditioning_zero"] is True
    z = torch.randn(2, TOY.z_dim)
    out = G(z, torch.zeros(2, 25) + cache.labels[0, :1], sampling="deterministic")
    assert out.image.shape == (2, 3, 128, 128) and torch.isfinite(out.image).all()
    # w_avg is the mean of mapped random z (what inversion starts from)
    assert float(G.backbone.mapping.w_avg.abs().sum()) > 0
