"""What a run amounts to, computed once from typed index rows: counts, timings, throughput (the HTML report's
summary cards) and the bulk flow's artifacts (tables and markdown the Prefect task only publishes).

Pure functions of rows: no store reads, no Prefect; the callers read the rows (``RunStore.latest_rows``).
"""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sym3dinv.report.format import num
from sym3dinv.store.schema import IndexRow, Status

TOP_N = 10
"""Rows of the metrics artifact: the best and the worst this many items by PSNR."""


@dataclass(frozen=True)
class Overview:
    """Counts and timings of a set of latest rows."""

    items: int
    done: int
    failed_by_class: dict[str, int]
    """Failed items per error class."""
    skipped: int
    seconds: tuple[float, ...]
    """Total seconds of each done item that recorded them."""
    span_s: float
    """First start to last finish over all rows (0 when unknown)."""
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Stage -> (mean, median) seconds over done items (``total`` excluded)."""
    poor_fit: int = 0
    """Done items flagged ``poor_fit`` (counted in ``done`` too)."""

    @property
    def failed(self) -> int:
        return sum(self.failed_by_class.values())

    @property
    def rate(self) -> float | None:
        """Items per second over the wall span (None when the span is unknown)."""
        return self.items / self.span_s if self.span_s > 0 else None

    def counts(self) -> dict[str, int]:
        """``{"done": n, "failed:<class>": n}``, the keys the flow returns and its summary lists."""
        out = {"done": self.done} if self.done else {}
        out.update({f"failed:{k}": v for k, v in self.failed_by_class.items()})
        return out


def overview(rows: Sequence[IndexRow]) -> Overview:
    """The :class:`Overview` of ``rows`` (one latest row per item)."""
    done = [r for r in rows if r.status is Status.DONE]
    by_class: dict[str, int] = {}
    for r in rows:
        if r.status is Status.FAILED:
            by_class[r.error_class or "unknown"] = by_class.get(r.error_class or "unknown", 0) + 1
    secs = tuple(s for s in (num(r.stage_seconds.get("total")) for r in done) if s is not None)
    starts = [r.started_at or r.finished_at for r in rows]
    ends = [r.finished_at for r in rows]
    span = (max(ends) - min(starts)).total_seconds() if rows else 0.0
    stages = {}
    for k in sorted({k for r in done for k in r.stage_seconds if k != "total"}):
        vals = [v for v in (num(r.stage_seconds.get(k)) for r in done) if v is not None]
        if vals:
            stages[k] = (statistics.fmean(vals), statistics.median(vals))
    skipped = sum(r.status is Status.SKIPPED for r in rows)
    poor = sum(r.quality == "poor_fit" for r in done)
    return Overview(len(rows), len(done), by_class, skipped, secs, span, stages, poor)


@dataclass(frozen=True)
class RunArtifacts:
    """The bulk flow's artifacts of one run, ready to publish (the Prefect task only publishes them)."""

    counts: dict[str, int]
    metrics_table: list[dict[str, Any]]
    """Top and bottom :data:`TOP_N` done items of the run by PSNR, best first."""
    failures_table: list[dict[str, Any]]
    poor_fits_table: list[dict[str, Any]]
    """Done items flagged ``poor_fit``, worst input LPIPS first, with the reason."""
    markdown: str
    plot_png: bytes | None
    """PSNR and seconds histograms (None when no done item has a PSNR)."""


def _item(r: IndexRow) -> dict[str, Any]:
    m, s = r.metrics, r.stage_seconds
    return {"id": r.id, "source": r.source_uri, "status": r.status.value, "error_class": r.error_class,
            "error_message": r.error_message, "psnr": m.get("psnr"), "lpips": m.get("lpips_alex"),
            "mse": m.get("mse"), "seconds": s.get("total"), "worker": r.worker, "attempt": r.attempt,
            "quality": r.quality, "quality_reason": r.quality_reason, "group": r.group_name,
            "photos_used": None if r.members is None else f"{len(r.members_used or ())}/{len(r.members)}"}


