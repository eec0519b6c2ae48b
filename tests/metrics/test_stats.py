"""Paired bootstrap (sym3dinv.metrics.stats): known distributions, interval contains the mean, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sym3dinv.metrics.stats import paired_bootstrap


def test_known_shift_is_found_and_interval_covers_it() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0.3, 0.5, 200)
    a = b - 0.04 + rng.normal(0, 0.01, 200)  # a better by 0.04 (lower is better), noise sd 0.01
    d = paired_bootstrap(a, b, resamples=4000)
    assert d.n == 200 and d.lo < d.diff < d.hi and d.lo < -0.04 < d.hi
    se = 0.01 / math.sqrt(200)  # the interval is about mean +- 1.96 standard errors
    assert d.hi - d.lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert d.significant and d.verdict(True, ("spi", "pti")) == "spi better"
    assert d.verdict(False, ("spi", "pti")) == "pti better"  # the same numbers as a higher-is-better metric
    assert d.rel_pct == pytest.approx(100 * d.diff / b.mean()) and d.rel_lo < d.rel_pct < d.rel_hi


def test_no_shift_reads_no_difference() -> None:
    rng = np.random.default_rng(2)
    b = rng.uniform(0.3, 0.5, 40)
    a = b + rng.normal(0, 0.02, 40)
    a = a - (a - b).mean()  # exactly zero mean difference
    d = paired_bootstrap(a, b)
    assert d.lo < 0 < d.hi and not d.significant and d.verdict() == "no difference"


def test_seed_determinism_and_nan_pairs_dropped() -> None:
    a, b = [0.1, 0.2, 0.35, float("nan"), 0.4], [0.2, 0.25, 0.3, 0.1, 0.5]
    d1, d2 = paired_bootstrap(a, b, seed=7), paired_bootstrap(a, b, seed=7)
    assert d1 == d2 and d1.n == 4 and d1.diff == pytest.approx(np.mean([-0.1, -0.05, 0.05, -0.1]))
    x = np.random.default_rng(4).normal(0, 1, 30)
    assert paired_bootstrap(x, 0 * x, seed=8, resamples=500).lo != paired_bootstrap(x, 0 * x, seed=9, resamples=500).lo


def test_cluster_bootstrap_is_wider_for_correlated_pairs() -> None:
    """Three inputs per identity that move together: resampling identities gives the honest, wider interval."""
    rng = np.random.default_rng(3)
    per_id = rng.normal(-0.02, 0.03, 12)
    d = np.repeat(per_id, 3) + rng.normal(0, 0.002, 36)
    b = np.full(36, 0.4)
    plain = paired_bootstrap(b + d, b)
    clustered = paired_bootstrap(b + d, b, clusters=np.repeat(np.arange(12), 3))
    assert clustered.diff == pytest.approx(plain.diff)
    assert (clustered.hi - clustered.lo) > 1.4 * (plain.hi - plain.lo)


def test_empty_and_bad_shapes() -> None:
    assert paired_bootstrap([], []).n == 0
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])
