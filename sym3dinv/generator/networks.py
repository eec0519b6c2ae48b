"""StyleGAN2 networks as EG3D uses them: mapping, synthesis (tri-plane backbone), super-resolution.

Attribute names (fc0, embed, b4..b256, conv0/conv1/torgb, affine, noise_const, resample_filter,
block0/block1) *are* EG3D's checkpoint key format; weights are stored as N(0, 1) and scaled at run time
(equalised learning rate), so official state dicts load unchanged and mean the same thing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from sym3dinv.generator.ops import bias_act, modulated_conv2d, normalize_2nd_moment, setup_filter, upsample2d


def block_dtype(use_fp16: bool, device: torch.device, force_fp32: bool = False) -> torch.dtype:
    """Compute dtype of a synthesis block: fp16 only for fp16 blocks on CUDA (EG3D forces fp32 elsewhere;
    the block's conv_clamp still applies, so CPU results equal EG3D's CPU results)."""
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate: weight * lr_multiplier / sqrt(in_features)."""

    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        bias: bool = True,  # learn a bias?
        activation: str = "linear",  # 'linear' or 'lrelu'
        lr_multiplier: float = 1.0,  # learning-rate multiplier (weights stored divided by it)
        bias_init: float = 0.0,  # initial bias value
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Float[Tensor, "n i"]) -> Float[Tensor, "n o"]:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z (+ embedded camera c) -> w, broadcast to ``num_ws``; tracks w_avg for truncation."""

    def __init__(
        self,
        z_dim: int,  # latent size, 0 = none
        c_dim: int,  # conditioning label size, 0 = none
        w_dim: int,  # intermediate latent size
        num_ws: int | None,  # number of ws to broadcast to, None = return [N, w_dim]
        num_layers: int = 8,  # FC layers
        embed_features: int | None = None,  # label embedding width, None = w_dim
        layer_features: int | None = None,  # hidden width, None = w_dim
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,  # mapping layers learn 100x slower (StyleGAN)
        w_avg_beta: float | None = 0.998,  # decay of the tracked mean w, None = no tracking
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        embed_features = 0 if c_dim == 0 else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = torch.cat([self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi), x[:, truncation_cutoff:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,  # output resolution
        kernel_size: int = 3,
        up: int = 1,  # 2 = upsample before the nonlinearity (fused with the conv)
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,  # clamp pre-activation outputs to +-this, None = off
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = math.sqrt(2.0) if activation == "lrelu" else 1.0
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const", fused_modconv: bool = True,
                gain: float = 1.0, generator: torch.Generator | None = None, impl: str = "fast") -> Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                generator=generator) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if not fused_modconv and self.activation == "lrelu":  # fold demod, noise, bias, gain into one pass
            x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, fused=False, impl=impl,
                                 bias=self.bias, out_gain=self.act_gain * gain)
            x = torch.nn.functional.leaky_relu(x, 0.2)  # lrelu(g * y) = g * lrelu(y) for g > 0
            return x.clamp(-clamp, clamp) if clamp is not None else x
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused_modconv, impl=impl)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation (skip-architecture output head)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool = True) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip-architecture synthesis network (optionally without upsampling)."""

    def __init__(
        self,
        in_channels: int,  # 0 = first block (learned constant input)
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        use_fp16: bool = False,  # fp16 on CUDA only; CPU always runs fp32 (as EG3D)
        conv_clamp: float | None = 256,
        fused_modconv_default: bool | str = True,  # True, False or 'inference_only'
        upsample: bool = True,  # False = EG3D's SynthesisBlockNoUp (super-resolution input block)
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.is_last, self.use_fp16, self.upsample = is_last, use_fp16, upsample
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2 if upsample else 1,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, resample_filter=resample_filter,
                                    conv_clamp=conv_clamp)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb += 1

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Float[Tensor, "n k w"], noise_mode: str = "const",
                force_fp32: bool = False, fused_modconv: bool | None = None,
                generator: torch.Generator | None = None, impl: str = "fast") -> tuple[Tensor, Tensor]:
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, ws.device, force_fp32)
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training
        kw = {"noise_mode": noise_mode, "fused_modconv": fused_modconv, "generator": generator, "impl": impl}
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), **kw)
        else:
            x = self.conv0(x.to(dtype), next(w_iter), **kw)
            x = self.conv1(x, next(w_iter), **kw)
        if img is not None and self.upsample:
            img = upsample2d(img, self.resample_filter, impl=impl)
        y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
        img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """StyleGAN2 synthesis; in EG3D its 'image' is the 3 x C tri-plane feature stack."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,  # output side (tri-plane resolution)
        img_channels: int,  # output channels (3 planes x C)
        channel_base: int = 32768,  # channels at resolution r = min(channel_base // r, channel_max)
        channel_max: int = 512,
        num_fp16_res: int = 4,  # highest resolutions run in fp16 on CUDA
        conv_clamp: float | None = 256,
        fused_modconv_default: bool | str = True,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(channels[r // 2] if r > 4 else 0, channels[r], w_dim, r, img_channels,
                                   is_last=r == img_resolution, use_fp16=r >= fp16_resolution,
                                   conv_clamp=conv_clamp, fused_modconv_default=fused_modconv_default)
            self.num_ws += block.num_conv + (block.num_torgb if r == img_resolution else 0)
            setattr(self, f"b{r}", block)

    def forward(self, ws: Float[Tensor, "n k w"], **block_kwargs: Any) -> Tensor:
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), **block_kwargs)
            w_idx += block.num_conv
        return img


class StyleGAN2Backbone(nn.Module):
    """EG3D's ``backbone``: synthesis first, then mapping (the order of the checkpoint keys)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, **synthesis_kwargs: Any) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, **(mapping_kwargs or {}))


