"""Contextual loss (Mechrez et al., ECCV 2018) for the mirror branch of stage 2 (METHOD.md "Stage 2").

The mirror branch compares a render at the mirrored camera with the flipped input on eye and mouth
crops. Pixels there do not line up exactly (faces are not perfectly symmetric, the flip is not a perfect
mirror view), so the loss matches *sets* of deep features regardless of their position:

1. VGG16 features of both crops (the LPIPS backbone, same ImageNet weights and input scaling). Default
   layers relu3_3 and relu4_3: mid-level texture/part features, the layers the contextual-loss paper
   uses for non-aligned data (it uses conv3_x/conv4_x); relu1_2 is too local, relu5_3 too coarse for
   64-128 px crops.
2. Centre both feature sets by the *target's* mean feature, L2-normalise each feature vector, and take
   cosine distances ``d_ij = 1 - <x_i, y_j>`` between all source features i and target features j.
3. Relative distance ``d~_ij = d_ij / (min_k d_ik + 1e-5)``; affinity ``w_ij = exp((1 - d~_ij) / h)``
   with band width ``h = 0.5`` (paper default); ``CX_ij = w_ij / sum_k w_ik`` (normalised per source i).
4. ``CX = mean_j max_i CX_ij`` (each target feature finds its best-matching source feature);
   loss ``-log(CX)``, averaged over the chosen layers. Identical inputs give CX = 1, loss = 0 (minimum).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from sym3dinv.errors import ConfigError
from sym3dinv.metrics.lpips import LAYER_NAMES, LPIPS, load_lpips

DEFAULT_LAYERS = ("relu3_3", "relu4_3")
BAND_WIDTH = 0.5  # h in the paper
REL_EPS = 1e-5  # eps of the relative-distance normalisation
LOG_EPS = 1e-5  # keeps -log finite if CX underflows
MAX_POSITIONS = 4096  # feature maps larger than this are average-pooled first: the pair matrix is O(P^2)


def cx_from_features(
    x: Float[Tensor, "n c hx wx"],
    y: Float[Tensor, "n c hy wy"],
    h: float = BAND_WIDTH,
) -> Float[Tensor, " n"]:
    """Contextual similarity CX in (0, 1] between source features x and target features y."""
    if x.ndim != 4 or y.ndim != 4 or x.shape[:2] != y.shape[:2]:
        raise ConfigError(f"feature maps must be [N, C, H, W] with equal N and C: {tuple(x.shape)}, {tuple(y.shape)}")
    n, c = x.shape[:2]
    xs = x.reshape(n, c, -1)  # [N, C, Px]
    ys = y.reshape(n, c, -1)  # [N, C, Py]
    mu = ys.mean(dim=2, keepdim=True)  # target mean per image and channel
    xs = F.normalize(xs - mu, dim=1)
    ys = F.normalize(ys - mu, dim=1)
    d = (1.0 - torch.bmm(xs.transpose(1, 2), ys)).clamp_min(0.0)  # [N, Px, Py] cosine distance
    d_rel = d / (d.min(dim=2, keepdim=True).values + REL_EPS)
    cx = torch.softmax((1.0 - d_rel) / h, dim=2)  # == exp(...)/sum_k exp(...), overflow-safe
    return cx.max(dim=1).values.mean(dim=1)  # max over sources i, mean over targets j


def _pool_to_budget(f: Tensor, max_positions: int) -> Tensor:
    hw = f.shape[-2] * f.shape[-1]
    if hw <= max_positions:
        return f
    k = 2
    while hw // (k * k) > max_positions:
        k *= 2
    return F.avg_pool2d(f, k, ceil_mode=True)


def contextual_loss(
    x: Float[Tensor, "n 3 h w"],
    y: Float[Tensor, "n 3 h w"],
    *,
    layers: tuple[str, ...] = DEFAULT_LAYERS,
    h: float = BAND_WIDTH,
    vgg: LPIPS | None = None,
    max_positions: int = MAX_POSITIONS,
) -> Float[Tensor, " n"]:
    """Contextual loss ``-log CX`` per pair of [-1, 1] RGB crops (x: source/render, y: target), mean over
    ``layers``. Differentiable w.r.t. ``x`` (and ``y``). ``vgg``: an LPIPS-VGG module to reuse (else the
    shared cached one for x's device/dtype)."""
    if x.ndim != 4 or x.shape[1] != 3 or y.ndim != 4 or y.shape[1] != 3 or x.shape[0] != y.shape[0]:
        raise ConfigError(f"contextual_loss expects two [N, 3, H, W] batches, got {tuple(x.shape)}, {tuple(y.shape)}")
    names = LAYER_NAMES["vgg"]
    unknown = [name for name in layers if name not in names]
    if unknown or not layers:
        raise ConfigError(f"contextual_loss layers must be among {names}, got {layers}")
    net = vgg if vgg is not None else load_lpips("vgg", x.device, x.dtype)
    if net.net_name != "vgg":
        raise ConfigError("contextual_loss needs the VGG16 backbone (LPIPS net='vgg')")
    idx = [names.index(name) for name in layers]
    upto = max(idx) + 1
    fx = net.features(x, upto)
    fy = net.features(y, upto)
    losses = []
    for i in idx:
        cx = cx_from_features(_pool_to_budget(fx[i], max_positions), _pool_to_budget(fy[i], max_positions), h)
        losses.append(-torch.log(cx.clamp_min(LOG_EPS)))
    return torch.stack(losses, dim=0).mean(dim=0)
