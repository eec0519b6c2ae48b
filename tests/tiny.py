"""The tiny random EG3D-topology generator shared by tests (128 px output from 16 px neural renders, 8+8 depth
samples: a step takes a fraction of a second on CPU). Import as ``from tiny import TINY, make_tiny``."""

from __future__ import annotations

from typing import Any

TINY: dict[str, Any] = {
    "z_dim": 16, "w_dim": 32, "c_dim": 25, "img_resolution": 128, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 256, "channel_max": 16,
    "fused_modconv_default": "inference_only", "num_fp16_res": 0, "sr_num_fp16_res": 0, "conv_clamp": None,
    "sr_kwargs": {}, "triplane_resolution": 16, "triplane_channels": 32, "neural_rendering_resolution": 16,
    "sr_channels": [8, 8],
    "rendering_kwargs": {"superresolution_module": "training.superresolution.SuperresolutionHybrid2X",
                         "depth_resolution": 8, "depth_resolution_importance": 8},
}


def make_tiny(seed: int = 0, noise_strength: float | None = None) -> Any:
    """A frozen tiny generator with seeded weights; ``noise_strength`` makes the noise buffers matter."""
    import torch

    from sym3dinv.generator import TriPlaneGenerator

    torch.manual_seed(seed)
    G = TriPlaneGenerator(**TINY).eval().requires_grad_(False)
    if noise_strength is not None:
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(noise_strength)
    return G
