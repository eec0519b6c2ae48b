"""User edit directions: what is refused, that strength 0 is the unedited render, ridge/orthogonalisation
maths on synthetic data, and `apply_to_store` + the report on a tiny store with a tiny generator."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from sym3dinv.edit import Edit, apply_edit, load_direction
from sym3dinv.edit.apply import apply_to_store, render_edit
from sym3dinv.edit.directions import check_direction
from sym3dinv.edit.learn import fit_ridge, learn_directions, orthogonalise
from sym3dinv.errors import ConfigError
from sym3dinv.store import IndexRow, RunStore, Status, item_id_from_bytes
from tests.plugin import make_tiny

W_DIM, NUM_WS = 512, 10


@pytest.mark.parametrize(("array", "match"), [
    (np.zeros(W_DIM, np.int32), "floating point"),
    (np.zeros(W_DIM, bool), "floating point"),
    (np.zeros(W_DIM, np.complex64), "floating point"),
    (np.zeros(W_DIM + 1, np.float32), "shape"),
    (np.zeros((NUM_WS + 1, W_DIM), np.float32), "shape"),
    (np.zeros((2, 3, W_DIM), np.float32), "shape"),
    (np.zeros((), np.float32), "shape"),
    (np.full(W_DIM, np.nan, np.float32), "NaN"),
    (np.full(W_DIM, np.inf, np.float64), "NaN"),
])
def test_bad_directions_are_refused(tmp_path: Path, array: np.ndarray, match: str) -> None:
    path = tmp_path / "d.npy"
    np.save(path, array)
    with pytest.raises(ConfigError, match=match):
        load_direction(path, W_DIM, NUM_WS)


def test_pickled_and_non_npy_files_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="not a .npy array"):
        load_direction(evil, W_DIM, NUM_WS)
    assert not marker.exists()  # nothing was unpickled
    text = tmp_path / "d.npy"
    text.write_text("not numpy")
    with pytest.raises(ConfigError):
        load_direction(text, W_DIM, NUM_WS)
    with pytest.raises(ConfigError, match="does not exist"):
        load_direction(tmp_path / "missing.npy", W_DIM, NUM_WS)


class _Boom:
    """Unpickling this would create a file (it must never happen)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (Path(self.path),))


def test_good_directions_load_as_float32(tmp_path: Path) -> None:
    for arr in (np.ones(W_DIM, np.float64), np.ones((1, W_DIM), np.float16), np.ones((NUM_WS, W_DIM), np.float32)):
        np.save(tmp_path / "d.npy", arr)
        d = load_direction(tmp_path / "d.npy", W_DIM, NUM_WS)
        assert d.dtype == np.float32 and d.shape in ((W_DIM,), (NUM_WS, W_DIM))
    ws = np.random.default_rng(0).normal(size=(NUM_WS, W_DIM)).astype(np.float32)
    assert np.array_equal(apply_edit(ws, np.ones(W_DIM, np.float32), 0.0), ws)
    assert np.allclose(apply_edit(ws, np.ones(W_DIM), 2.0), ws + 2)
    assert np.allclose(apply_edit(ws, np.ones((NUM_WS, W_DIM)), -1.0), ws - 1)