def plot_png(items: Sequence[dict[str, Any]]) -> bytes | None:
    """PSNR and seconds-per-item histograms of the done items (None when none has a PSNR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in items if r["status"] == "done" and r["psnr"] is not None]
    if not done:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    axes[0].hist([r["psnr"] for r in done], bins=min(20, max(3, len(done))), color="#3b7dd8")
    axes[0].set_xlabel("PSNR at the input view (dB)")
    axes[0].set_ylabel("items")
    axes[1].hist([r["seconds"] or 0.0 for r in done], bins=min(20, max(3, len(done))), color="#d8823b")
    axes[1].set_xlabel("seconds per item")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


@dataclass(frozen=True)
class RunFacts:
    """What the flow knows about its run beyond the index."""

    store: str
    run_id: str
    config_hash: str
    inputs: int
    skipped: int
    seconds: float
    restarts: int
    report: str | None = None
    """URL of the run's HTML report, when it was built."""
    contact_sheet: str | None = None
    """URL of the run's contact sheet (``reports/<run>/contact-sheet.png``), when it was written."""


def run_artifacts(rows: Sequence[IndexRow], facts: RunFacts) -> RunArtifacts:
    """Tables, markdown and plot of a run from the latest rows under its config hash."""
    items = [_item(r) for r in rows]
    this_run = [r for r in items if r["status"] != "skipped"]
    ran = [r for r in rows if r.run_id == facts.run_id]
    counts = overview(rows).counts()
    done = sorted((r for r in this_run if r["status"] == "done"), key=lambda r: -(r["psnr"] or -math.inf))
    failed = [r for r in this_run if r["status"] == "failed"]
    top = done[:TOP_N] + [r for r in done[TOP_N:][-TOP_N:] if r not in done[:TOP_N]]
    metrics = [{k: v for k, v in r.items() if k != "error_message"} for r in top] or [{"id": "-", "status": "no items"}]
    failures = [{k: r[k] for k in ("id", "source", "group", "error_class", "error_message", "attempt", "worker")}
                for r in failed] or [{"id": "-", "error_class": "none"}]
    poor = sorted((r for r in done if r["quality"] == "poor_fit"), key=lambda r: -(r["lpips"] or 0.0))
    poor_table = [{k: r[k] for k in ("id", "source", "quality_reason", "lpips", "psnr")} for r in poor] or [
        {"id": "-", "quality_reason": "none"}]
    png = plot_png(this_run)
    rate = len(ran) / facts.seconds if facts.seconds > 0 else 0.0
    lines = [f"# bulk-invert run `{facts.run_id}`", "", f"Store: `{facts.store}`  config hash `{facts.config_hash}`",
             "", "| what | count |", "|---|---|", f"| inputs (unique) | {facts.inputs} |",
             f"| already done (skipped) | {facts.skipped} |", f"| processed this run | {len(ran)} |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += [f"| done but flagged poor_fit | {len(poor)} |"]
    groups = [r for r in rows if r.members is not None and r.status is Status.DONE]
    if groups:  # several photos of one person, one item each
        lines += [f"| groups done (photos used / in them) | {len(groups)} ({sum(len(r.members_used or ()) for r in groups)}"
                  f" / {sum(len(r.members or ()) for r in groups)}) |"]
    lines += [f"| actor restarts | {facts.restarts} |", "", f"Wall time {facts.seconds:.1f} s, throughput "
              f"{rate * 3600:.0f} items/hour ({rate:.3f}/s)."]
    if done:
        mean_s = sum(r["seconds"] or 0 for r in done) / len(done)
        lines.append(f"Mean {mean_s:.1f} s per finished item; best PSNR {done[0]['psnr']:.2f} dB, "
                     f"worst {done[-1]['psnr']:.2f} dB.")
    if png is not None:
        lines += ["", f"![metrics](data:image/png;base64,{base64.b64encode(png).decode()})",
                  f"(also at `{facts.store}/reports/{facts.run_id}/metrics.png`)"]
    if facts.report is not None:
        lines += ["", f"HTML report (thumbnails, histograms, failures): [{facts.report}]({facts.report})"]
    if facts.contact_sheet is not None:
        lines += ["", f"Contact sheet (input | reconstruction | novel views | depth): `{facts.contact_sheet}`"]
    if poor:
        lines += ["", "Poor fits (done, but not to be trusted):"] + [f"- `{r['id']}`: {r['quality_reason']}"
                                                                    for r in poor[:TOP_N]]
    return RunArtifacts(counts, metrics, failures, poor_table, "\n".join(lines), png)