class SuperResolution(nn.Module):
    """EG3D's SuperresolutionHybrid{2X,4X,8XDC}: two synthesis blocks driven by ws[:, -1].

    Widths are fixed by the class, not by channel_base (as in EG3D): 8XDC is 32->256 at 256 px and
    256->128 at 512 px; 4X/2X are 32->128 (no upsampling, at the input resolution) and 128->64.
    """

    VARIANTS = {  # name: (output res, input res, block0 out, block1 out, block0 upsamples, has top filter)
        "SuperresolutionHybrid8XDC": (512, 128, 256, 128, True, False),
        "SuperresolutionHybrid4X": (256, 128, 128, 64, False, True),
        "SuperresolutionHybrid2X": (128, 64, 128, 64, False, True),
    }

    def __init__(
        self,
        variant: str,  # one of VARIANTS
        channels: int,  # feature-image channels from the renderer (32)
        img_resolution: int,  # output resolution; must equal the variant's
        sr_num_fp16_res: int = 0,  # > 0: fp16 blocks on CUDA with conv_clamp 256 (clamp applies on CPU too)
        sr_antialias: bool = True,  # antialiased resize of inputs that are not at the input resolution
        fused_modconv_default: bool | str = True,
        w_dim: int = 512,
        widths: tuple[int, int] | None = None,  # extension: block widths, None = EG3D's fixed widths
    ) -> None:
        super().__init__()
        out_res, in_res, c0, c1, up0, top_filter = self.VARIANTS[variant]
        if widths is not None:
            c0, c1 = widths
        if img_resolution != out_res:
            raise ValueError(f"{variant} produces {out_res} px, img_resolution is {img_resolution}")
        self.variant, self.input_resolution, self.sr_antialias = variant, in_res, sr_antialias
        use_fp16 = sr_num_fp16_res > 0
        clamp = 256 if use_fp16 else None
        self.block0 = SynthesisBlock(channels, c0, w_dim, out_res // 2 if up0 else in_res, 3, is_last=False,
                                     use_fp16=use_fp16, conv_clamp=clamp, fused_modconv_default=fused_modconv_default,
                                     upsample=up0)
        self.block1 = SynthesisBlock(c0, c1, w_dim, out_res, 3, is_last=True, use_fp16=use_fp16, conv_clamp=clamp,
                                     fused_modconv_default=fused_modconv_default)
        if top_filter:
            self.register_buffer("resample_filter", setup_filter((1, 3, 3, 1)))

    def forward(self, rgb: Tensor, x: Tensor, ws: Tensor, **block_kwargs: Any) -> Tensor:
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        # EG3D resizes whenever the size differs, except 4X, which only enlarges smaller inputs
        resize = x.shape[-1] < self.input_resolution if self.variant == "SuperresolutionHybrid4X" else (
            x.shape[-1] != self.input_resolution)
        if resize:
            size = (self.input_resolution, self.input_resolution)
            x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                                antialias=self.sr_antialias)
            rgb = torch.nn.functional.interpolate(rgb, size=size, mode="bilinear", align_corners=False,
                                                  antialias=self.sr_antialias)
        x, rgb = self.block0(x, rgb, ws, **block_kwargs)
        x, rgb = self.block1(x, rgb, ws, **block_kwargs)
        return rgb