def test_strength_zero_reproduces_the_unedited_render_exactly() -> None:
    from sym3dinv.cameras import camera_label
    from sym3dinv.invert.render import render_views

    G = make_tiny(0)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1)), torch.zeros(1, 25))
    delta = {"backbone.synthesis.b4.conv1.weight": torch.full_like(
        G.state_dict()["backbone.synthesis.b4.conv1.weight"], 0.01)}
    d = np.random.default_rng(2).normal(size=(G.num_ws, G.w_dim)).astype(np.float32)
    views = [(0.0, 0.0), (0.4, -0.1)]
    out = render_edit(G, ws[0].numpy(), d, [0.0, 1.5], views, delta=delta)
    cams = torch.stack([camera_label(y, p) for y, p in views]).reshape(-1, 25)
    ref = render_views(G, ws, cams, delta=delta).image
    ref_u8 = ((ref.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(out[0.0], ref_u8)
    assert not np.array_equal(out[1.5], ref_u8)


def test_ridge_recovers_a_linear_direction_and_orthogonalises() -> None:
    rng = np.random.default_rng(0)
    n, dim = 80, 64
    X = rng.normal(size=(n, dim))
    a_true, b_true = np.zeros(dim), np.zeros(dim)
    a_true[0], b_true[0], b_true[1] = 1.0, 0.6, 0.8  # b is correlated with a
    ya = X @ a_true + 0.05 * rng.normal(size=n)
    yb = X @ b_true + 0.05 * rng.normal(size=n)
    fit = fit_ridge(X, ya)
    assert fit.r2_loo > 0.9 and abs(fit.beta @ a_true) / np.linalg.norm(fit.beta) > 0.95
    dirs = learn_directions(X, {"a": ya, "b": yb})
    raw = learn_directions(X, {"a": ya, "b": yb}, conditional=False)
    # conditional 'a' is orthogonal to the raw 'b' direction (and vice versa), so moving along it leaves the
    # linear prediction of b alone; the unconditional ones are not
    assert abs(float(dirs["a"].direction @ raw["b"].direction)) < 1e-6
    assert abs(float(dirs["b"].direction @ raw["a"].direction)) < 1e-6
    assert abs(float(raw["a"].direction @ raw["b"].direction)) > 0.5
    for d in dirs.values():
        assert np.isclose(np.linalg.norm(d.direction), 1.0) and d.latent_per_std > 0
    # strength 1 of the scaled direction moves the linear prediction of 'a' by one std of 'a'
    fa = fit_ridge(X, ya)
    assert np.isclose(fa.beta @ dirs["a"].scaled().astype(np.float64), np.std(ya), rtol=1e-4)
    assert np.allclose(orthogonalise(a_true, []), a_true)
    with pytest.raises(ConfigError):
        fit_ridge(X, np.ones(n))
    with pytest.raises(ConfigError, match="unknown"):
        learn_directions(X, {"a": ya}, targets=["zzz"])


def _tiny_store(G, store: RunStore, n: int = 2) -> list[str]:  # noqa: ANN001
    ids = []
    with store.index_writer("run-e", "00000") as writer:
        for i in range(n):
            item_id = item_id_from_bytes(f"edit-item-{i}".encode())
            ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(10 + i)), torch.zeros(1, 25))
            with store.item_writer(item_id) as w:
                w.write_latents({"ws": ws[0].numpy()})
                w.write_delta({"backbone.synthesis.b4.conv1.weight": np.full(
                    tuple(G.state_dict()["backbone.synthesis.b4.conv1.weight"].shape), 0.01, np.float32)})
                w.write_render("input", np.zeros((16, 16, 3), np.uint8))
                for name in ("yaw+0.00_pitch+0.00", "yaw+0.50_pitch+0.00"):
                    w.write_render(name, np.zeros((16, 16, 3), np.uint8))
                w.write_metrics({"psnr": 20.0, "config": {"generator": "tiny-test"}})
            writer.add_done(w.committed, IndexRow(id=item_id, status=Status.DONE, config_hash="cfg",
                                                  source_uri=f"/in/face{i}.png", yaw=0.0, pitch=0.0,
                                                  metrics={"psnr": 20.0}, stage_seconds={"total": 1.0}))
            ids.append(item_id)
    return ids


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_apply_to_store_writes_edit_folder_and_report_shows_it(tmp_path: Path, kind: str) -> None:
    from sym3dinv.report import build_report

    G = make_tiny(0)
    store = RunStore(str(tmp_path / "s") if kind == "local" else f"memory://edit-{uuid.uuid4().hex}")
    ids = _tiny_store(G, store)
    d = np.random.default_rng(3).normal(size=G.w_dim).astype(np.float32)
    res = apply_to_store(store, [Edit("rand", d, (-1.0, 1.0))], name="e1", G=G, sources={"rand": "<b>test</b>"})
    assert res.items == 2 and res.renders == 2 * 3 * 2 and not res.failed
    man = json.loads(store.fs.cat_file(store.abspath("edits/e1/edit.json")))
    assert man["format"] == "sym3dinv-edit/1" and man["directions"][0]["strengths"] == [-1.0, 0.0, 1.0]
    assert man["generator"] == "tiny-test" and [v["name"] for v in man["views"]] == ["yaw+0.00_pitch+0.00", "yaw+0.50_pitch+0.00"]
    for rec in man["items"]:
        assert rec["id"] in ids
        for r in rec["renders"]:
            assert store.fs.exists(store.abspath(f"edits/e1/{r['path']}"))
    rep = build_report(store, self_contained=(kind == "memory"))
    page = store.fs.cat_file(store.abspath("reports/all/index.html")).decode()
    assert '<section id="edits">' in page and "&lt;b&gt;test&lt;/b&gt;" in page and not rep.warnings
    assert page.count(">strength -1<") == 2 * 2 and page.count(">original<") == 2 * 2
    with pytest.raises(ConfigError, match="shape"):
        apply_to_store(store, [Edit("bad", np.ones(G.w_dim + 1, np.float32))], G=G)


def test_cli_apply_refuses_bad_direction(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sym3dinv.cli import app
    from sym3dinv.generator import save_generator

    G = make_tiny(0)
    ckpt = save_generator(G, tmp_path / "tiny.safetensors")
    store = RunStore(str(tmp_path / "s"))
    _tiny_store(G, store, n=1)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = CliRunner().invoke(app, ["edit", "apply", store.url, "-d", str(tmp_path / "obj.npy"), "--generator", str(ckpt)])
    assert r.exit_code == 2 and "not a .npy array" in r.output
    np.save(tmp_path / "good.npy", np.ones(G.w_dim, np.float32))
    r = CliRunner().invoke(app, ["edit", "apply", store.url, "-d", f"plus={tmp_path / 'good.npy'}", "-s", "0.5",
                                 "--generator", str(ckpt), "--name", "cli"])
    assert r.exit_code == 0, r.output
    assert store.fs.exists(store.abspath("edits/cli/edit.json"))
    assert check_direction(np.ones((1, G.w_dim)), G.w_dim).shape == (G.w_dim,)
