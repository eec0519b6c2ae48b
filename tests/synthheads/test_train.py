"""The default-generator trainer at toy size: it learns, checkpoints, resumes exactly, and exports a loadable model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sym3dinv.generator import load_generator
from sym3dinv.synthheads.codes import IdentityCodes, attribute_matrix, moment_prior
from sym3dinv.synthheads.train import (
    V1,
    TrainConfig,
    Trainer,
    adv_weight_at,
    build_cache,
    lr_at,
    render_synthheads,
    sample_training_labels,
    train,
)
from sym3dinv.synthheads.train_config import config_json, resume_key
from sym3dinv.synthheads.trainer import random_crops

TOY = TrainConfig(identities=2, views=2, resolution=128, neural_rendering_resolution=16, triplane_resolution=16,
                  channel_base=256, channel_max=16, sr_channels=(8, 8), depth_samples=8, steps=4, batch=2,
                  checkpoint_every=2, lpips_crop=32, adv_start=0.5, adv_ramp=0.25, r1_every=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "cache.safetensors"
    return build_cache(TOY, render_synthheads, path), path


def test_labels_cover_both_sides_and_are_deterministic() -> None:
    cfg = dataclasses.replace(TOY, views=8)
    a, b = sample_training_labels(cfg, 3), sample_training_labels(cfg, 3)
    assert torch.equal(a, b) and a.shape == (8, 25)
    from sym3dinv.cameras import yaw_pitch_roll

    yaw = yaw_pitch_roll(a)[:, 0]
    assert float(yaw.min()) < -0.5 and float(yaw.max()) > 0.5 and float(yaw.abs().max()) <= cfg.yaw_range + 1e-5


def test_schedules() -> None:
    assert lr_at(0, 1000, 1.0) < 0.1
    assert abs(lr_at(20, 1000, 1.0) - 1.0) < 1e-6
    assert abs(lr_at(999, 1000, 1.0) - 0.1) < 1e-3
    cfg = TrainConfig(steps=1000, adv_start=0.5, adv_ramp=0.1, adv_weight=0.05)
    assert adv_weight_at(cfg, 0) == 0 and adv_weight_at(cfg, 499) == 0
    assert 0 < adv_weight_at(cfg, 500) < adv_weight_at(cfg, 550) < cfg.adv_weight
    assert adv_weight_at(cfg, 600) == pytest.approx(cfg.adv_weight) and adv_weight_at(cfg, 999) == cfg.adv_weight
    assert adv_weight_at(V1, 1999) == 0  # v1's recipe has no adversarial phase


def test_resume_key_allows_a_longer_budget_only() -> None:
    assert resume_key(config_json(TOY)) == resume_key(config_json(dataclasses.replace(TOY, steps=99)))
    assert resume_key(config_json(TOY)) != resume_key(config_json(dataclasses.replace(TOY, lpips_weight=0.5)))


def test_cache_is_rendered_once_and_identical_with_workers(cache, tmp_path) -> None:
    c, path = cache
    assert c.images.shape == (2, 2, 3, 128, 128) and c.depth.shape == (2, 2, 1, 16, 16)
    assert bool(c.mask.any()) and float(c.images.min()) >= -1 and float(c.images.max()) <= 1
    assert torch.equal(build_cache(TOY, render_synthheads, path).images, c.images)  # loads the file
    two = build_cache(TOY, render_synthheads, None, workers=2)  # spawned processes, stitched in order
    assert torch.equal(two.images, c.images) and torch.equal(two.labels, c.labels)


def test_identity_codes_follow_attributes() -> None:
    attrs = attribute_matrix(range(4))
    assert attrs.shape[0] == 4 and torch.isfinite(attrs).all()
    codes = IdentityCodes(attrs, z_dim=8)
    z = codes()
    assert z.shape == (4, 8) and torch.allclose(codes(torch.tensor([2])), z[2:3], atol=1e-6)
    assert float(torch.pdist(z).min()) > 1e-3  # distinct heads get distinct codes before any training
    assert float(codes.residual.abs().sum()) == 0
    w = torch.randn(64, 5)
    assert float(moment_prior(w, w)) == 0 and float(moment_prior(w + 1, w)) > 0.9


def test_random_crops_take_the_same_window_of_both() -> None:
    a = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    ca, cb = random_crops(a, a + 0.5, 4, torch.Generator().manual_seed(0))
    assert ca.shape == (2, 3, 4, 4) and torch.equal(cb, ca + 0.5)
    whole, _ = random_crops(a, a, 0, torch.Generator())
    assert whole is a


def test_every_loss_term_is_active_in_its_phase(cache) -> None:
    tr = Trainer(TOY, cache[0])
    first = tr.train_step()
    assert {"image", "raw", "depth", "lpips", "prior"} <= set(first) and "adv" not in first
    tr.step = 2  # the adversarial phase (adv_start 0.5 of 4 steps)
    d_before = [p.clone() for p in tr.D.parameters()]
    later = tr.train_step()
    assert later["adv"] > 0 and "d" in later and "r1" in later
    assert any(not torch.equal(a, b) for a, b in zip(d_before, tr.D.parameters(), strict=True))


def test_ema_follows_the_live_generator(cache) -> None:
    tr = Trainer(dataclasses.replace(TOY, ema_decay=0.5), cache[0])
    before = [p.clone() for p in tr.G_ema.parameters()]
    tr.train_step()
    for pe, p, b in zip(tr.G_ema.parameters(), tr.G.parameters(), before, strict=True):
        assert torch.allclose(pe, 0.5 * b + 0.5 * p, atol=1e-6)


def test_resume_is_exact_and_export_loads(cache, tmp_path) -> None:
    c = cache[0]
    straight: list[dict] = []
    train(TOY, c, tmp_path / "straight", progress=lambda s, d: straight.append(d))
    resumed: list[tuple[int, dict]] = []
    train(TOY, c, tmp_path / "split", stop_at=2, progress=lambda s, d: resumed.append((s, d)))
    assert (tmp_path / "split" / "ckpt-2.pt").is_file()
    weights = train(TOY, c, tmp_path / "split", progress=lambda s, d: resumed.append((s, d)))
    assert [s for s, _ in resumed] == [0, 1, 2, 3]  # resumed at step 2, not restarted
    assert [d for _, d in resumed] == straight  # bit-identical losses, adversarial phase included
    a = load_generator(tmp_path / "straight" / "default_G.safetensors")
    b = load_generator(weights)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), k
    assert b.img_resolution == 128 and b.z_dim == TOY.z_dim
    assert b.rendering_kwargs["c_gen_conditioning_zero"] is True
    out = b(torch.randn(2, TOY.z_dim), torch.zeros(2, 25) + c.labels[0, :1], sampling="deterministic")
    assert out.image.shape == (2, 3, 128, 128) and torch.isfinite(out.image).all()
    assert float(b.backbone.mapping.w_avg.abs().sum()) > 0  # mean of mapped random z
    assert (tmp_path / "split" / "identity_codes.safetensors").is_file()
    snap = load_generator(tmp_path / "split" / f"ema-{TOY.checkpoint_every:05d}.safetensors")  # per-checkpoint EMA
    assert (tmp_path / "split" / f"ema-{TOY.checkpoint_every:05d}_codes.safetensors").is_file()
    assert snap.state_dict().keys() == b.state_dict().keys()


def test_resume_refuses_another_recipe(cache, tmp_path) -> None:
    train(dataclasses.replace(TOY, steps=2), cache[0], tmp_path / "run")
    with pytest.raises(ValueError, match="another TrainConfig"):
        train(dataclasses.replace(TOY, lpips_weight=0.5), cache[0], tmp_path / "run")


def test_command_line_trains_resumably(tmp_path) -> None:
    from sym3dinv.synthheads.train import main

    args = [str(tmp_path), "--identities", "2", "--views", "2", "--neural-rendering-resolution", "16",
            "--triplane-resolution", "16", "--channel-base", "256", "--channel-max", "16", "--depth-samples", "8",
            "--steps", "2", "--batch", "2", "--workers", "1", "--threads", "1", "--lpips-crop", "32"]
    assert main([*args, "--stop-at", "1"]) == 0 and (tmp_path / "ckpt-1.pt").is_file()
    assert main(args) == 0 and (tmp_path / "ckpt-2.pt").is_file()
    assert load_generator(tmp_path / "default_G.safetensors").z_dim == TrainConfig().z_dim


def test_fine_tune_starts_from_the_given_weights_and_codes(cache, tmp_path) -> None:
    from safetensors.torch import load_file

    from sym3dinv.errors import ConfigError
    from sym3dinv.generator.checkpoint import read_checkpoint
    from sym3dinv.generator.fingerprint import generator_fingerprint

    base = train(dataclasses.replace(TOY, steps=2), cache[0], tmp_path / "base")
    src, z = load_generator(base), load_file(str(tmp_path / "base" / "identity_codes.safetensors"))["z"]
    tuned = dataclasses.replace(TOY, init_from=str(base))
    tr = Trainer(tuned, cache[0])
    for (k, x), y in zip(src.state_dict().items(), tr.G.state_dict().values(), strict=True):
        assert torch.equal(x, y), k  # G starts at the exported EMA, not at a random init
    assert torch.allclose(tr.codes(), z, atol=1e-5)  # the codes too
    assert tr.init_fingerprint == generator_fingerprint(src)
    out = train(tuned, cache[0], tmp_path / "tuned")
    assert read_checkpoint(out).metadata["init_fingerprint"] == generator_fingerprint(src)  # recorded
    with pytest.raises(ConfigError, match="another architecture"):
        Trainer(dataclasses.replace(tuned, sr_channels=(16, 8)), cache[0])
    (tmp_path / "base" / "identity_codes.safetensors").unlink()
    with pytest.raises(Exception, match="identity codes"):
        Trainer(tuned, cache[0])
