"""build_dataset: fsspec outputs (memory:// and a local folder), resume without re-rendering, partial
identities redone, edits, identity selection, and configuration errors before any work."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import numpy as np
import pytest
from PIL import Image

from sym3dinv.dataset import CameraSpec, DatasetBuilder, DatasetConfig, EditSpec, build_dataset, plan_dataset
from sym3dinv.errors import ConfigError
from sym3dinv.store import RunStore

SMALL = DatasetConfig(cameras=CameraSpec(kind="orbit", n_views=3), resolution=32)


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every identity the builder renders (across builders)."""
    seen: list[str] = []
    real = DatasetBuilder.build_identity

    def spy(self, row):  # noqa: ANN001, ANN202
        seen.append(row.id)
        return real(self, row)

    monkeypatch.setattr(DatasetBuilder, "build_identity", spy)
    return seen


def test_memory_url_build_and_resume_renders_nothing_twice(tiny_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    renders = count_renders(monkeypatch)
    out = "memory://sym3dinv-ds-test/a"
    s1 = build_dataset(tiny_store, out, SMALL)
    assert (s1.identities, s1.built, s1.skipped, s1.images, s1.new_images) == (2, 2, 0, 6, 6) and not s1.failed
    fs = fsspec.filesystem("memory")
    data = json.loads(fs.cat_file("/sym3dinv-ds-test/a/rgb/dataset.json"))
    assert len(data["labels"]) == 6
    assert len(fs.glob("/sym3dinv-ds-test/a/index/part-*.parquet")) == 2
    assert len(fs.glob("/sym3dinv-ds-test/a/manifests/*.json")) == 2
    assert len(renders) == 2
    s2 = build_dataset(tiny_store, out, SMALL)
    assert (s2.built, s2.skipped, s2.images, s2.new_images) == (0, 2, 6, 0)
    assert len(renders) == 2  # nothing rendered again


def test_local_resume_keeps_files_and_redoes_only_an_unfinished_identity(tiny_store: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    renders = count_renders(monkeypatch)
    out = tmp_path / "ds"
    build_dataset(tiny_store, str(out), SMALL)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    s2 = build_dataset(tiny_store, f"file://{out}", SMALL)  # same place as a file:// URL
    assert s2.built == 0 and len(renders) == 2
    assert {p: p.stat().st_mtime_ns for p in files if p.name != "dataset.json"} == \
        {p: t for p, t in mtimes.items() if p.name != "dataset.json"}
    # an identity killed before its manifest (= not finished) is redone, and only it
    victim = sorted((out / "manifests").glob("*.json"))[0]
    victim.unlink()
    s3 = build_dataset(tiny_store, str(out), SMALL)
    assert (s3.built, s3.skipped) == (1, 1) and renders[-1] == victim.stem and len(renders) == 3
    assert len(json.loads((out / "rgb" / "dataset.json").read_text())["labels"]) == 6
    import pandas as pd

    assert len(pd.read_parquet(out / "index")) == 6  # the redo overwrote its part, no duplicate rows


def test_another_config_in_the_same_place_is_refused(tiny_store: str, tmp_path: Path) -> None:
    out = str(tmp_path / "ds")
    build_dataset(tiny_store, out, SMALL, identities=[RunStore(tiny_store).done_rows()[0].id])
    with pytest.raises(ConfigError, match="another config"):
        build_dataset(tiny_store, out, DatasetConfig(cameras=CameraSpec(kind="orbit", n_views=4), resolution=32))
    # execution-only fields do not change the hash
    s = build_dataset(tiny_store, out, DatasetConfig(cameras=SMALL.cameras, resolution=32, chunk=1, shard_size=1))
    assert (s.built, s.skipped) == (1, 1)


def test_identity_selection_and_unknown_ids(tiny_store: str, tmp_path: Path) -> None:
    ids = [r.id for r in RunStore(tiny_store).done_rows()]
    plan = plan_dataset(tiny_store, str(tmp_path / "p"), SMALL, identities=ids[1:])
    assert plan.todo == (ids[1],) and plan.shards(1) == [[ids[1]]]
    with pytest.raises(ConfigError, match="not done"):
        plan_dataset(tiny_store, str(tmp_path / "q"), SMALL, identities=["0" * 32])


def test_edits_are_rendered_with_names_and_strengths(tiny_store: str, tiny_direction: str, tmp_path: Path) -> None:
    import pandas as pd

    cfg = DatasetConfig(cameras=CameraSpec(kind="grid", n_yaw=1, n_pitch=1), resolution=32,
                        edits=(EditSpec("bright", tiny_direction, (-3.0, 3.0)),))
    out = tmp_path / "ds"
    s = build_dataset(tiny_store, str(out), cfg)
    assert s.images == 2 * 3
    df = pd.read_parquet(out / "index")
    assert sorted(zip(df.variant, df.edit, df.strength, strict=True))[:3] == [
        ("bright+3", "bright", 3.0), ("bright+3", "bright", 3.0), ("bright-3", "bright", -3.0)]
    ident = df.identity.iloc[0]
    img = {v: np.asarray(Image.open(out / "rgb" / ident / v / "v000.png"), dtype=int) for v in ("orig", "bright+3")}
    assert np.abs(img["orig"] - img["bright+3"]).mean() > 0.5  # the edit changes the render
    man = json.loads((out / "manifests" / f"{ident}.json").read_text())
    assert man["variants"] == ["orig", "bright-3", "bright+3"]


@pytest.mark.parametrize("kw,match", [
    ({"resolution": 4}, "resolution"), ({"mask_threshold": 1.5}, "mask_threshold"),
    ({"mesh_formats": ("obj",)}, "mesh_formats"),
    ({"edits": (EditSpec("a", "x.npy"), EditSpec("a", "y.npy"))}, "unique")])
def test_bad_configs_fail_fast(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DatasetConfig(**kw)


def test_bad_edit_specs_and_directions(tiny_store: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        EditSpec("orig", "x.npy")
    with pytest.raises(ConfigError):
        EditSpec("smile", "x.npy", (0.0,))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones(7, np.float32))
    cfg = DatasetConfig(cameras=SMALL.cameras, resolution=32, edits=(EditSpec("w", str(wrong)),))
    with pytest.raises(ConfigError, match="W space"):  # checked against the generator before writing images
        build_dataset(tiny_store, str(tmp_path / "ds"), cfg)
    np.save(wrong, np.ones(32, np.float32))  # fixed: the same output place takes the corrected config
    s = build_dataset(tiny_store, str(tmp_path / "ds"), DatasetConfig(cameras=SMALL.cameras, resolution=32,
                                                                      edits=(EditSpec("w", str(wrong), (0.5,)),)))
    assert s.built == 2 and s.images == 2 * 2 * 3
    with pytest.raises(ConfigError, match="cannot be read"):
        DatasetConfig(edits=(EditSpec("m", str(tmp_path / "missing.npy")),)).config_hash()
