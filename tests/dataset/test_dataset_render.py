"""Renders of an identity use the tuned generator (G + delta) exactly as the inversion's own renderer."""

from __future__ import annotations

import numpy as np
import torch

from sym3dinv.cameras import camera_label
from sym3dinv.dataset.render import call_tuned, delta_tensors, load_identity, render_identity
from sym3dinv.generator import load_generator
from sym3dinv.invert import render_views, synthesize
from sym3dinv.store import RunStore


def test_identity_renders_match_render_views_with_the_delta(tiny_store: str, tiny_checkpoint: str) -> None:
    store = RunStore(tiny_store)
    row = store.done_rows()[0]
    ident = load_identity(store, row)
    assert ident.ws.ndim == 2 and ident.delta and ident.generator == tiny_checkpoint
    assert "psnr" in ident.metrics
    G = load_generator(ident.generator)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    cams = camera_label(torch.tensor([-0.3, 0.0, 0.4]), torch.tensor([0.0, 0.1, -0.1])).float()
    tensors = delta_tensors(G, ident.delta)
    views = render_identity(G, ident.ws, cams.numpy(), tensors=tensors, chunk=2)
    ref = render_views(G, torch.from_numpy(ident.ws)[None], cams,
                       delta={k: torch.from_numpy(v) for k, v in ident.delta.items()})
    ref_rgb = ((ref.image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert views.rgb.shape == (3, G.img_resolution, G.img_resolution, 3)
    assert np.abs(views.rgb.astype(int) - ref_rgb.astype(int)).max() <= 1
    np.testing.assert_allclose(views.depth, ref.depth_z[:, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(views.ray_depth, ref.depth[:, 0].numpy(), atol=1e-4)
    plain = render_identity(G, ident.ws, cams.numpy(), tensors=None)
    assert np.abs(plain.rgb.astype(int) - views.rgb.astype(int)).mean() > 0.1  # the delta matters
    for k, v in G.state_dict().items():  # the caller's generator is never modified
        assert torch.equal(v, before[k]), k


def test_alpha_is_the_renderers_opacity_and_geometry_pass_matches_it(tiny_store: str, tiny_checkpoint: str) -> None:
    store = RunStore(tiny_store)
    ident = load_identity(store, store.done_rows()[0])
    G = load_generator(tiny_checkpoint)
    tensors = delta_tensors(G, ident.delta)
    cams = camera_label(torch.tensor([0.0, 0.5])).float()
    with torch.no_grad():
        o = call_tuned(G, tensors, lambda G_: synthesize(G_, torch.from_numpy(ident.ws)[None].expand(2, -1, -1), cams))
    base = render_identity(G, ident.ws, cams, tensors=tensors)
    np.testing.assert_allclose(base.alpha, o.weight_sum[:, 0].clamp(0, 1).numpy(), atol=1e-5)
    r = G.neural_rendering_resolution
    # a separate geometry pass at the same resolution reproduces the RGB pass's depth and opacity
    from sym3dinv.dataset.render import geometry_pass

    with torch.no_grad():
        planes = call_tuned(G, tensors, lambda G_: G_.planes(torch.from_numpy(ident.ws)[None]))
        d, a = call_tuned(G, tensors, lambda G_: geometry_pass(G_, planes, cams, r, ray_chunk=100))
    np.testing.assert_allclose(d[:, 0].numpy(), base.ray_depth, atol=1e-4)
    np.testing.assert_allclose(a[:, 0].clamp(0, 1).numpy(), base.alpha, atol=1e-5)
    hi = render_identity(G, ident.ws, cams, tensors=tensors, resolution=32, depth_resolution=2 * r)
    assert hi.rgb.shape == (2, 32, 32, 3) and hi.depth.shape == (2, 2 * r, 2 * r)
