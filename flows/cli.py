"""``sym3dinv invert`` and ``sym3dinv demo``: run the ``bulk-invert`` Prefect flow from the terminal.

These commands live in ``flows/`` because the library (``sym3dinv``) never imports the orchestration
layer; :func:`main` is the library's CLI plus these two commands (``python -m flows.cli`` or the
``sym3dinv`` console script once it points here).

With no Prefect server configured (``PREFECT_API_URL`` unset) Prefect starts an ephemeral API for the
run, with a startup limit that fits a cold, busy 2-core machine (:mod:`flows.prefect_api`); Ray starts locally unless ``--ray-address``/``RAY_ADDRESS`` is given. Heavy imports stay inside the
commands so ``sym3dinv --help`` stays fast.
"""

from __future__ import annotations

import contextvars
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import typer

from sym3dinv.cli.options import DEFAULT, Flag, config_options
from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig
from sym3dinv.config.store import StoreConfig

DEMO_CONFIG = PipelineConfig(preset="cpu-demo", mode="spi")
"""What ``sym3dinv demo`` runs (only ``--generator`` can change): the reduced CPU preset."""
DEMO_EXECUTION = ExecutionConfig(shard_size=2, gpus_per_actor=0.0)

_DEMO_OUT = typer.Option(None, "--out", help="Where to put the run store (default: a temp dir).")


def parse_view(text: str) -> tuple[float, float]:
    """``--view 'yaw,pitch'`` in radians (pitch defaults to 0)."""
    yaw, _, pitch = text.partition(",")
    try:
        return (float(yaw), float(pitch or 0.0))
    except ValueError as exc:
        raise typer.BadParameter(f"--view wants 'yaw,pitch' in radians, got {text!r}") from exc


def _prefect_ready() -> None:
    """Before anything else: the Prefect API checked, or the temporary server's startup limit set
    (:mod:`flows.prefect_api`); an API that cannot be reached is one line on stderr and exit status 2."""
    from flows.prefect_api import ensure_prefect_api, exit_on_api_error

    with exit_on_api_error():
        ensure_prefect_api()


def _count_rows(out: str, storage_options: dict[str, Any]) -> int:
    from sym3dinv.store import RunStore

    try:
        return RunStore(out, storage_options).read_index(["id"]).num_rows
    except Exception:  # noqa: BLE001 - the progress bar must never break the run
        return 0


def _run_with_progress(total_hint: int, out: str, storage_options: dict[str, Any], **params: Any) -> Any:
    """Run the flow in a thread and show a bar fed by the store index (rows land once per shard).

    The caller ran :func:`_prefect_ready` first; the temporary server failing to start is one line on
    stderr and exit status 2 as well."""
    import logging

    from flows.bulk_invert import bulk_invert
    from flows.prefect_api import api_errors, exit_on_api_error

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the progress bar
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with api_errors():
                box["summary"] = bulk_invert(out=out, storage_options=storage_options, **params)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = exc

    start = _count_rows(out, storage_options)
    context = contextvars.copy_context()  # the caller's Prefect settings (a test harness's API) reach the thread
    th = threading.Thread(target=context.run, args=(target,), daemon=True)
    th.start()
    with typer.progressbar(length=max(1, total_hint), label="items") as bar:
        shown = 0
        while th.is_alive():
            th.join(timeout=2.0)
            now = min(total_hint, _count_rows(out, storage_options) - start)
            if now > shown:
                bar.update(now - shown)
                shown = now
        bar.update(max(0, total_hint - shown))
    if "error" in box:
        with exit_on_api_error():
            raise box["error"]
    return box["summary"]


def _report(summary: Any, storage_options: dict[str, Any]) -> None:
    from sym3dinv.report.contact_sheet import sheet_path

    typer.echo(f"run {summary.run_id}: {summary.inputs} inputs, {summary.skipped} already done, "
               f"{summary.processed} processed in {summary.seconds:.1f} s")
    if summary.inputs and not summary.processed:
        typer.echo(f"nothing to do: all {summary.inputs} inputs were already done in {summary.store} under config "
                   f"{summary.config_hash} (inputs that failed for a reason of their own stay failed; "
                   "--retry-failed redoes them, another --out starts afresh)")
    if getattr(summary, "leased", 0):
        typer.echo(f"{summary.leased} inputs were being inverted by another run (it holds their leases); "
                   "they stay pending for a later run")
    for k, v in sorted(summary.counts.items()):
        typer.echo(f"  {k:28s} {v}")
    typer.echo(f"results: {summary.store}/items/<id>/   index: {summary.store}/index/")
    typer.echo(f"report:  {summary.store}/reports/{summary.run_id}/index.html  (and the Prefect artifacts)")
    sheet = _existing(summary.store, sheet_path(summary.run_id), storage_options)
    if sheet:
        typer.echo(f"contact sheet (input | reconstruction | novel views | depth): {sheet}")


