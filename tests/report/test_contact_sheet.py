"""The run's contact sheet and the two item layouts (issue 20): ``input.png`` + ``render-input.png`` (the
reconstruction at the input camera) in new stores; older stores kept the input as ``render-input.png``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_helpers import RUN, VIEWS, make_store, picture, view_name

from sym3dinv.report import build_report
from sym3dinv.report.contact_sheet import LABEL_H, TILE, sheet_path, write_contact_sheet
from sym3dinv.store import RunStore, input_outputs


def _disc(seed: int) -> tuple[int, ...]:
    p = picture(seed)
    return tuple(int(v) for v in p[16, 16])


def _tile_centre(sheet: np.ndarray, row: int, col: int) -> tuple[int, ...]:
    y = LABEL_H + row * (TILE + LABEL_H) + LABEL_H + TILE // 2
    return tuple(int(v) for v in sheet[y, col * TILE + TILE // 2])


def _sheet(store: RunStore) -> np.ndarray:
    rel = write_contact_sheet(store, RUN)
    assert rel == sheet_path(RUN)
    return np.asarray(Image.open(io.BytesIO(store.cat(rel))).convert("RGB"))


def test_input_outputs_reads_both_layouts() -> None:
    assert input_outputs({"input": "a/input.png", "render/input": "a/render-input.png"}) == (
        "a/input.png", "a/render-input.png")
    assert input_outputs({"render/input": "a/render-input.png"}) == ("a/render-input.png", None)  # older stores
    assert input_outputs({}) == (None, None)


def test_contact_sheet_of_a_new_store(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "s"))
    make_store(store, n_done=2, hostile=False, new_layout=True)
    sheet = _sheet(store)
    cols = 2 + len(VIEWS) + 1  # input | reconstruction | 3 novel views | depth
    assert sheet.shape == (LABEL_H + 2 * (TILE + LABEL_H), cols * TILE, 3)
    for i in range(2):  # rows sorted by source name: face0, face1
        assert _tile_centre(sheet, i, 0) == _disc(100 + i)  # input.png
        assert _tile_centre(sheet, i, 1) == _disc(300 + i)  # render-input.png, the reconstruction
        for k in range(len(VIEWS)):  # novel views by yaw: -0.5, 0, +0.5
            order = sorted(range(len(VIEWS)), key=lambda j: VIEWS[j])
            assert _tile_centre(sheet, i, 2 + k) == _disc(200 + 10 * i + order[k])
        depth = sheet[LABEL_H + i * (TILE + LABEL_H) + LABEL_H + TILE // 2, (cols - 1) * TILE:cols * TILE, 0]
        assert depth[2] > 240 and depth[-3] < 15  # the ramp: near (left) bright, far dark


def test_contact_sheet_and_report_of_an_old_store(tmp_path: Path) -> None:
    """A store from before input.png: the input comes from render-input.png, the reconstruction is the
    stored view nearest the input camera (yaw 0), the depth tile is left grey (none stored)."""
    store = RunStore(str(tmp_path / "s"))
    make_store(store, n_done=2, hostile=False)
    sheet = _sheet(store)
    grey = (225, 225, 225)
    zero = VIEWS.index((0.0, 0.0))
    for i in range(2):
        assert _tile_centre(sheet, i, 0) == _disc(100 + i)
        assert _tile_centre(sheet, i, 1) == _disc(200 + 10 * i + zero)
        assert _tile_centre(sheet, i, 2) == _disc(200 + 10 * i + VIEWS.index((-0.5, 0.0)))
        assert _tile_centre(sheet, i, 3) == _disc(200 + 10 * i + VIEWS.index((0.5, 0.0)))
        assert _tile_centre(sheet, i, 4) == grey
    page = Path(build_report(store).index).read_text()
    assert "reconstruction · yaw +0.00" in page and "reconstruction · input camera" not in page


def test_report_of_a_new_store_uses_the_render_at_the_input_camera(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "s"))
    make_store(store, n_done=1, hostile=False, new_layout=True)
    res = build_report(store)
    page = Path(res.index).read_text()
    assert page.count("reconstruction · input camera") == 1 and "reconstruction · yaw" not in page
    for v in VIEWS:  # all three stored views are novel views now
        assert f"yaw {v[0]:+.2f} pitch {v[1]:+.2f}" in page, view_name(*v)
    assert not res.warnings


@pytest.mark.parametrize("kind", ["empty", "failed only"])
def test_no_sheet_without_done_items(tmp_path: Path, kind: str) -> None:
    store = RunStore(str(tmp_path / "s"))
    if kind == "failed only":
        make_store(store, n_done=0, hostile=False)
    assert write_contact_sheet(store, RUN) is None
    assert not store.fs.exists(store.abspath(sheet_path(RUN)))
