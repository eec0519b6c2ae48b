"""Per-image reconstruction metrics: MSE, PSNR and SSIM, each with an optional mask.

Images are NCHW; sym3dinv's convention is RGB in [-1, 1], so the PSNR/SSIM ``data_range`` defaults to
2.0 (pass 1.0 for [0, 1] images, 255 for uint8 values). Every function returns one value per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.errors import ConfigError

DATA_RANGE = 2.0  # [-1, 1] images


def _check_pair(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor | None:
    if a.ndim != 4 or a.shape != b.shape:
        raise ConfigError(f"expected two [N, C, H, W] images of the same shape, got {tuple(a.shape)} and "
                          f"{tuple(b.shape)}")
    if mask is None:
        return None
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[0] != a.shape[0] or mask.shape[-2:] != a.shape[-2:] or mask.shape[1] not in (1, a.shape[1]):
        raise ConfigError(f"mask must be [N, 1, H, W] or [N, H, W] matching {tuple(a.shape)}, got {tuple(mask.shape)}")
    return mask.to(a.dtype)


def mse(
    a: Float[Tensor, "n c h w"],
    b: Float[Tensor, "n c h w"],
    mask: Float[Tensor, "n 1 h w"] | None = None,
) -> Float[Tensor, " n"]:
    """Mean squared error per image; with a mask, the mask-weighted mean over pixels and channels."""
    m = _check_pair(a, b, mask)
    se = (a - b) ** 2
    if m is None:
        return se.mean(dim=(1, 2, 3))
    m = m.expand_as(se)
    return (se * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1e-12)


def psnr(
    a: Float[Tensor, "n c h w"],
    b: Float[Tensor, "n c h w"],
    mask: Float[Tensor, "n 1 h w"] | None = None,
    data_range: float = DATA_RANGE,
) -> Float[Tensor, " n"]:
    """Peak signal-to-noise ratio in dB, ``10 log10(R^2 / MSE)``; R = 2 for [-1, 1] images (inf if equal)."""
    return 10.0 * torch.log10(data_range**2 / mse(a, b, mask))


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> Tensor:
    """Normalised 1-D Gaussian taps; size 11 = scipy's ``truncate=3.5`` radius for sigma 1.5."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(
    a: Float[Tensor, "n c h w"],
    b: Float[Tensor, "n c h w"],
    data_range: float = DATA_RANGE,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Float[Tensor, "n c hv wv"]:
    """Local SSIM (Wang et al. 2004) at every position where the Gaussian window fits inside the image.

    Population (not sample) covariances, as ``skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``. skimage filters the whole image with reflected borders and then
    crops ``(win_size - 1) // 2`` pixels from each side before averaging; the kept values never touch the
    padding, so a 'valid' convolution gives exactly the same map without any border rule.
    """
    _check_pair(a, b, None)
    n, c, h, w = a.shape
    if h < win_size or w < win_size:
        raise ConfigError(f"SSIM needs images of at least {win_size}x{win_size}, got {h}x{w}")
    g = gaussian_window(win_size, sigma, a.dtype).to(a.device)
    gx = g.view(1, 1, 1, win_size).expand(c, 1, 1, win_size)
    gy = g.view(1, 1, win_size, 1).expand(c, 1, win_size, 1)

    def filt(x: Tensor) -> Tensor:  # separable depthwise Gaussian, 'valid'
        return F.conv2d(F.conv2d(x, gx, groups=c), gy, groups=c)

    ua, ub = filt(a), filt(b)
    vaa = filt(a * a) - ua * ua
    vbb = filt(b * b) - ub * ub
    vab = filt(a * b) - ua * ub
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (vaa + vbb + c2))


def ssim(
    a: Float[Tensor, "n c h w"],
    b: Float[Tensor, "n c h w"],
    mask: Float[Tensor, "n 1 h w"] | None = None,
    data_range: float = DATA_RANGE,
) -> Float[Tensor, " n"]:
    """Mean SSIM per image (channels averaged), Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03.

    With a mask, the local SSIM values are averaged with the mask value at each window centre as the
    weight (windows near the mask edge still see a few outside pixels; erode the mask if that matters).
    Computed in float64 internally: the variance terms cancel badly in float32.
    """
    m = _check_pair(a, b, mask)
    dt = a.dtype
    smap = ssim_map(a.double(), b.double(), data_range)
    if m is None:
        return smap.mean(dim=(1, 2, 3)).to(dt)
    r = (a.shape[-1] - smap.shape[-1]) // 2
    wgt = m.double()[:, :, r : a.shape[-2] - r, r : a.shape[-1] - r].expand_as(smap)
    return ((smap * wgt).sum(dim=(1, 2, 3)) / wgt.sum(dim=(1, 2, 3)).clamp_min(1e-12)).to(dt)


def psnr_from_mse(value: float, data_range: float = DATA_RANGE) -> float:
    """Closed form used by reports that store MSE only."""
    return math.inf if value == 0 else 10.0 * math.log10(data_range**2 / value)
