"""Loss functions the inversion uses, bundled so tests and benchmarks can substitute cheap ones.

Defaults come from :mod:`sym3dinv.metrics` (LPIPS v0.1 with the official linear heads; contextual loss).
Each function maps two [-1, 1] image batches ``[N, 3, H, W]`` to one value per pair ``[N]``.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

PairLoss = Callable[[Tensor, Tensor], Tensor]  # (x, y) -> [N]


@dataclass(frozen=True)
class LossFunctions:
    """The pairwise image losses of the inversion."""

    perceptual: PairLoss  # LPIPS-VGG in the method: stage-1 loss, input-view and warped-view losses
    contextual: PairLoss  # mirror branch (eye/mouth crops)
    lpips_metric: PairLoss | None = None  # LPIPS-alex for the reported input-view metric
    ssim: PairLoss | None = None  # reported metric
    identity: PairLoss | None = None  # reported metric (cosine similarity of face embeddings)


def fixed_target_loss(fn: PairLoss, target: Tensor, *, cache: bool = True) -> Callable[[Tensor], Tensor]:
    """``x -> fn(x, target)`` for a target that stays the same over many optimisation steps.

    With ``cache`` and an LPIPS-like ``fn`` (one that has ``target_features`` / ``distance_to``) the
    target's normalised backbone features are computed once here instead of at every call: the VGG pass
    on the target was a third of the loss's forward cost. Values equal the uncached ones (same ops on
    the same inputs); other losses (tests' cheap stand-ins) are called as they are.
    """
    target_features = getattr(fn, "target_features", None)
    distance_to = getattr(fn, "distance_to", None)
    if cache and callable(target_features) and callable(distance_to):
        feats = target_features(target.detach())
        return lambda x: distance_to(x, feats)
    return lambda x: fn(x, target)


def _loss_modules(losses: LossFunctions) -> list[nn.Module]:
    """The networks behind the loss functions (LPIPS modules, a VGG bound into the contextual loss)."""
    found: list[nn.Module] = []
    for fn in (losses.perceptual, losses.contextual, losses.lpips_metric):
        for obj in (fn, *getattr(fn, "keywords", {}).values()):  # functools.partial(contextual, vgg=...)
            if isinstance(obj, nn.Module) and not any(obj is m for m in found):
                found.append(obj)
    return found


def set_loss_memory_format(losses: LossFunctions, channels_last: bool) -> None:
    """Store the loss networks' conv weights NHWC (``channels_last``) or NCHW, in place.

    A convolution runs in channels-last when its weight is, and its output stays so: the whole VGG/Alex
    pass (every LPIPS and contextual-loss use, the targets' features too) follows the weights, so this one
    call is the ``perf.channels_last`` switch. Values are unchanged (a layout, not a cast); the modules are
    shared per process, so each stage sets the layout it wants when it starts.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in _loss_modules(losses):
        m.to(memory_format=fmt)


def _metric(name: str) -> Callable[..., Tensor] | None:
    """A function of ``sym3dinv.metrics`` (or its submodule of that name) if present."""
    for mod in ("sym3dinv.metrics", f"sym3dinv.metrics.{name}"):
        try:
            fn = getattr(importlib.import_module(mod), name, None)
        except ImportError:
            fn = None
        if callable(fn):
            return fn
    return None


def patch_contextual_loss(x: Tensor, y: Tensor, h: float = 0.5, eps: float = 1e-5) -> Tensor:
    """Contextual loss (Mechrez et al. 2018) on 3x3 colour patches: a stand-in when the metrics package
    has no feature-based one. Cosine distances between all patch pairs, normalised per x-patch,
    ``CX = mean_j max_i softmax-like affinity``; loss = -log(CX)."""
    n = x.shape[0]
    fx = F.unfold(x, 3, padding=1).transpose(1, 2)  # [N, P, 27]
    fy = F.unfold(y, 3, padding=1).transpose(1, 2)
    mu = fy.mean(dim=1, keepdim=True)
    fx = F.normalize(fx - mu, dim=-1)
    fy = F.normalize(fy - mu, dim=-1)
    d = 1.0 - fx @ fy.transpose(1, 2)  # [N, Px, Py] cosine distance
    d_rel = d / (d.min(dim=2, keepdim=True).values + eps)
    w = torch.exp((1.0 - d_rel) / h)
    cx = w / w.sum(dim=2, keepdim=True)
    return -torch.log(cx.max(dim=1).values.mean(dim=1) + eps).reshape(n)


def default_losses(net: str = "vgg", device: torch.device | str = "cpu") -> LossFunctions:
    """LPIPS from :mod:`sym3dinv.metrics.lpips` (models found offline) plus whatever metrics exist."""
    from sym3dinv.metrics.lpips import load_lpips

    perceptual = load_lpips(net, device)  # type: ignore[arg-type]
    alex = load_lpips("alex", device)
    contextual = _metric("contextual_loss")
    if contextual is None:
        log.warning("sym3dinv.metrics has no contextual_loss; using the colour-patch contextual loss")
        contextual = patch_contextual_loss
    elif net == "vgg":
        contextual = functools.partial(contextual, vgg=perceptual)  # reuse the loaded VGG16
    return LossFunctions(perceptual=perceptual, contextual=contextual, lpips_metric=alex,
                         ssim=_metric("ssim"), identity=_metric("identity_similarity"))
