"""EG3D's tri-plane generator: mapping -> StyleGAN2 tri-planes -> volume rendering -> super-resolution.

``TriPlaneGenerator(**init_kwargs)`` takes exactly the constructor kwargs EG3D pickles store, and its
``state_dict`` keys, shapes and order equal EG3D's, so official checkpoints load unchanged. Unlike
EG3D, ``forward`` never changes ``self`` (no cached planes, no sticky rendering resolution).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from sym3dinv.eg3d_constants import PIVOT, RADIUS, RAY_END, RAY_START
from sym3dinv.generator.networks import StyleGAN2Backbone, SuperResolution
from sym3dinv.generator.volume import (
    DecodedSamples,
    OSGDecoder,
    Sampling,
    render_planes,
    sample_from_planes,
    sample_rays,
)

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]

SR_MODULES = {  # EG3D class path -> our variant; no dynamic import of names read from a checkpoint
    "training.superresolution.SuperresolutionHybrid8XDC": "SuperresolutionHybrid8XDC",
    "training.superresolution.SuperresolutionHybrid4X": "SuperresolutionHybrid4X",
    "training.superresolution.SuperresolutionHybrid2X": "SuperresolutionHybrid2X",
}
SYNTHESIS_KWARGS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "fused_modconv_default"}
# EG3D kwargs that do not change the function on CPU (memory layout) or that we accept only at the value
# EG3D's FFHQ models use; None = any value is harmless.
HARMLESS_KWARGS: dict[str, Any] = {"fp16_channels_last": None, "channels_last": None, "architecture": "skip",
                                   "resample_filter": [1, 3, 3, 1], "use_noise": True}
RENDERING_DEFAULTS: dict[str, Any] = {
    "depth_resolution": 48, "depth_resolution_importance": 48, "ray_start": RAY_START, "ray_end": RAY_END,
    "box_warp": 1, "c_gen_conditioning_zero": False, "c_scale": 1.0, "superresolution_noise_mode": "none",
    "sr_antialias": True, "decoder_lr_mul": 1.0, "clamp_mode": "softplus", "disparity_space_sampling": False,
    "avg_camera_radius": RADIUS, "avg_camera_pivot": list(PIVOT),
}


@dataclass(frozen=True)
class SynthesisOutput:
    """Renders of one synthesis call; indexable like EG3D's dict (``out['image']``)."""

    image: Float[Tensor, "n 3 H W"]  # super-resolved image, nominally [-1, 1], not clamped
    image_raw: Float[Tensor, "n 3 r r"]  # first 3 volume-rendered feature channels, [-1, 1]
    image_depth: Float[Tensor, "n 1 r r"]  # expected distance along each unit ray (not z-depth)
    features: Float[Tensor, "n f r r"]  # all volume-rendered feature channels, [-1, 1]
    weight_sum: Float[Tensor, "n 1 r r"]  # accumulated opacity per pixel (the soft head mask)

    def __getitem__(self, key: str) -> Tensor:
        return getattr(self, key)

    def keys(self) -> Iterator[str]:
        return iter(("image", "image_raw", "image_depth"))


def autocast_context(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast on CUDA only; CPU always runs fp32 (EG3D forces fp32 off CUDA too)."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    # no weight-cast cache: PyTorch's rule for autocast inside CUDA-graph capture (stage 2)
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16,
                          cache_enabled=False)


