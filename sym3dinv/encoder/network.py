"""The encoder network: aligned image (+ camera label) -> W+ offsets, and a (yaw, pitch) estimate.

A plain residual CNN (no torchvision): stride-2 stages; the last ``pyramid`` stages' outputs are pooled to a
4x4 grid (not to one vector: pose and layout are *where* things are), flattened, projected and summed
(coarse and fine evidence together, as pSp's feature pyramid does with its map2style heads, in one vector
here). The W+ head adds an embedding of the camera label and
ends in a zero-initialised layer, so an untrained encoder predicts exactly the camera-conditioned mean w;
the camera head sees the image features only, so its estimate is a real one even when a label is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from sym3dinv.config.encoder import EncoderConfig


@dataclass(frozen=True)
class EncoderOutput:
    """What one forward pass gives."""

    offsets: Float[Tensor, "n k w"]  # W+ offsets from the camera-conditioned mean w
    yaw_pitch: Float[Tensor, "n 2"] | None  # camera estimate (radians); None without the camera head


GRID = 4
"""Each pyramid level is pooled to GRID x GRID cells before its projection."""


class ResidualBlock(nn.Module):
    """conv3x3(stride) -> LeakyReLU -> conv3x3, plus a (strided 1x1) skip; the sum scaled by 1/sqrt(2)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if (cin != cout or stride != 1) else None
        for conv in (self.conv0, self.conv1, self.skip):  # variance-preserving for LeakyReLU(0.2): PyTorch's
            if conv is not None:  # default init shrinks activations ~3x per layer, to nothing after ten
                nn.init.kaiming_normal_(conv.weight, a=0.2, nonlinearity="leaky_relu")
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(F.leaky_relu(self.conv0(x), 0.2))
        s = x if self.skip is None else self.skip(x)
        return F.leaky_relu((y + s) / math.sqrt(2), 0.2)


class Encoder(nn.Module):
    """``Encoder(config, num_ws, w_dim)``; call with images in [-1, 1] and optional camera labels."""

    def __init__(self, config: EncoderConfig, num_ws: int, w_dim: int) -> None:
        super().__init__()
        self.config, self.num_ws, self.w_dim = config, num_ws, w_dim
        ch = config.channels
        self.stem = nn.Conv2d(3, ch[0], 3, padding=1)
        nn.init.kaiming_normal_(self.stem.weight, a=0.2, nonlinearity="leaky_relu")
        stages = []
        for i, c in enumerate(ch):
            blocks = [ResidualBlock(ch[max(0, i - 1)] if i else ch[0], c, 2)]
            blocks += [ResidualBlock(c, c, 1) for _ in range(config.blocks)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Linear(c * GRID * GRID, config.feature) for c in ch[-config.pyramid:])
        f = config.feature
        self.camera_embed = nn.Sequential(nn.Linear(25, f), nn.LeakyReLU(0.2), nn.Linear(f, f)) if config.use_camera else None
        self.w_head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(f, f), nn.LeakyReLU(0.2), nn.Linear(f, num_ws * w_dim))
        nn.init.zeros_(self.w_head[-1].weight)  # untrained: offsets 0, the prediction is the mean w
        nn.init.zeros_(self.w_head[-1].bias)
        self.camera_head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(f, 2)) if config.predict_camera else None

    def features(self, image: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n f"]:
        """The fused image feature vector (pyramid levels pooled to a grid, projected and summed)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"encoder input must be [N, 3, H, W], got {tuple(image.shape)}")
        res = self.config.resolution
        if image.shape[-2:] != (res, res):
            mode = "area" if image.shape[-1] > res else "bilinear"
            image = F.interpolate(image, size=(res, res), mode=mode, align_corners=None if mode == "area" else False)
        x = F.leaky_relu(self.stem(image), 0.2)
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(F.adaptive_avg_pool2d(x, GRID).flatten(1))
        levels = pooled[-self.config.pyramid:]
        return torch.stack([lat(p) for lat, p in zip(self.lateral, levels, strict=True)]).sum(0)

    def forward(self, image: Float[Tensor, "n 3 h w"], camera: Float[Tensor, "n 25"] | None = None) -> EncoderOutput:
        """Offsets [N, num_ws, w_dim] and the camera estimate; ``camera`` is needed when ``use_camera``."""
        f = self.features(image)
        yaw_pitch = self.camera_head(f) if self.camera_head is not None else None
        h = f
        if self.camera_embed is not None:
            if camera is None:
                raise ValueError("this encoder is conditioned on the camera: pass the input's 25-d label")
            if camera.shape != (image.shape[0], 25):
                raise ValueError(f"camera labels must be [{image.shape[0]}, 25], got {tuple(camera.shape)}")
            h = h + self.camera_embed(camera.to(f.dtype))
        offsets = self.w_head(h).view(-1, self.num_ws, self.w_dim)
        return EncoderOutput(offsets=offsets, yaw_pitch=yaw_pitch)

    def extra_repr(self) -> str:
        return f"num_ws={self.num_ws}, w_dim={self.w_dim}, resolution={self.config.resolution}"
