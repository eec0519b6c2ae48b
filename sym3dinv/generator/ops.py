"""StyleGAN2/EG3D low-level operations in plain PyTorch: filters, up/down-sampling, bias+activation,
modulated convolution.

These reproduce the arithmetic that gives EG3D checkpoint tensors their meaning (equalised learning
rate gains, the normalised [1, 3, 3, 1] resampling filter, the transposed-convolution upsampling with
its exact padding). No compiled extensions: on CPU, EG3D itself runs its reference implementations,
which these match operation for operation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

SQRT2 = math.sqrt(2.0)


def setup_filter(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> Float[Tensor, "k k"]:
    """2-D separable FIR filter from 1-D taps, normalised to sum 1 (StyleGAN's ``setup_filter``)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: Float[Tensor, "n c h w"],
    f: Float[Tensor, "kh kw"] | None,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> Float[Tensor, "n c oh ow"]:
    """Upsample by zero insertion, pad (x0, x1, y0, y1), convolve with ``f`` (true convolution), decimate.

    The reference semantics of StyleGAN's ``upfirdn2d``; ``f`` is flipped so that this is a convolution
    (symmetric filters are unaffected). Negative padding crops.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    if f is not None:
        k = (f * gain).to(x.dtype).flip([0, 1])
        k = k[None, None].expand(c, 1, *k.shape)  # depthwise [C, 1, kh, kw]
        x = F.conv2d(x, k, groups=c)
    elif gain != 1:
        x = x * gain
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: Float[Tensor, "n c h w"], f: Float[Tensor, "kh kw"], impl: str = "fast") -> Float[Tensor, "n c 2h 2w"]:
    """2x upsampling with the FIR filter ``f`` (gain 4 keeps the mean), as StyleGAN's ``upsample2d``.

    ``impl='fast'`` folds zero insertion and filtering into one depthwise transposed convolution
    (4x fewer multiplications); ``impl='ref'`` is the literal zero-insert-then-filter specification.
    """
    kh, kw = f.shape
    p = ((kw + 1) // 2, (kw - 2) // 2, (kh + 1) // 2, (kh - 2) // 2)
    if impl == "ref":
        return upfirdn2d(x, f, up=2, padding=p, gain=4.0)
    n, c, h, w = x.shape
    k = (f * 4.0).to(x.dtype)[None, None].expand(c, 1, kh, kw)
    # transposed conv of the zero-inserted signal == conv of it with the flipped kernel; the padding
    # (kw - 1 - p0) reproduces upfirdn's crop exactly for even-sized symmetric filters
    y = F.conv_transpose2d(x, k, stride=2, groups=c)  # [N, C, 2h + kh - 2, 2w + kw - 2]
    y0, x0 = kh - 1 - p[2], kw - 1 - p[0]
    return y[:, :, y0 : y0 + 2 * h, x0 : x0 + 2 * w]


def bias_act(
    x: Tensor,
    b: Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    alpha: float = 0.2,
) -> Tensor:
    """Add a per-channel bias (dim 1), apply ``linear`` or ``lrelu``, scale by gain, clamp.

    Default gains: 1 for linear, sqrt(2) for lrelu (StyleGAN's variance-preserving gain).
    """
    if b is not None:
        x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
        g = SQRT2 if gain is None else gain
    elif act == "linear":
        g = 1.0 if gain is None else gain
    else:
        raise ValueError(f"unsupported activation {act!r}")
    if g != 1:
        x = x * g
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _conv_up2(x: Tensor, w: Tensor, f: Tensor, groups: int, padding: int, impl: str) -> Tensor:
    """3x3 (or kxk) convolution followed-by 2x upsampling, fused as EG3D's conv2d_resample does it:
    a stride-2 transposed convolution, then the FIR filter with the remaining padding."""
    out_ch, in_per_group, kh, kw = w.shape
    fh, fw = f.shape
    px0 = padding + (fw + 1) // 2 - (kw - 1)
    px1 = padding + (fw - 2) // 2 - (kw - 2)
    py0 = padding + (fh + 1) // 2 - (kh - 1)
    py1 = padding + (fh - 2) // 2 - (kh - 2)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, wt, stride=2, padding=[pyt, pxt], groups=groups)
    pad = (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)
    if impl == "fast" and min(pad) >= 0 and len(set(pad)) == 1:
        # same filter, but the convolution pads by itself: no padded copy of a large activation
        c = x.shape[1]
        k = (f * 4.0).to(x.dtype).flip([0, 1])[None, None].expand(c, 1, fh, fw)
        return F.conv2d(x, k, padding=pad[0], groups=c)
    return upfirdn2d(x, f, padding=pad, gain=4.0)


def modulated_conv2d(
    x: Float[Tensor, "n cin h w"],
    weight: Float[Tensor, "cout cin kh kw"],
    styles: Float[Tensor, "n cin"],
    noise: Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    fused: bool = True,
    impl: str = "fast",
    bias: Tensor | None = None,
    out_gain: float = 1.0,
) -> Float[Tensor, "n cout oh ow"]:
    """StyleGAN2 modulated (and demodulated) convolution, optionally followed by 2x upsampling.

    ``fused=True`` runs one grouped convolution with per-sample weights (EG3D's inference path);
    ``fused=False`` scales activations before and after a shared convolution (its training path).
    Both compute the same function; their rounding differs at the 1e-6 level.

    ``bias``/``out_gain`` (non-fused only) return ``out_gain * (conv + noise + bias)`` with the
    demodulation, bias and gain in one ``addcmul`` pass: callers apply leaky ReLU afterwards, which
    commutes with a positive gain. Saves three passes over the output (forward and backward).
    """
    if (bias is not None or out_gain != 1.0) and fused:
        raise ValueError("bias/out_gain folding is only implemented for fused=False")
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise to avoid fp16 overflow (as StyleGAN2)
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if demodulate or fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        wx = weight.to(x.dtype)
        if up > 1:
            x = _conv_up2(x, wx, resample_filter, 1, padding, impl)
        else:
            x = F.conv2d(x, wx, padding=padding)
        scale = dcoefs * out_gain if demodulate else None
        if bias is not None:
            shift = (bias * out_gain).to(x.dtype).reshape(1, -1, 1, 1)
            if scale is None:
                scale = torch.full((n, out_ch), out_gain, dtype=x.dtype, device=x.device)
            x = torch.addcmul(shift, x, scale.to(x.dtype).reshape(n, -1, 1, 1))
        elif scale is not None:
            x = x * scale.to(x.dtype).reshape(n, -1, 1, 1)
        elif out_gain != 1.0:
            x = x * out_gain
        if noise is not None:
            x = x + (noise * out_gain if out_gain != 1.0 else noise).to(x.dtype)
        return x
    if demodulate:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    xg = x.reshape(1, -1, *x.shape[2:])  # [1, N*I, H, W]: the batch becomes conv groups
    wg = w.reshape(-1, in_ch, kh, kw).to(x.dtype)  # [N*O, I, kh, kw]
    if up > 1:
        y = _conv_up2(xg, wg, resample_filter, n, padding, impl)
    else:
        y = F.conv2d(xg, wg, padding=padding, groups=n)
    y = y.reshape(n, -1, *y.shape[2:])
    if noise is not None:
        y = y + noise.to(y.dtype)
    return y


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale to unit root-mean-square along ``dim`` (mapping network input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()