def _existing(url: str, rel: str, storage_options: dict[str, Any]) -> str | None:
    """``url/rel`` when that file exists (the contact sheet is written only when an item is done)."""
    from sym3dinv.store import RunStore

    try:
        store = RunStore(url, storage_options)
        return f"{store.url}/{rel}" if store.fs.exists(store.abspath(rel)) else None
    except Exception:  # noqa: BLE001 - a line of the summary, never a failure of the run
        return None


@config_options(StoreConfig, param="storage", fields=("endpoint_url",))
@config_options(ExecutionConfig, param="execution", flatten=("lease", "quality"),
                flags={"num_actors": Flag(("--actors",)), "lease.duration_s": Flag(("--lease-duration-s",), only=True),
                       "lease.heartbeat_s": Flag(("--lease-heartbeat-s",), only=True)})
@config_options(PipelineConfig, flatten=("render", "align.camera_format"), exclude=("losses",), sets="stage1.steps=50 or align.min_confidence=0.3",
                flags={"render.views": Flag(("--view",), parser=parse_view, only=True)})
def invert(
    input: str = typer.Argument(..., help="Folder, glob, fsspec URL or EG3D dataset.json."),
    out: str = typer.Option(..., "--out", help="Run store URL (path, file://, s3://...)."),
    config: PipelineConfig = DEFAULT,
    execution: ExecutionConfig = DEFAULT,
    storage: StoreConfig = DEFAULT,
) -> None:
    """Invert every portrait under INPUT into the run store --out."""
    from sym3dinv.errors import ConfigError
    from sym3dinv.perf import cpu_numerics
    from sym3dinv.pipeline.grouping import list_items
    from sym3dinv.pipeline.models import require_models
    from sym3dinv.pipeline.resume import resume_fingerprint
    from sym3dinv.store import RunStore, storage_options

    _prefect_ready()
    cpu_numerics()
    opts = storage_options(storage.endpoint_url)
    try:
        total = len(list_items(input, opts, config.group_by, config.group_map))
        require_models(config)
        resume_fingerprint(RunStore(out, opts), config, execution)  # the flow checks again; here: one clean line
        summary = _run_with_progress(total, out, opts, input=input, config=config, execution=execution)
    except ConfigError as exc:  # no images there, a bad URL, another generator's results: what to fix
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _report(summary, opts)


def demo_folder() -> Path:
    """The bundled sample (SynthHeads renders with a dataset.json, a real photo, a broken file)."""
    return Path(str(resources.files("sym3dinv") / "assets" / "demo"))


@config_options(ExecutionConfig, param="execution", fields=("num_actors",), base=lambda: DEMO_EXECUTION,
                flags={"num_actors": Flag(("--actors",))})
@config_options(PipelineConfig, fields=("generator",), base=lambda: DEMO_CONFIG)
def demo(
    out: Path | None = _DEMO_OUT,
    config: PipelineConfig = DEFAULT,
    execution: ExecutionConfig = DEFAULT,
) -> None:
    """Run the main job on the small bundled sample with the CPU demo preset; print where results are."""
    from sym3dinv.perf import cpu_numerics

    _prefect_ready()
    cpu_numerics()
    folder = demo_folder()
    if not folder.is_dir():
        raise typer.BadParameter(f"bundled demo sample missing at {folder}; reinstall sym3dinv")
    dest = out or Path(tempfile.mkdtemp(prefix="sym3dinv-demo-"))
    t0 = time.perf_counter()
    n = len([p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    # read in place (nothing is written next to the inputs): no temporary copy to leave behind
    summary = _run_with_progress(n, str(dest), {}, input=str(folder), config=config, execution=execution)
    _report(summary, {})
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s; store at {dest}")


def main() -> None:
    from sym3dinv.cli import app as root

    root.command("invert")(invert)
    root.command("demo")(demo)
    root()


if __name__ == "__main__":
    main()
