"""Paired comparisons of two methods on the same inputs, with seeded bootstrap confidence intervals.

The benchmarks compare modes (SPI against PTI) on the same input images, so the unit of evidence is the
per-input difference ``a - b``, not two independent means. :func:`paired_bootstrap` resamples those
pairs (or whole clusters of them, e.g. the several inputs of one identity, which are not independent)
and gives a percentile interval for the mean difference and for the relative change
``mean(a - b) / mean(b)``. An interval that contains 0 reads "no difference": the run cannot tell.
numpy only (no torch), so a report can use it without the model stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedDiff:
    """``a - b`` over n pairs: mean and its percentile-bootstrap interval, and the same relative to mean(b)."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    """mean(a - b)."""
    lo: float
    hi: float
    """Bootstrap interval of ``diff`` at ``confidence``."""
    rel_pct: float
    """100 * diff / mean(b) (NaN when mean(b) is 0)."""
    rel_lo: float
    rel_hi: float
    confidence: float
    resamples: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.lo > 0 or self.hi < 0

    def verdict(self, lower_is_better: bool = True, names: tuple[str, str] = ("a", "b")) -> str:
        """"no difference", or which side is better (``names`` = (a, b)); ``lower_is_better`` for LPIPS,
        depth error; False for PSNR, SSIM, identity similarity."""
        if not self.significant or self.n < 2:
            return "no difference"
        a_better = (self.diff < 0) == lower_is_better
        return f"{names[0] if a_better else names[1]} better"

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    clusters: Sequence[object] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDiff:
    """Percentile bootstrap of the mean paired difference ``a - b`` (pairs with a NaN/None dropped).

    ``clusters``: a label per pair; then whole clusters are resampled (the cluster bootstrap), so pairs
    that share a cluster count as one draw. Same inputs and ``seed`` -> the same interval.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d of one length, got {x.shape} and {y.shape}")
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError("confidence must be in (0, 1) and resamples >= 1")
    ok = np.isfinite(x) & np.isfinite(y)
    labels = np.asarray(list(clusters) if clusters is not None else range(len(x)), dtype=object)[ok]
    x, y = x[ok], y[ok]
    n = len(x)
    nan = float("nan")
    if n == 0:
        return PairedDiff(0, nan, nan, nan, nan, nan, nan, nan, nan, confidence, resamples)
    # per cluster sums and counts: a resample's means are ratios of summed sums (exact for unequal sizes)
    _, inv = np.unique(labels.astype(str), return_inverse=True)
    k = int(inv.max()) + 1
    sum_d = np.bincount(inv, weights=x - y, minlength=k)
    sum_b = np.bincount(inv, weights=y, minlength=k)
    count = np.bincount(inv, minlength=k).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(resamples, k))
    weights = np.stack([np.bincount(row, minlength=k) for row in draws]).astype(float)  # [R, k]
    cnt = weights @ count
    boot_d = (weights @ sum_d) / cnt
    boot_b = (weights @ sum_b) / cnt
    with np.errstate(divide="ignore", invalid="ignore"):
        boot_rel = 100.0 * boot_d / boot_b
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(boot_d, [alpha, 1 - alpha]))
    mean_b = float(y.mean())
    diff = float((x - y).mean())
    rel = 100.0 * diff / mean_b if mean_b != 0 else nan
    finite = boot_rel[np.isfinite(boot_rel)]
    rlo, rhi = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha])) if len(finite) else (nan, nan)
    return PairedDiff(n, float(x.mean()), mean_b, diff, lo, hi, rel, rlo, rhi, confidence, resamples)
