"""The encoder shipped for the embedded generator: bound to synthheads-v2, small, documented, and its
``instant`` answer on a held-out SynthHeads head is a real fit with a usable camera estimate."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from sym3dinv.cameras import camera_label
from sym3dinv.config.presets import preset
from sym3dinv.encoder import encoder_path, load_encoder_for
from sym3dinv.generator import load_generator
from sym3dinv.invert import invert
from sym3dinv.metrics import lpips
from sym3dinv.synthheads.eval_split import eval_identity
from sym3dinv.synthheads.head import Head
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import render_head


def test_shipped_encoder_file_and_card() -> None:
    path = encoder_path("synthheads-v2")
    assert path.stat().st_size <= 20 * 2**20 and path.with_suffix(".json").is_file()
    assert (path.parent / "ENCODER_MODEL_CARD.md").is_file()


def test_instant_on_a_held_out_head() -> None:
    G = load_generator("synthheads-v2")
    enc = load_encoder_for("synthheads-v2", G)  # the fingerprint check passes
    seed = eval_identity(3, 1).seed  # a synthheads-eval identity: never seen in training
    c = camera_label(torch.tensor([math.radians(30.0)]), torch.tensor([0.05]))
    gt = render_head(Head(sample_head_params(seed)), c, G.img_resolution, background=(0.0, 0.0, 0.0))
    x = gt.rgb * 2 - 1
    r = invert(G, x[0], c[0], config=replace(preset("instant"), resolution=G.img_resolution), encoder=enc)
    assert r.metrics.lpips_alex is not None and r.metrics.lpips_alex < 0.3, r.metrics
    assert r.timings["encoder"] < 5.0  # one forward pass (generous: shared CI machines)
    with torch.no_grad():
        yaw, pitch = enc.net(F.interpolate(x, size=enc.config.resolution, mode="area"), c).yaw_pitch[0].tolist()
    assert abs(math.degrees(yaw) - 30.0) < 8.0 and abs(math.degrees(pitch) - math.degrees(0.05)) < 8.0
    with torch.no_grad():
        mean_head = G.synthesis(G.mapping(torch.zeros(1, G.z_dim), c), c).image.clamp(-1, 1)
    assert r.metrics.lpips_alex < float(lpips(mean_head, x, net="alex"))  # better than the generator's mean head
    assert r.metrics.mse < 0.7 * float((mean_head - x).square().mean())  # both on [-1, 1] images
