"""Artifacts a reviewer reads in the Prefect UI: per-item metric tables, failures, a markdown summary with
counts, timings, throughput and an embedded metrics plot. The library computes them from the run store's
index (:func:`sym3dinv.report.summary.run_artifacts`); this task only writes the run's files and publishes."""

from __future__ import annotations

import logging

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from sym3dinv.report.summary import TOP_N, RunFacts, run_artifacts
from sym3dinv.store import RunStore

log = logging.getLogger(__name__)


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
    rows = store.latest_rows(config_hash=config_hash)
    facts = RunFacts(store.url, run_id, config_hash, n_inputs, skipped, seconds, restarts,
                     _html_report(store, run_id), _contact_sheet(store, run_id, config_hash))
    arts = run_artifacts(rows, facts)
    if arts.plot_png is not None:
        store.atomic_write(f"reports/{run_id}/metrics.png", arts.plot_png)
    create_table_artifact(key="bulk-invert-metrics", table=arts.metrics_table,
                          description=f"Top and bottom {TOP_N} items by PSNR (config {config_hash})")
    create_table_artifact(key="bulk-invert-failures", table=arts.failures_table,
                          description="Failed items with their error class and reason")
    create_table_artifact(key="bulk-invert-poor-fits", table=arts.poor_fits_table,
                          description="Done items flagged poor_fit, with the reason (thresholds: ExecutionConfig.quality)")
    create_markdown_artifact(key="bulk-invert-summary", markdown=arts.markdown, description=f"Summary of run {run_id}")
    return arts.counts
