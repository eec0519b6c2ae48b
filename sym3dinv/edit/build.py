"""Build an attribute set: latents of SynthHeads identities (known seeds) + their ground-truth attributes.

Three ways to get a latent for an identity (``method``):

- ``fit`` (default, what the shipped set uses): optimise one w (broadcast to every layer) so that the
  generator's frontal render matches the world's render of that seed: MSE on the 128 px and raw images
  plus L1 on z-depth of head pixels (weight 2), i.e. the default generator's own training objective,
  on a camera it is trained for. Depth supervision pins the geometry (face width) that a photo loss
  alone leaves ambiguous, and it costs a fraction of an LPIPS inversion (no VGG, no mean-w sampling).
- ``invert``: the inversion stage 1 exactly as the pipeline runs it (``preset("cpu", "w+")``, fewer
  steps), one frontal render per seed; latents are W+ ``[num_ws, w_dim]``. Slower; use it to learn
  directions from the same kind of pivots the pipeline makes.
- ``codes``: for an embedded generator that ships its training identities' codes
  (``<stem>_codes.safetensors``, :func:`sym3dinv.synthheads.codes.embedded_codes`), the w that training
  itself learnt for that seed, ``mapping(z_seed)``: exact for training seeds and takes seconds.

Directions learned from w (one vector for all layers) apply to any W+ pivot (``[w_dim]`` broadcast).
The set also stores the meters (:mod:`sym3dinv.edit.attributes`) of the generator's renders of every
latent, whose spread is the unit the edit tests measure changes in.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sym3dinv.edit.attributes import METERS, frontal_camera, gt_attributes, render_for_meter
from sym3dinv.edit.learn import AttributeSet
from sym3dinv.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from sym3dinv.generator import TriPlaneGenerator

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]


def _world_targets(seeds: Sequence[int], resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frontal world renders on black: images [-1, 1] [N,3,R,R], z-depth [N,1,R,R], head mask [N,1,R,R]."""
    import torch

    from sym3dinv.synthheads import render_views

    c = torch.from_numpy(frontal_camera()).reshape(1, 25)
    rs = [render_views(int(s), c, resolution, background=(0.0, 0.0, 0.0)) for s in seeds]
    return (torch.cat([r.rgb for r in rs]) * 2 - 1, torch.cat([r.z_depth for r in rs]),
            torch.cat([r.mask for r in rs]))


def mean_w(G: TriPlaneGenerator, samples: int = 4096, seed: int = 0) -> torch.Tensor:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(samples, G.z_dim, generator=g)
        return G.mapping(z, torch.zeros(samples, 25))[:, 0].mean(0)