class TriPlaneGenerator(nn.Module):
    """Pure-PyTorch EG3D ``TriPlaneGenerator``; see ``sym3dinv.generator`` for the public calls."""

    def __init__(
        self,
        z_dim: int,  # input latent size
        c_dim: int,  # camera label size (25)
        w_dim: int,  # intermediate latent size
        img_resolution: int,  # output resolution (512 for FFHQ)
        img_channels: int,  # output channels (3)
        sr_num_fp16_res: int = 0,  # > 0: fp16 super-resolution on CUDA, conv_clamp 256
        mapping_kwargs: dict[str, Any] | None = None,  # e.g. {'num_layers': 2}
        rendering_kwargs: dict[str, Any] | None = None,  # EG3D's rendering options (see RENDERING_DEFAULTS)
        sr_kwargs: dict[str, Any] | None = None,  # channel_base/channel_max are ignored by the SR (as EG3D)
        triplane_resolution: int = 256,  # extension: side of each tri-plane (EG3D: 256)
        triplane_channels: int = 32,  # extension: channels per plane (EG3D: 32)
        neural_rendering_resolution: int | None = None,  # extension: default = the SR input resolution
        sr_channels: tuple[int, int] | list[int] | None = None,  # extension: SR block widths (EG3D: fixed)
        **synthesis_kwargs: Any,  # channel_base, channel_max, num_fp16_res, conv_clamp, fused_modconv_default
    ) -> None:
        super().__init__()
        harmless = {k: synthesis_kwargs.pop(k) for k in sorted(set(synthesis_kwargs) & set(HARMLESS_KWARGS))}
        for key, value in harmless.items():
            allowed = HARMLESS_KWARGS[key]
            given = list(value) if isinstance(value, (list, tuple)) else value
            if allowed is not None and given != allowed:
                raise ValueError(f"{key}={value!r} is not supported (only EG3D's {allowed!r})")
        unknown = set(synthesis_kwargs) - SYNTHESIS_KWARGS
        if unknown:
            raise TypeError(f"TriPlaneGenerator got unknown constructor arguments: {sorted(unknown)}")
        self.init_kwargs = copy.deepcopy(dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            sr_num_fp16_res=sr_num_fp16_res, mapping_kwargs=mapping_kwargs or {}, rendering_kwargs=rendering_kwargs or {},
            sr_kwargs=sr_kwargs or {}, triplane_resolution=triplane_resolution, triplane_channels=triplane_channels,
            neural_rendering_resolution=neural_rendering_resolution,
            sr_channels=list(sr_channels) if sr_channels is not None else None, **synthesis_kwargs, **harmless))
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.triplane_channels = triplane_channels
        self.rendering_kwargs = {**RENDERING_DEFAULTS, **(rendering_kwargs or {})}
        self.register_buffer("dataset_label_std", torch.ones([c_dim]))  # EG3D's training loop adds it
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=triplane_resolution,
                                          img_channels=3 * triplane_channels, mapping_kwargs=mapping_kwargs,
                                          **synthesis_kwargs)
        sr_name = self.rendering_kwargs.get("superresolution_module", "training.superresolution.SuperresolutionHybrid8XDC")
        if sr_name not in SR_MODULES:
            raise ValueError(f"unsupported superresolution_module {sr_name!r}; supported: {sorted(SR_MODULES)}")
        sr_fused = (sr_kwargs or {}).get("fused_modconv_default", synthesis_kwargs.get("fused_modconv_default", True))
        self.superresolution = SuperResolution(SR_MODULES[sr_name], triplane_channels, img_resolution,
                                               sr_num_fp16_res=sr_num_fp16_res,
                                               sr_antialias=self.rendering_kwargs["sr_antialias"],
                                               fused_modconv_default=sr_fused, w_dim=w_dim,
                                               widths=tuple(sr_channels) if sr_channels is not None else None)
        self.decoder = OSGDecoder(triplane_channels, decoder_lr_mul=self.rendering_kwargs["decoder_lr_mul"],
                                  decoder_output_dim=32)
        self.neural_rendering_resolution = neural_rendering_resolution or self.superresolution.input_resolution
        self.num_ws = self.backbone.num_ws

    # --- EG3D's public calls -------------------------------------------------------------------------
    def mapping(self, z: Float[Tensor, "n z"], c: Float[Tensor, "n 25"], truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Float[Tensor, "n k w"]:
        """z, camera -> ws [N, num_ws, w_dim] (camera conditioning zeroed when the model says so)."""
        if self.rendering_kwargs["c_gen_conditioning_zero"]:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0), truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def planes(self, ws: Float[Tensor, "n k w"], noise_mode: str = "const",
               generator: torch.Generator | None = None, impl: str = "fast",
               fused_modconv: bool | None = None) -> Float[Tensor, "n 3 c p p"]:
        """Tri-plane features from ws (the expensive part; reuse them across cameras).

        ``fused_modconv``: None = the checkpoint's choice (EG3D: fused in eval mode); False = scale
        activations around a shared convolution: same function (~1e-6 rounding), and on CPU faster,
        much faster in backward when the weights are frozen (no per-sample weight gradients).
        """
        p = self.backbone.synthesis(ws, noise_mode=noise_mode, generator=generator, impl=impl,
                                    fused_modconv=fused_modconv)
        return p.view(len(p), 3, self.triplane_channels, p.shape[-2], p.shape[-1])  # [N, 3, C, H, W]

    def render(self, planes: Float[Tensor, "n 3 c p p"], ws: Float[Tensor, "n k w"], c: Float[Tensor, "n 25"], *,
               neural_rendering_resolution: int | None = None, sampling: Sampling = "stochastic",
               generator: torch.Generator | None = None, precision: Precision = "fp32",
               superresolution: bool = True, impl: str = "fast", fused_modconv: bool | None = None
               ) -> SynthesisOutput:
        """Volume-render given tri-planes at camera labels ``c`` and super-resolve."""
        if c.ndim != 2 or c.shape[1] != 25 or c.shape[0] != planes.shape[0]:
            raise ValueError(f"camera labels must be [N, 25] with N = {planes.shape[0]}, got {tuple(c.shape)}")
        res = neural_rendering_resolution or self.neural_rendering_resolution
        rk = self.rendering_kwargs
        origins, dirs = sample_rays(c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3), res)
        n = planes.shape[0]
        with autocast_context(planes.device, precision):
            out = render_planes(planes, self.decoder, origins, dirs, ray_start=rk["ray_start"], ray_end=rk["ray_end"],
                                depth_resolution=rk["depth_resolution"],
                                depth_resolution_importance=rk["depth_resolution_importance"],
                                box_warp=rk["box_warp"], sampling=sampling, generator=generator)
        features = out.features.permute(0, 2, 1).reshape(n, -1, res, res).contiguous()  # [N, F, r, r]
        depth = out.depth.permute(0, 2, 1).reshape(n, 1, res, res)
        weight_sum = out.weight_sum.permute(0, 2, 1).reshape(n, 1, res, res)
        rgb = features[:, :3]
        if superresolution:
            with autocast_context(planes.device, precision):
                image = self.superresolution(rgb, features, ws, noise_mode=rk["superresolution_noise_mode"], impl=impl,
                                             fused_modconv=fused_modconv)
        else:
            image = rgb
        return SynthesisOutput(image=image.float(), image_raw=rgb.float(), image_depth=depth.float(),
                               features=features.float(), weight_sum=weight_sum.float())

    def synthesis(self, ws: Float[Tensor, "n k w"], c: Float[Tensor, "n 25"],
                  neural_rendering_resolution: int | None = None, noise_mode: str = "const",
                  sampling: Sampling = "stochastic", generator: torch.Generator | None = None,
                  precision: Precision = "fp32", impl: str = "fast", fused_modconv: bool | None = None,
                  **_ignored: Any) -> SynthesisOutput:
        """ws, camera -> SynthesisOutput (``image``, ``image_raw``, ``image_depth``, ...)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        planes = self.planes(ws, noise_mode=noise_mode, generator=generator, impl=impl, fused_modconv=fused_modconv)
        return self.render(planes, ws, c, neural_rendering_resolution=neural_rendering_resolution,
                           sampling=sampling, generator=generator, precision=precision, impl=impl,
                           fused_modconv=fused_modconv)

    def forward(self, z: Float[Tensor, "n z"], c: Float[Tensor, "n 25"], truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, neural_rendering_resolution: int | None = None,
                **synthesis_kwargs: Any) -> SynthesisOutput:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, neural_rendering_resolution=neural_rendering_resolution, **synthesis_kwargs)

    def sample_mixed(self, coordinates: Float[Tensor, "n m 3"], directions: Float[Tensor, "n m 3"],
                     ws: Float[Tensor, "n k w"], truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                     noise_mode: str = "const", **_ignored: Any) -> DecodedSamples:
        """Raw density and features at arbitrary points (directions are unused by the decoder)."""
        planes = self.planes(ws, noise_mode=noise_mode)
        return self.decoder(sample_from_planes(planes, coordinates, self.rendering_kwargs["box_warp"]))

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"neural_rendering_resolution={self.neural_rendering_resolution}")
