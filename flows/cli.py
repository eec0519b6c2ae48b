"""``sym3dinv invert`` and ``sym3dinv demo``: run the ``bulk-invert`` Prefect flow from the terminal.

These commands live in ``flows/`` because the library (``sym3dinv``) never imports the orchestration
layer; :func:`main` is the library's CLI plus these two commands (``python -m flows.cli`` or the
``sym3dinv`` console script once it points here).

With no Prefect server configured (``PREFECT_API_URL`` unset) Prefect starts an ephemeral API for the
run; Ray starts locally unless ``--ray-address``/``RAY_ADDRESS`` is given. Heavy imports stay inside the
commands so ``sym3dinv --help`` stays fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import typer

_DEFAULT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "PREFECT_LOGGING_EXTRA_LOGGERS": "sym3dinv"}

_SET = typer.Option([], "--set", help="Inversion override key=value, e.g. stage1.steps=50.")
_VIEW = typer.Option([], "--view", help="Camera to render as 'yaw,pitch' in radians (repeat).")
_DEMO_OUT = typer.Option(None, "--out", help="Where to put the run store (default: a temp dir).")


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for s in sets:
        key, sep, raw = s.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set wants key=value, got {s!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _parse_views(views: list[str]) -> list[tuple[float, float]] | None:
    if not views:
        return None
    out = []
    for v in views:
        yaw, _, pitch = v.partition(",")
        out.append((float(yaw), float(pitch or 0.0)))
    return out


def _count_rows(out: str, storage_options: dict[str, Any]) -> int:
    from sym3dinv.store import RunStore

    try:
        return RunStore(out, storage_options).read_index(["id"]).num_rows
    except Exception:  # noqa: BLE001 - the progress bar must never break the run
        return 0


def _run_with_progress(total_hint: int, out: str, storage_options: dict[str, Any], **params: Any) -> Any:
    """Run the flow in a thread and show a bar fed by the store index (rows land once per shard)."""
    import logging

    from flows.bulk_invert import bulk_invert

    for k, v in _DEFAULT_ENV.items():
        os.environ.setdefault(k, v)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call drowns the progress bar
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["summary"] = bulk_invert(out=out, storage_options=storage_options, **params)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = exc

    start = _count_rows(out, storage_options)
    th = threading.Thread(target=target, daemon=True)
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
        raise box["error"]
    return box["summary"]


def _report(summary: Any) -> None:
    typer.echo(f"run {summary.run_id}: {summary.inputs} inputs, {summary.skipped} already done, "
               f"{summary.processed} processed in {summary.seconds:.1f} s")
    for k, v in sorted(summary.counts.items()):
        typer.echo(f"  {k:28s} {v}")
    typer.echo(f"results: {summary.store}/items/<id>/   index: {summary.store}/index/")
    typer.echo(f"report:  {summary.store}/reports/{summary.run_id}/index.html  (and the Prefect artifacts)")


def invert(
    input: str = typer.Argument(..., help="Folder, glob, fsspec URL or EG3D dataset.json."),
    out: str = typer.Option(..., "--out", help="Run store URL (path, file://, s3://...)."),
    generator: str = typer.Option("synthheads", help="'synthheads' or an EG3D pickle / checkpoint path or URL."),
    mode: str = typer.Option("spi", help="spi | pti | w+"),
    preset: str = typer.Option("paper", help="paper | cpu | smoke | cpu-demo"),
    set_: list[str] = _SET,
    view: list[str] = _VIEW,
    shard_size: int = typer.Option(16, help="Items per shard (one index part each)."),
    actors: int = typer.Option(2, help="Ray actors (each holds one generator)."),
    gpus_per_actor: float = typer.Option(0.0, help="GPUs per actor (0 = CPU)."),
    items_per_call: int = typer.Option(0, help="Items an actor inverts with one shared stage-1 batch "
                                               "(0 = the preset's stage1.batch_size on GPU actors, 1 on CPU)."),
    resume: bool = typer.Option(True, help="Skip items already done under the same config."),
    ray_address: str | None = typer.Option(None, help="Ray cluster (ray://host:10001); default RAY_ADDRESS or local."),
    endpoint_url: str | None = typer.Option(None, help="S3-compatible endpoint for s3:// URLs."),
) -> None:
    """Invert every portrait under INPUT into the run store --out."""
    from sym3dinv.pipeline import list_inputs

    opts: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}
    total = len(list_inputs(input, opts))
    summary = _run_with_progress(total, out, opts, input=input, generator=generator, mode=mode, preset=preset,
                                 overrides=_parse_sets(set_), views=_parse_views(view), shard_size=shard_size,
                                 num_actors=actors, gpus_per_actor=gpus_per_actor, resume=resume,
                                 ray_address=ray_address, items_per_actor_call=items_per_call)
    _report(summary)


def demo_folder() -> Path:
    """The bundled sample (SynthHeads renders with a dataset.json, a real photo, a broken file)."""
    return Path(str(resources.files("sym3dinv") / "assets" / "demo"))


def demo(
    out: Path | None = _DEMO_OUT,
    actors: int = typer.Option(2, help="Ray actors."),
    generator: str = typer.Option("synthheads", help="Generator (default: the embedded SynthHeads one)."),
) -> None:
    """Run the main job on the small bundled sample with the CPU demo preset; print where results are."""
    import torch

    torch.set_flush_denormal(True)
    folder = demo_folder()
    if not folder.is_dir():
        raise typer.BadParameter(f"bundled demo sample missing at {folder}; reinstall sym3dinv")
    dest = out or Path(tempfile.mkdtemp(prefix="sym3dinv-demo-"))
    work = Path(tempfile.mkdtemp(prefix="sym3dinv-demo-in-"))
    shutil.copytree(folder, work, dirs_exist_ok=True)
    t0 = time.perf_counter()
    n = len([p for p in work.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    summary = _run_with_progress(n, str(dest), {}, input=str(work), generator=generator, mode="spi",
                                 preset="cpu-demo", shard_size=2, num_actors=actors, gpus_per_actor=0.0)
    _report(summary)
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s; store at {dest}")


def main() -> None:
    from sym3dinv.cli import app as root

    root.command("invert")(invert)
    root.command("demo")(demo)
    root()


if __name__ == "__main__":
    main()