def fit_w(G: TriPlaneGenerator, images: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, *,
          steps: int = 60, lr: float = 0.03, depth_weight: float = 2.0) -> torch.Tensor:
    """w [N, w_dim] per target (frontal camera), Adam from the mean w with a cosine learning rate."""
    import torch
    import torch.nn.functional as F

    from sym3dinv.cameras import ray_distance_to_z

    n = images.shape[0]
    c = torch.from_numpy(frontal_camera()).reshape(1, 25).expand(n, -1)
    raw_res = G.neural_rendering_resolution
    raw_t = F.interpolate(images, size=(raw_res, raw_res), mode="area")
    z_t = F.interpolate(depth, size=(raw_res, raw_res), mode="area")
    m_t = F.interpolate(mask.float(), size=(raw_res, raw_res), mode="area") > 0.99
    w = mean_w(G).repeat(n, 1).clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(1, steps))))
        ws = w[:, None].expand(-1, G.num_ws, -1)
        o = G.synthesis(ws, c, noise_mode="const", sampling="deterministic", fused_modconv=False)
        z = ray_distance_to_z(o.image_depth, c)
        loss = (F.mse_loss(o.image, images) + F.mse_loss(o.image_raw, raw_t)
                + depth_weight * (z - z_t).abs()[m_t].mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == steps - 1:
            log.info("fit step %d/%d loss %.4f", step + 1, steps, float(loss.detach()))
    return w.detach()


def codes_w(G: TriPlaneGenerator, generator: str, seeds: Sequence[int]) -> torch.Tensor:
    """w [N, w_dim] of training seeds from the identity codes the embedded generator learnt (no fitting)."""
    import torch

    from sym3dinv.synthheads.codes import embedded_codes

    z = embedded_codes(generator)
    bad = [s for s in seeds if not 0 <= s < z.shape[0]]
    if bad:
        raise ConfigError(f"seeds {bad[:4]} were not training identities of {generator} (0..{z.shape[0] - 1})")
    with torch.no_grad():
        return G.mapping(z[list(seeds)], torch.zeros(len(seeds), 25))[:, 0]


def invert_ws(G: TriPlaneGenerator, images: torch.Tensor, steps: int) -> torch.Tensor:
    """Stage-1 W+ pivots [N, num_ws, w_dim] with the pipeline's inversion (``cpu`` preset, ``w+`` mode)."""
    import torch

    from sym3dinv.config.presets import preset
    from sym3dinv.invert import invert_batch

    cfg = preset("cpu", "w+")
    cfg = dataclasses.replace(cfg, stage1=dataclasses.replace(cfg.stage1, steps=steps))
    c = torch.from_numpy(frontal_camera()).reshape(1, 25).expand(images.shape[0], -1)
    res = invert_batch(G, images, c, config=cfg)
    return torch.cat([r.ws for r in res])


def remeasure(aset: AttributeSet, G: TriPlaneGenerator | None = None, batch: int = 8) -> AttributeSet:
    """The same set with its meters recomputed from the latents (after a change to the meters)."""
    import torch

    from sym3dinv.generator import load_generator

    G = G if G is not None else load_generator(str(aset.meta.get("generator", "synthheads")))
    meters = []
    for lo in range(0, len(aset.seeds), batch):
        lat = torch.from_numpy(aset.latents[lo:lo + batch])
        ws = lat[:, None].expand(-1, G.num_ws, -1) if lat.ndim == 2 else lat
        meters += [r.measure() for r in render_for_meter(G, ws)]
    return dataclasses.replace(aset, meter_names=METERS, meters=np.array([[m[k] for k in METERS] for m in meters]))


def build_attribute_set(
    seeds: Sequence[int],
    *,
    G: TriPlaneGenerator | None = None,
    generator: str = "synthheads",
    method: str = "fit",
    steps: int = 60,
    batch: int = 8,
    resolution: int = 128,
    progress: Progress | None = None,
) -> AttributeSet:
    """Latents + ground-truth attributes + meters for ``seeds`` (see the module doc for ``method``)."""
    import torch

    from sym3dinv.generator import load_generator

    if method not in ("fit", "invert", "codes"):
        raise ConfigError(f"unknown method {method!r}; use fit, invert or codes")
    if not seeds:
        raise ConfigError("no seeds")
    G = G if G is not None else load_generator(generator)
    t0 = time.perf_counter()
    latents, meters = [], []
    for lo in range(0, len(seeds), batch):
        chunk = [int(s) for s in seeds[lo:lo + batch]]
        if method == "codes":
            w = codes_w(G, generator, chunk)
            ws = w[:, None].expand(-1, G.num_ws, -1)
            latents.append(w.numpy())
            meters += [r.measure() for r in render_for_meter(G, ws)]
            continue
        images, depth, mask = _world_targets(chunk, resolution)
        if method == "fit":
            w = fit_w(G, images, depth, mask, steps=steps)
            ws = w[:, None].expand(-1, G.num_ws, -1)
            latents.append(w.numpy())
        else:
            ws = invert_ws(G, images, steps)
            latents.append(ws.numpy())
        meters += [r.measure() for r in render_for_meter(G, ws)]
        done = lo + len(chunk)
        log.info("attribute set: %d/%d identities (%.0f s)", done, len(seeds), time.perf_counter() - t0)
        if progress is not None:
            progress(done, len(seeds), f"{time.perf_counter() - t0:.0f} s")
    gts = [gt_attributes(s) for s in seeds]
    names = tuple(gts[0])
    meta = {"method": method, "steps": steps, "resolution": resolution, "generator": generator,
            "camera": "frontal (yaw 0, pitch 0)", "seconds": round(time.perf_counter() - t0, 1),
            "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
            "torch_threads": torch.get_num_threads(), "latent": "w+ [num_ws, w_dim]" if method == "invert" else "w [w_dim]"}
    return AttributeSet(seeds=np.asarray(seeds, dtype=np.int64), latents=np.concatenate(latents).astype(np.float32),
                        attribute_names=names, attributes=np.array([[g[k] for k in names] for g in gts]),
                        meter_names=METERS, meters=np.array([[m[k] for k in METERS] for m in meters]), meta=meta)
