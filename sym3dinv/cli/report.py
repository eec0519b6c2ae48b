"""`sym3dinv report STORE`: a static HTML report of a run store."""

from __future__ import annotations

import typer

_ENDPOINT = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint; credentials come from AWS env vars.")
_EDIT = typer.Option([], "--edit", help="Edit folder to show (store-relative or path/URL; repeat). "
                     "Default: every STORE/edits/*/ with a manifest.")


def report(
    store: str = typer.Argument(..., help="Run store: local path, file://, s3://, memory://."),
    out: str = typer.Option(None, "--out", help="Output folder (path or URL); default STORE/reports/<run or all>/."),
    run: str = typer.Option(None, "--run", help="Only rows written by this run id (default: the whole store)."),
    self_contained: bool = typer.Option(False, "--self-contained", help="One index.html with images inlined."),
    edit: list[str] = _EDIT,
    max_items: int = typer.Option(200, "--max-items", help="Items with thumbnail rows (lowest PSNR first)."),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Build the HTML report of a run store (counts, timings, histograms, thumbnails, edits, failures)."""
    from sym3dinv.errors import ConfigError
    from sym3dinv.report import build_report
    from sym3dinv.store import RunStore, storage_options

    opts = storage_options(endpoint_url)
    try:
        res = build_report(RunStore.open_existing(store, opts), out=out, run_id=run, self_contained=self_contained,
                           edits=edit or None, max_items=max_items, storage_options=opts)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for w in res.warnings[:10]:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"report: {res.index} ({res.items} items, {res.failed} failed, {len(res.assets)} assets)")
