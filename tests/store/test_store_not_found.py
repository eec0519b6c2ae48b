"""Every command that reads a run store, given a URL with no run store: exit 2, the URL named, nothing created.

Before issue 20, ``sym3dinv report /no/such/store`` exited 0 and created
``/no/such/store/reports/all/index.html``; ``store summary`` printed "0 items".
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from store_helpers import s3_options
from typer.testing import CliRunner

from sym3dinv.cli import app
from sym3dinv.errors import ConfigError, StoreNotFoundError
from sym3dinv.store import RunStore

COMMANDS: dict[str, list[str]] = {
    "report": ["report", "{url}"],
    "store summary": ["store", "summary", "{url}"],
    "store failed": ["store", "failed", "{url}"],
    "store export": ["store", "export", "{url}", "{tmp}/bundle.parquet"],
    "store compact": ["store", "compact", "{url}"],
    "dataset build": ["dataset", "build", "{url}", "{tmp}/dataset"],
    "edit apply": ["edit", "apply", "{url}", "--learned", "hair_lightness"],
}


def _invoke(name: str, url: str, tmp: Path, extra: list[str] = ()) -> tuple[int, str]:  # type: ignore[assignment]
    args = [a.format(url=url, tmp=tmp) for a in COMMANDS[name]] + list(extra)
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    return r.exit_code, r.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_missing_store_is_an_error_naming_it_and_creates_nothing(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "store"
    code, output = _invoke(name, str(missing), tmp_path)
    assert code == 2, output
    assert f"no run store at {missing}" in output and "nothing is there" in output, output
    assert not (tmp_path / "no").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no bundle, no dataset folder either


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_folder_that_is_not_a_run_store(name: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a store")
    code, output = _invoke(name, str(folder), tmp_path)
    assert code == 2, output
    assert f"no run store at {folder}" in output and "not a run store" in output, output
    assert [p.name for p in folder.iterdir()] == ["a.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]


@pytest.mark.parametrize("name", ["report", "store summary", "dataset build"])
def test_missing_store_on_s3(name: str, tmp_path: Path, s3_endpoint: str) -> None:
    import fsspec

    url = f"s3://runs/{uuid.uuid4().hex}"
    code, output = _invoke(name, url, tmp_path, ["--endpoint-url", s3_endpoint])
    assert code == 2, output
    assert f"no run store at {url}" in output, output
    assert fsspec.filesystem("s3", **s3_options(s3_endpoint)).find(url) == []


def test_open_existing(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError) as err:
        RunStore.open_existing(str(tmp_path / "none"))
    assert err.value.code == "store_not_found" and isinstance(err.value, ConfigError)
    store = RunStore(str(tmp_path / "run"))
    store.check_writable()  # what every flow run does first: the index/ folder exists from then on
    assert RunStore.open_existing(store.url).url == store.url
