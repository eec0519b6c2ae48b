"""Learned edit directions on SynthHeads: the shipped attribute set, meters against ground truth, and the
selectivity check: a learned direction moves its own attribute (as the meters read it from renders of
the embedded generator) more than the others. No inversion here: the shipped .npz holds the latents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sym3dinv.edit.attributes import METERS, gt_attributes, measure, render_world
from sym3dinv.edit.evaluate import edit_effects, meter_std
from sym3dinv.edit.learn import DEFAULT_TARGETS, default_set_path, learn_from_set, load_attribute_set
from sym3dinv.errors import ConfigError

HELD_OUT = 4  # the last identities of the set: directions are learned without them, applied to them


@pytest.fixture(scope="module")
def aset():  # noqa: ANN201
    return load_attribute_set()


@pytest.fixture(scope="module")
def G():  # noqa: ANN201, N802
    from sym3dinv.generator import load_generator

    return load_generator("synthheads")


def test_shipped_set_is_small_and_matches_the_world(aset) -> None:  # noqa: ANN001
    assert default_set_path().stat().st_size < 400_000
    n = len(aset.seeds)
    assert n >= 48 and len(set(aset.seeds.tolist())) == n
    assert aset.latents.shape == (n, 512) and np.isfinite(aset.latents).all()
    for i in (0, n // 2, n - 1):  # stored ground truth is what the world says for that seed
        gt = gt_attributes(int(aset.seeds[i]))
        assert np.allclose([gt[k] for k in aset.attribute_names], aset.attributes[i])
    assert aset.meter_names == METERS and np.isfinite(aset.meters).all()
    assert aset.meta["method"] == "codes" and aset.meta["generator"] == "synthheads-v2"


def test_meters_track_ground_truth_on_generator_renders(aset) -> None:  # noqa: ANN001
    """Meters of the generator's renders of the set's latents vs the identities' ground truth."""
    r = {m: float(np.corrcoef(aset.meter(m), aset.attribute(m))[0, 1]) for m in METERS}
    assert r["hair_lightness"] > 0.95 and r["skin_lightness"] > 0.95 and r["parting_side"] > 0.8, r


def test_meters_track_ground_truth_on_world_renders() -> None:
    """The meters read the world's ground truth (a few heads at 64 px; more in docs/editing.md)."""
    seeds = [1, 3, 4, 5, 8, 10]  # light/dark hair and skin, partings -1, 0, +1
    readings = [render_world(s, 64).measure() for s in seeds]
    gts = [gt_attributes(s) for s in seeds]
    for m in ("hair_lightness", "skin_lightness", "parting_side"):
        r = np.corrcoef([x[m] for x in readings], [g[m] for g in gts])[0, 1]
        assert r > 0.9, (m, r)
    assert sorted({g["parting_side"] for g in gts}) == [-1.0, 0.0, 1.0]


def test_learned_edits_change_their_own_attribute_most(aset, G) -> None:  # noqa: ANN001, N803
    n = len(aset.seeds)
    held = list(range(n - HELD_OUT, n))
    dirs = learn_from_set(aset, ["hair_lightness", "face_width", "parting_side"], exclude=held)
    assert dirs["hair_lightness"].r2_loo > 0.9 and dirs["parting_side"].r2_loo > 0.8
    eff = edit_effects(G, [aset.latents[i] for i in held], {k: d.scaled() for k, d in dirs.items()},
                       meter_std(aset), strength=2.0)
    report = json.dumps(eff, indent=1)
    hair, width, part = eff["hair_lightness"], eff["face_width"], eff["parting_side"]
    # hair colour: its meter moves (positive strength = lighter), face width much less
    assert hair["hair_lightness"] > 0.2, report
    assert hair["hair_lightness"] > 3 * abs(hair["face_width"]), report
    assert all(hair["hair_lightness"] > 1.5 * abs(v) for m, v in hair.items() if m != "hair_lightness"), report
    # and vice versa: face width moves the width meter, hair colour much less. Thresholds are about half
    # of what synthheads-v2 measures on these 4 identities (width 0.11, parting 0.21 std per unit; v1
    # had 0.33 and 0.43 but coupled more: v2's rows are cleaner, so the ratios are 3, not 1 and 1.5)
    assert width["face_width"] > 0.05, report
    assert width["face_width"] > 3 * abs(width["hair_lightness"]), report
    assert all(width["face_width"] > 3 * abs(v) for m, v in width.items() if m != "face_width"), report
    # a geometric, asymmetric attribute the default generator encodes well: the side parting
    assert part["parting_side"] > 0.1, report
    assert all(part["parting_side"] > 3 * abs(v) for m, v in part.items() if m != "parting_side"), report


def test_generator_render_of_a_latent_reads_like_its_identity(aset, G) -> None:  # noqa: ANN001, N803
    """The stored meters are reproducible from the stored latent (same render path as the edits)."""
    import torch

    from sym3dinv.edit.attributes import render_for_meter

    i = len(aset.seeds) - 1
    ws = torch.from_numpy(aset.latents[i:i + 1])[:, None].expand(-1, G.num_ws, -1)
    got = render_for_meter(G, ws)[0].measure()
    assert np.allclose([got[m] for m in METERS], aset.meters[i], rtol=1e-3, atol=1e-5)


def test_cli_learn_writes_scaled_directions(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sym3dinv.cli import app

    r = CliRunner().invoke(app, ["edit", "learn", str(tmp_path / "dirs")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "dirs" / "directions.json").read_text())
    assert [d["name"] for d in summary["directions"]] == list(DEFAULT_TARGETS)
    for d in summary["directions"]:
        arr = np.load(tmp_path / "dirs" / f"{d['name']}.npy")
        assert arr.shape == (512,) and arr.dtype == np.float32
        assert np.isclose(np.linalg.norm(arr), d["latent_per_std"], rtol=1e-4)  # strength 1 = 1 std
    r = CliRunner().invoke(app, ["edit", "learn", str(tmp_path / "x"), "-a", "no_such_attribute"])
    assert r.exit_code == 2 and "unknown attribute" in r.output
    r = CliRunner().invoke(app, ["edit", "learn", str(tmp_path / "x"), "--per-layer"])
    assert r.exit_code == 2 and "W+" in r.output


def test_bad_attribute_sets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_attribute_set(tmp_path / "none.npz")
    np.savez(tmp_path / "obj.npz", seeds=np.array([object()], dtype=object))
    with pytest.raises(ConfigError):
        load_attribute_set(tmp_path / "obj.npz")
    np.savez(tmp_path / "short.npz", seeds=np.arange(3))
    with pytest.raises(ConfigError, match="missing"):
        load_attribute_set(tmp_path / "short.npz")
    assert measure(np.zeros((64, 64, 3), np.uint8), np.full((32, 32), 3.0))["hair_lightness"] == 0.0
