"""Losses and metrics: LPIPS, MSE/PSNR/SSIM, contextual loss, identity similarity, depth error.

Everything is plain torch (identity uses onnxruntime + OpenCV) and offline: weights come from the model
directory (``sym3dinv.models.find_model``). Images are NCHW RGB in [-1, 1] unless a function says otherwise.
"""

from sym3dinv.metrics.contextual import contextual_loss
from sym3dinv.metrics.depth import DepthError, depth_error
from sym3dinv.metrics.identity import (
    ArcFaceOnnxEmbedder,
    IdentityEmbedder,
    IdentityResult,
    SFaceEmbedder,
    identity_similarity,
)
from sym3dinv.metrics.image import mse, psnr, ssim
from sym3dinv.metrics.lpips import LPIPS, LpipsTarget, load_lpips, lpips

__all__ = [
    "LPIPS",
    "ArcFaceOnnxEmbedder",
    "DepthError",
    "IdentityEmbedder",
    "IdentityResult",
    "LpipsTarget",
    "SFaceEmbedder",
    "contextual_loss",
    "depth_error",
    "identity_similarity",
    "load_lpips",
    "lpips",
    "mse",
    "psnr",
    "ssim",
]
