"""The report's small parts: escaping, number formats, statistics, histograms, tables, thumbnails.

Shared by the HTML report (:mod:`sym3dinv.report.html`) and the run summary the Prefect artifacts show
(:mod:`sym3dinv.report.summary`); nothing here reads a store.
"""

from __future__ import annotations

import html
import io
import math
import posixpath
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

METRIC_ORDER = ("psnr", "lpips_alex", "ssim", "mse", "identity")
METRIC_LABELS = {"psnr": "PSNR (dB)", "lpips_alex": "LPIPS (AlexNet)", "ssim": "SSIM", "mse": "MSE",
                 "identity": "identity cosine"}


def e(value: object) -> str:
    """HTML-escape anything (quotes too, so the result is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def num(v: Any) -> float | None:
    """``v`` as a finite float, or None (missing, NaN, not a number): the report shows "–" for those."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def thumbnail(data: bytes, size: int) -> bytes | None:
    """A PNG no larger than ``size`` px on its long side (None if the bytes are not an image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if max(img.size) > size:
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def name(uri: str | None, fallback: str) -> str:
    """The file name of an item's source (what a person recognises), or ``fallback``."""
    if not uri:
        return fallback
    return posixpath.basename(uri.rstrip("/")) or uri


def stats(values: Sequence[float]) -> dict[str, float]:
    """n, mean, median, p05, p95, min, max of a non-empty list (linear-interpolated quantiles)."""
    v = sorted(values)

    def q(p: float) -> float:
        if len(v) == 1:
            return v[0]
        x = p * (len(v) - 1)
        i = int(math.floor(x))
        j = min(i + 1, len(v) - 1)
        return v[i] + (v[j] - v[i]) * (x - i)

    return {"n": len(v), "mean": statistics.fmean(v), "median": statistics.median(v), "p05": q(0.05),
            "p95": q(0.95), "min": v[0], "max": v[-1]}


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -(digits + 1)):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}" if abs(v) < 100 else f"{v:.1f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def fmt_rate(per_second: float | None) -> str:
    if not per_second:
        return "–"
    per_hour = per_second * 3600
    return f"{per_hour:.0f} / h" if per_hour >= 10 else f"{per_hour:.2g} / h"


def histogram(values: Sequence[float], xlabel: str, color: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 2.6), dpi=100)
    bins = min(24, max(4, int(math.sqrt(len(values)) * 2)))
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:  # one value (or all equal): a visible bar around it
        lo, hi = lo - 0.5 * max(abs(lo) * 0.05, 1e-3), hi + 0.5 * max(abs(hi) * 0.05, 1e-3)
    ax.hist(values, bins=bins, range=(lo, hi), color=color, edgecolor="white", linewidth=0.6)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("items", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    ax.grid(axis="y", color="#e6e9f0", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    """A table; ``rows`` hold already-escaped cell HTML; ``num`` are right-aligned column indices."""
    th = "".join(f'<th class="num">{h}</th>' if i in num else f"<th>{h}</th>" for i, h in enumerate(head))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"
                                     for i, c in enumerate(r)) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(src: str | None, caption: str, key: bool = False, alt: str = "") -> str:
    """A 128 px thumbnail with its caption, or a "missing" box when ``src`` is None."""
    cls = ' class="key"' if key else ""
    if src is None:
        return f'<figure{cls}><div class="missing">missing</div><figcaption>{e(caption)}</figcaption></figure>'
    return (f'<figure{cls}><img src="{e(src)}" alt="{e(alt or caption)}" width="128" height="128">'
            f"<figcaption>{e(caption)}</figcaption></figure>")
