"""`sym3dinv store ...` commands: summary, failed, export, compact, gc (heavy imports inside commands)."""

from __future__ import annotations

import json

import typer

from sym3dinv.config.store import LeaseConfig

app = typer.Typer(no_args_is_help=True, help="Inspect and export a run store (local path, file://, s3://).")

_ENDPOINT = typer.Option(
    None, "--endpoint-url", help="S3-compatible endpoint; credentials come from AWS env vars."
)


def _open(url: str, endpoint_url: str | None):  # noqa: ANN202 - RunStore imported lazily
    """The existing run store at ``url``; a wrong URL is one error line and exit status 2."""
    from sym3dinv.errors import ConfigError
    from sym3dinv.store import RunStore, storage_options

    try:
        return RunStore.open_existing(url, storage_options(endpoint_url))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def summary(
    url: str, endpoint_url: str | None = _ENDPOINT, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Counts by status and error class (latest row per item), then metric distributions."""
    store = _open(url, endpoint_url)
    counts = store.summary().to_pylist()
    stats = store.metric_stats().to_pylist()
    poor = store.poor_fits()
    if as_json:
        typer.echo(json.dumps({"counts": counts, "metrics": stats,
                               "poor_fit": [{"id": p.id, "reason": p.quality_reason} for p in poor]}, default=str))
        return
    total = sum(r["count"] for r in counts)
    typer.echo(f"{total} items")
    for r in counts:
        typer.echo(f"  {r['status']:<8} {r['error_class'] or '':<18} {r['count']}")
    if poor:
        typer.echo(f"  of the done, flagged poor_fit: {len(poor)} (sym3dinv store failed lists them)")
    for r in stats:
        typer.echo(
            f"  {r['metric']:<14} n={r['count']} mean={r['mean']:.4g} p50={r['p50']:.4g} p95={r['p95']:.4g}"
        )


@app.command()
def failed(
    url: str, endpoint_url: str | None = _ENDPOINT, limit: int = typer.Option(50, help="Rows to show.")
) -> None:
    """Failed items with their reasons, newest first."""
    store = _open(url, endpoint_url)
    rows = store.failed().slice(0, limit).to_pylist()
    for r in rows:
        typer.echo(f"{r['id']}  {r['error_class']:<16} {r['source_uri'] or ''}  {r['error_message']}")
    poor = store.poor_fits()[:limit]
    if poor:
        typer.echo(f"done but flagged poor_fit ({len(poor)}):")
        for p in poor:
            typer.echo(f"{p.id}  {'poor_fit':<16} {p.source_uri or ''}  {p.quality_reason}")


@app.command()
def export(
    url: str,
    out: str,
    endpoint_url: str | None = _ENDPOINT,
    key: str = typer.Option("ws", help="Tensor name inside latents.safetensors."),
) -> None:
    """Latents + camera labels of all done items into one bundle (``.parquet`` or ``.safetensors``)."""
    from sym3dinv.store.export import export_bundle

    n = export_bundle(_open(url, endpoint_url), out, key=key)
    typer.echo(f"exported {n} items to {out}")


@app.command()
def compact(url: str, endpoint_url: str | None = _ENDPOINT) -> None:
    """Merge small index part files into one (safe while others read or write)."""
    res = _open(url, endpoint_url).compact()
    typer.echo(f"merged {len(res.removed_parts)} parts ({res.rows} rows) into {res.merged_part}")


@app.command("gc")
def gc_command(
    url: str,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; remove nothing."),
    min_age_s: float = typer.Option(
        LeaseConfig().duration_s, "--min-age-s", help="Keep uncommitted folders and temp files younger than this (default: the lease "
        "duration), for writers that take no lease."),
    endpoint_url: str | None = _ENDPOINT,
) -> None:
    """Remove attempt folders nothing refers to (uncommitted, no index row, no live lease) and expired leases.

    Committed attempts stay (a later run adopts them); the index must be readable whole, else nothing is removed."""
    from sym3dinv.errors import StoreError
    from sym3dinv.store.gc import collect, plan_gc

    store = _open(url, endpoint_url)
    try:
        plan = plan_gc(store, min_age_s=min_age_s)
    except StoreError as exc:
        typer.echo(f"error: not collecting garbage: {exc}", err=True)
        raise typer.Exit(2) from exc
    verb = "would remove" if dry_run else "remove"
    for g in plan.remove:
        typer.echo(f"{verb} {g.path}  [{g.kind}: {g.files} files, {g.bytes} bytes; {g.reason}]")
    if not dry_run:
        collect(store, plan)
    kept = ", ".join(f"{n} {why}" for why, n in sorted(plan.kept.items())) or "none"
    typer.echo(f"{'would remove' if dry_run else 'removed'} {plan.count('attempt')} attempt folders, "
               f"{plan.count('lease')} expired leases, {plan.count('temp')} temp files ({plan.bytes} bytes); "
               f"attempt folders kept: {kept}")
