"""A folder of groups (several photos of one person each, issue 19) through the real flow: temporary Prefect API,
local 2-CPU Ray, the tiny generator with known cameras (dataset.json), the smoke preset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flows.bulk_invert import bulk_invert
from sym3dinv.config.dataset import CameraSpec, DatasetConfig
from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
from sym3dinv.store import RunStore, Status
from tests.plugin import make_group_folder, tiny_pipeline


def test_folder_of_groups_runs_resumes_and_grows(tmp_path: Path, tiny_checkpoint: str, ray_local: None) -> None:
    root = make_group_folder(tmp_path / "in", {"alice": 2, "bob": 1}, corrupt=("alice",))
    out = str(tmp_path / "store")
    config = tiny_pipeline(tiny_checkpoint, render=RenderSpec(views=((0.0, 0.0), (0.4, 0.0)), depth=False),
                           group_by="folder")
    execution = ExecutionConfig(shard_size=2, num_actors=2)
    s = bulk_invert(input=str(root), out=out, config=config, execution=execution)
    assert (s.inputs, s.skipped, s.processed) == (2, 0, 2)  # two groups, nothing else
    assert s.counts == {"done": 2, "failed:decode_error": 1}  # the corrupt photo is its own failed row
    store = RunStore(out)
    rows = {r.group_name: r for r in store.latest_rows() if r.members is not None}
    alice, bob = rows["alice"], rows["bob"]
    assert alice.status is Status.DONE and len(alice.members) == 3 and len(alice.members_used) == 2
    (broken,) = [r for r in store.latest_rows() if r.status is Status.FAILED]
    assert alice.members_dropped == (broken.id,) and broken.group_name == "alice"
    assert broken.source_uri == str(root / "alice" / "broken.png")
    assert bob.status is Status.DONE and bob.members_used == bob.members and len(bob.members) == 1
    assert {"input-0", "input-1", "render/input-1"} <= set(alice.outputs)
    html = (Path(out) / "reports" / s.run_id / "index.html").read_text()
    assert "group of 3 photos · 2 used · 1 dropped" in html and "reconstruction · photo 1" in html

    s2 = bulk_invert(input=str(root), out=out, config=config, execution=execution)
    assert (s2.skipped, s2.processed) == (2, 0)  # finished groups are skipped

    shutil.copy(root / "alice" / "photo0.png", root / "bob" / "extra.png")  # a photo added to bob
    s3 = bulk_invert(input=str(root), out=out, config=config, execution=execution)
    assert (s3.inputs, s3.skipped, s3.processed) == (2, 1, 1)  # bob is a new item; alice stays done
    bobs = [r for r in store.latest_rows() if r.group_name == "bob" and r.members is not None]
    assert len(bobs) == 2 and all(r.status is Status.DONE for r in bobs)  # the old bob is still there ...
    old = next(r for r in bobs if r.id == bob.id)
    assert old.item_dir == bob.item_dir and store.is_committed(old.item_dir or "")  # ... and readable
    assert store.load_latents(old.item_dir or "")["ws"].shape == store.load_latents(bob.item_dir or "")["ws"].shape

    from sym3dinv.dataset import build_dataset

    ds = build_dataset(out, str(tmp_path / "ds"), DatasetConfig(
        cameras=CameraSpec(kind="grid", n_yaw=2, n_pitch=1), resolution=32, depth_resolution=16, mesh=False,
        generator=tiny_checkpoint), identities=[alice.id])
    assert ds.identities == 1  # one identity per group
    manifest = json.loads((tmp_path / "ds" / "manifests" / f"{alice.id}.json").read_text())
    assert manifest["group"] == {"name": "alice", "photos": list(alice.members_used)}


def test_invert_command_takes_the_group_options(tmp_path: Path, tiny_checkpoint: str) -> None:
    """``sym3dinv invert --group-by folder`` / ``--group-map FILE``: a bad value or file is one clear line and
    exit status 2 before any work."""
    from typer.testing import CliRunner

    from flows.cli import invert
    from sym3dinv.cli import app

    if not any(c.name == "invert" for c in app.registered_commands):
        app.command("invert")(invert)
    root = make_group_folder(tmp_path / "in", {"ann": 1})
    (tmp_path / "map.csv").write_text("path,group\nann/photo0.png,ann\nann/missing.png,ann\n")
    out = tmp_path / "store"
    base = ["invert", str(root), "--out", str(out), "--generator", tiny_checkpoint, "--preset", "smoke"]
    cases = [(["--group-map", str(tmp_path / "map.csv")], "1 path(s) are not images of"),
             (["--group-map", str(tmp_path / "nope.csv")], "cannot read it"),
             (["--group-by", "person"], "person"),
             (["--group-by", "folder", "--group-map", str(tmp_path / "map.csv")], "not both")]
    for extra, words in cases:
        r = CliRunner().invoke(app, [*base, *extra], env={"COLUMNS": "300"})
        assert r.exit_code == 2 and words in r.output, (extra, r.output)
    assert not (out / "index").exists()  # nothing was written
