"""Artifacts a reviewer reads in the Prefect UI: per-item metric tables, failures, a markdown summary
with counts, timings, throughput and an embedded metrics plot. Built from the run store's index."""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from sym3dinv.store import RunStore

TOP_N = 10
log = logging.getLogger(__name__)


def _rows(latest: pa.Table) -> list[dict[str, Any]]:
    out = []
    for r in latest.to_pylist():
        m = dict(r.get("metrics") or [])
        s = dict(r.get("stage_seconds") or [])
        out.append({"id": r["id"], "source": r.get("source_uri"), "status": r["status"],
                    "error_class": r.get("error_class"), "error_message": r.get("error_message"),
                    "psnr": m.get("psnr"), "lpips": m.get("lpips_alex"), "mse": m.get("mse"),
                    "seconds": s.get("total"), "worker": r.get("worker"), "attempt": r.get("attempt")})
    return out


def _plot_png(rows: Sequence[dict[str, Any]]) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "done" and r["psnr"] is not None]
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


def _html_report(store: RunStore, run_id: str) -> str | None:
    """Build ``<store>/reports/<run_id>/index.html`` (``sym3dinv report``); a failure only logs."""
    try:
        from sym3dinv.report import build_report

        index = build_report(store, run_id=run_id).index
    except Exception as exc:  # noqa: BLE001 - the report is a convenience; the run's results stand
        log.warning("HTML report of run %s not built: %s", run_id, exc)
        return None
    return f"file://{index}" if store.is_local else index


def _contact_sheet(store: RunStore, run_id: str, config_hash: str) -> str | None:
    """Write ``<store>/reports/<run_id>/contact-sheet.png``; its URL, or None (nothing done, or it failed)."""
    try:
        from sym3dinv.report.contact_sheet import write_contact_sheet

        rel = write_contact_sheet(store, run_id, config_hash)
    except Exception as exc:  # noqa: BLE001 - a convenience, as the HTML report
        log.warning("contact sheet of run %s not written: %s", run_id, exc)
        return None
    return None if rel is None else f"{store.url}/{rel}"


@task(name="publish-artifacts")
def publish_artifacts(store: RunStore, run_id: str, config_hash: str, n_inputs: int, skipped: int,
                      seconds: float, restarts: int) -> dict[str, int]:
    """Write the table/markdown artifacts (stable keys, so the UI shows their history across runs)."""
    latest = store.latest()
    if latest.num_rows:
        latest = latest.filter(pc.equal(latest["config_hash"], config_hash))
    rows = _rows(latest)
    log.info("index has %d latest rows under config %s", len(rows), config_hash)
    this_run = [r for r in rows if r["status"] != "skipped"]
    ran = [r for r in latest.to_pylist() if r.get("run_id") == run_id]
    counts: dict[str, int] = {}
    for r in rows:
        key = r["status"] if r["status"] == "done" else f"failed:{r['error_class']}"
        counts[key] = counts.get(key, 0) + 1
    done = sorted((r for r in this_run if r["status"] == "done"), key=lambda r: -(r["psnr"] or -math.inf))
    failed = [r for r in this_run if r["status"] == "failed"]
    table = done[:TOP_N] + [r for r in done[TOP_N:][-TOP_N:] if r not in done[:TOP_N]]
    create_table_artifact(key="bulk-invert-metrics", table=[{k: v for k, v in r.items() if k != "error_message"}
                                                            for r in table] or [{"id": "-", "status": "no items"}],
                          description=f"Top and bottom {TOP_N} items by PSNR (config {config_hash})")
    create_table_artifact(key="bulk-invert-failures", table=[{k: r[k] for k in ("id", "source", "error_class",
                          "error_message", "attempt", "worker")} for r in failed] or [{"id": "-", "error_class": "none"}],
                          description="Failed items with their error class and reason")
    png = _plot_png(this_run)
    if png is not None:
        store.atomic_write(f"reports/{run_id}/metrics.png", png)
    rate = len(ran) / seconds if seconds > 0 else 0.0
    lines = [f"# bulk-invert run `{run_id}`", "", f"Store: `{store.url}`  config hash `{config_hash}`", "",
             "| what | count |", "|---|---|", f"| inputs (unique) | {n_inputs} |",
             f"| already done (skipped) | {skipped} |", f"| processed this run | {len(ran)} |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += [f"| actor restarts | {restarts} |", "", f"Wall time {seconds:.1f} s, throughput "
              f"{rate * 3600:.0f} items/hour ({rate:.3f}/s)."]
    if done:
        mean_s = sum(r["seconds"] or 0 for r in done) / len(done)
        lines.append(f"Mean {mean_s:.1f} s per finished item; best PSNR {done[0]['psnr']:.2f} dB, "
                     f"worst {done[-1]['psnr']:.2f} dB.")
    if png is not None:
        lines += ["", f"![metrics](data:image/png;base64,{base64.b64encode(png).decode()})",
                  f"(also at `{store.url}/reports/{run_id}/metrics.png`)"]
    report = _html_report(store, run_id)
    if report is not None:
        lines += ["", f"HTML report (thumbnails, histograms, failures): [{report}]({report})"]
    sheet = _contact_sheet(store, run_id, config_hash)
    if sheet is not None:
        lines += ["", f"Contact sheet (input | reconstruction | novel views | depth): `{sheet}`"]
    create_markdown_artifact(key="bulk-invert-summary", markdown="\n".join(lines),
                             description=f"Summary of run {run_id}")
    return counts
