"""The ``sym3dinv`` command line. Each command group lives in its own module and imports heavy
libraries (torch, pyarrow, prefect, ray) inside its commands, so ``sym3dinv --help`` stays fast."""

from __future__ import annotations

import logging

import typer

from sym3dinv.cli import align, cameras, dataset, edit, encoder, generator, report, store, synthheads

app = typer.Typer(no_args_is_help=True, add_completion=False, help="3D GAN inversion with a facial symmetry prior: portraits to 3D-consistent portraits and multi-view datasets.")
app.add_typer(generator.app, name="generator")
app.add_typer(synthheads.app, name="synthheads")
app.add_typer(align.app, name="align")
app.add_typer(cameras.app, name="cameras")
app.add_typer(store.app, name="store")
app.add_typer(dataset.app, name="dataset")
app.add_typer(edit.app, name="edit")
app.add_typer(encoder.app, name="encoder")
app.command("report")(report.report)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    app()
