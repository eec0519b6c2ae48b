"""The worker side of a group (issue 19) with the tiny generator and the real store, no Prefect or Ray: a
member that fails is its own failure row and the group goes on; a group none is left of fails clearly;
an attempt committed but not indexed is adopted with its dropped members' rows."""

from __future__ import annotations

import json
from pathlib import Path

from sym3dinv.config.pipeline import RenderSpec
from sym3dinv.errors import WorkerLostError
from sym3dinv.pipeline import GroupProcessor, list_items
from sym3dinv.pipeline.groups import with_group
from sym3dinv.store import RunStore, Status, failure_row
from tests.plugin import make_group_folder, make_tiny, tiny_pipeline


def _processor() -> GroupProcessor:
    config = tiny_pipeline("tiny-seed0", render=RenderSpec(views=((0.0, 0.0), (0.4, 0.0)), depth=False),
                           group_by="folder")
    return GroupProcessor(config, generator=make_tiny(0))


def test_a_group_none_of_whose_photos_is_usable_fails_with_its_members_rows(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "carl").mkdir(parents=True)
    (root / "carl" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "carl" / "b.jpg").write_bytes(b"")
    (item,) = list_items(str(root), group_by="folder")
    proc = _processor()
    rows = proc.process_many([item], RunStore(str(tmp_path / "store")))
    group, *members = rows
    assert group.id == item.id and group.status is Status.FAILED and group.error_class == "empty_group"
    assert "none of the 2 photos of group 'carl'" in (group.error_message or "")
    assert group.members == tuple(m.id for m in item.members) and group.members_used == ()
    assert group.members_dropped == group.members
    assert sorted(r.id for r in members) == sorted(group.members)
    assert all(r.status is Status.FAILED and r.error_class == "decode_error" and r.group_name == "carl"
               for r in members)
    assert {r.source_uri for r in members} == {m.uri for m in item.members}
    lost = with_group(failure_row(item.id, WorkerLostError("died"), config_hash="h"), item)  # the pool's row
    assert lost.members == group.members and lost.members_used is None and lost.group_name == "carl"
    single = failure_row(members[0].id, WorkerLostError("died"), config_hash="h")
    assert with_group(single, item.members[0]) is single


def test_a_corrupt_member_is_dropped_and_the_group_goes_on(tmp_path: Path) -> None:
    root = make_group_folder(tmp_path / "in", {"alice": 2}, corrupt=("alice",))
    (item,) = list_items(str(root), group_by="folder")
    assert len(item.members) == 3
    store = RunStore(str(tmp_path / "store"))
    proc = _processor()
    group, dropped = proc.process_many([item], store)
    broken = next(m for m in item.members if m.uri.endswith("broken.png"))
    assert dropped.id == broken.id and dropped.error_class == "decode_error" and dropped.group_name == "alice"
    assert group.status is Status.DONE and group.group_name == "alice" and group.members_dropped == (broken.id,)
    assert len(group.members_used) == 2 and group.members == tuple(m.id for m in item.members)
    outs = dict(group.outputs)
    for key in ("latents", "input", "render/input", "input-0", "input-1", "render/input-0", "render/input-1",
                "render/yaw+0.00_pitch+0.00", "render/yaw+0.40_pitch+0.00", "metrics"):
        assert key in outs and store.exists(outs[key]), key
    assert "input-2" not in outs  # the dropped member has no files
    meta = json.loads(store.cat(outs["metrics"]))
    assert [m["id"] for m in meta["group"]["members"]] == list(group.members_used)
    assert all("psnr" in m["metrics"] and len(m["camera"]) == 25 for m in meta["group"]["members"])
    assert meta["group"]["dropped"][0]["error_class"] == "decode_error"
    assert store.load_latents(group.item_dir or "")["member_ws"].shape[0] == 2
    assert 0 < group.metrics["psnr"] < 60 and group.camera_label is not None

    # committed but never indexed (a run killed before its index part): adopted, with the dropped row
    again, again_dropped = proc.process_many([item], store)
    assert again.item_dir == group.item_dir and again.stage_seconds.get("adopted") == 1.0
    assert again.members_used == group.members_used and again_dropped.id == broken.id
    assert again_dropped.error_class == "decode_error"
