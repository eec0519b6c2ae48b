"""Resume under the right generator (issue 21): the generator fingerprint in every row and manifest, the
refusal to resume a store made by another generator (same config, other weights behind the same path), and
``--new-generator`` starting fresh rows; on the real flow (Prefect harness, local Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.bulk_invert import bulk_invert
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.errors import GeneratorMismatchError
from sym3dinv.generator import save_generator
from sym3dinv.generator.fingerprint import generator_fingerprint
from sym3dinv.store import RunStore
from tests.plugin import BAD, make_folder, make_tiny, tiny_pipeline

GOOD = 2


def _config(ckpt: str):
    return tiny_pipeline(ckpt, render=RenderSpec(views=((0.0, 0.0),), depth=False))


def _run(folder: Path, out: str, ckpt: str, **execution: object):
    return bulk_invert(input=str(folder), out=out, config=_config(ckpt),
                       execution=ExecutionConfig(shard_size=8, num_actors=1, **execution))


def _invert_cli(folder: Path, out: str, ckpt: str, *extra: str):
    from flows.cli import invert
    from sym3dinv.cli import app

    if not any(c.name == "invert" for c in app.registered_commands):
        app.command("invert")(invert)
    args = ["invert", str(folder), "--out", out, "--generator", ckpt, "--preset", "smoke", "--mode", "w+",
            "--view", "0,0", "--no-depth", "--set", "stage1.steps=2", "--set", "stage1.w_avg_samples=64", *extra]
    return CliRunner().invoke(app, args)


def test_resume_with_other_weights_at_the_same_path_refuses(tmp_path: Path, ray_local: None) -> None:
    folder = make_folder(tmp_path / "in", n_good=GOOD)
    ckpt = str(save_generator(make_tiny(0), tmp_path / "gen.safetensors"))
    old, new = generator_fingerprint(make_tiny(0)), generator_fingerprint(make_tiny(1))
    out = str(tmp_path / "store")
    s = _run(folder, out, ckpt)
    assert s.counts["done"] == GOOD
    store = RunStore(out)
    done = store.done_rows()
    assert len(done) == GOOD and {r.generator_fingerprint for r in done} == {old}
    assert {r.generator_fingerprint for r in store.latest_rows(status="failed")} == {old}  # failures record it too
    for r in done:  # and the manifest, which adoption reads
        manifest = json.loads(store.cat(f"{r.item_dir}/_MANIFEST.json"))
        assert manifest["meta"]["generator_fingerprint"] == old == manifest["meta"]["row"]["generator_fingerprint"]

    save_generator(make_tiny(1), ckpt)  # same path, same config hash: other weights
    assert _config(ckpt).config_hash == s.config_hash
    with pytest.raises(GeneratorMismatchError) as err:  # the flow refuses at planning, before any work
        _run(folder, out, ckpt)
    assert old in str(err.value) and new in str(err.value) and "--new-generator" in str(err.value)
    assert len(store.read_index()) == GOOD + len(BAD)  # nothing written

    cli_out = str(tmp_path / "cli-store")  # the command (its own config): one line, exit status 2
    assert _invert_cli(folder, cli_out, ckpt).exit_code == 0  # made by the new weights
    save_generator(make_tiny(0), ckpt)
    r = _invert_cli(folder, cli_out, ckpt)  # resumed under the old ones
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: refusing to resume") and old in lines[0] and new in lines[0]
    save_generator(make_tiny(1), ckpt)

    s2 = _run(folder, out, ckpt, new_generator=True)  # fresh rows under the new generator; the old ones stay
    assert (s2.processed, s2.counts.get("done")) == (GOOD, GOOD)  # bad inputs stay settled, done ones redone
    rows = store.read_index(["id", "status", "generator_fingerprint"]).to_pylist()
    done_fps = sorted(r["generator_fingerprint"] for r in rows if r["status"] == "done")
    assert done_fps == sorted([old] * GOOD + [new] * GOOD)
    assert {r.generator_fingerprint for r in store.done_rows()} == {new}
    s3 = _run(folder, out, ckpt)  # every done item is now the new generator's: a plain resume is fine
    assert s3.processed == 0


def test_dataset_build_and_edit_apply_refuse_another_generator(tmp_path: Path, ray_local: None) -> None:
    import numpy as np

    from sym3dinv.config.dataset import CameraSpec, DatasetConfig
    from sym3dinv.dataset import build_dataset
    from sym3dinv.edit import Edit
    from sym3dinv.edit.apply import apply_to_store

    folder = make_folder(tmp_path / "in", n_good=1)
    ckpt = str(save_generator(make_tiny(0), tmp_path / "gen.safetensors"))
    out = str(tmp_path / "store")
    _run(folder, out, ckpt)
    other = make_tiny(1)
    cfg = DatasetConfig(cameras=CameraSpec(kind="grid", n_yaw=2, n_pitch=1), resolution=32, depth_resolution=16)
    with pytest.raises(GeneratorMismatchError, match="dataset build: the items were inverted 1 by generator") as err:
        build_dataset(out, str(tmp_path / "ds"), cfg, generator=other)
    assert generator_fingerprint(other) in str(err.value) and "--force" in str(err.value)
    assert not (tmp_path / "ds" / "manifests").exists()  # refused before rendering
    forced = build_dataset(out, str(tmp_path / "ds"), DatasetConfig(**{**cfg.__dict__, "force": True}),
                           generator=other)
    assert forced.built == 1
    assert cfg.config_hash() == DatasetConfig(**{**cfg.__dict__, "force": True}).config_hash()  # not hashed
    assert build_dataset(out, str(tmp_path / "ds2"), cfg, generator=make_tiny(0)).built == 1  # its own: fine

    store = RunStore(out)
    edit = [Edit("probe", np.ones((other.num_ws, other.w_dim), np.float32), (1.0,))]
    with pytest.raises(GeneratorMismatchError, match="edit apply"):
        apply_to_store(store, edit, name="probe", generator="tiny1", G=other, views=[(0.0, 0.0)])
    assert apply_to_store(store, edit, name="probe", generator="tiny1", G=other, views=[(0.0, 0.0)],
                          force=True).items == 1
