"""Groups of photos of one person, listing side (issue 19): group ids, folders, mapping files, the config
options and the index columns. No inversion here (tests/test_group_processor.py, tests/flows/test_groups_flow.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sym3dinv.config.pipeline import PipelineConfig
from sym3dinv.errors import FINAL_ERROR_CODES, ConfigError
from sym3dinv.pipeline import group_id, list_inputs, list_items, unreadable_id
from sym3dinv.pipeline.grouping import make_group
from sym3dinv.store import IndexRow, RunStore, Status
from sym3dinv.store.ids import item_id_from_bytes


def _photos(root: Path, layout: dict[str, bytes]) -> Path:
    for rel, data in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_group_ids_are_order_independent_and_never_a_photo_id() -> None:
    a, b, c = (item_id_from_bytes(x) for x in (b"a", b"b", b"c"))
    assert group_id([a, b, c]) == group_id([c, a, b]) == group_id([b, c, a, a])  # order and repeats do not matter
    assert group_id([a, b]) != group_id([a, b, c])  # a photo added: another item
    assert group_id([a]) not in (a, unreadable_id(a))  # its own namespace, as unreadable ids
    assert len(group_id([a])) == 32
    with pytest.raises(ValueError):
        group_id([])


def test_group_by_folder(tmp_path: Path) -> None:
    root = _photos(tmp_path / "in", {"alice/1.png": b"a1", "alice/2.jpg": b"a2", "alice/dup.png": b"a1",
                                     "bob/x/1.png": b"b1", "solo.png": b"s", "notes/readme.txt": b"-"})
    items = list_items(str(root), group_by="folder")
    by_name = {i.group: i for i in items if i.is_group}
    assert set(by_name) == {"alice", "bob/x"}  # the immediate parent folder, relative to the input root
    alice = by_name["alice"]
    assert len(alice.members) == 2  # the same bytes twice in one group are one member
    assert [m.id for m in alice.members] == sorted(m.id for m in alice.members)
    assert alice.id == group_id(m.id for m in alice.members) and alice.uri == str(root / "alice")
    assert alice.size == 4
    singles = [i for i in items if not i.is_group]
    assert [Path(i.uri).name for i in singles] == ["solo.png"]  # in no group: its own item, as without grouping
    assert list_items(str(root)) == list_inputs(str(root))  # no option: behaviour unchanged

    # renaming or reordering the photos leaves the id; adding one makes a new group
    (root / "alice" / "1.png").rename(root / "alice" / "z.png")
    assert {i.group: i.id for i in list_items(str(root), group_by="folder")}["alice"] == alice.id
    (root / "alice" / "3.png").write_bytes(b"a3")
    assert {i.group: i.id for i in list_items(str(root), group_by="folder")}["alice"] != alice.id


def test_group_map_csv_and_parquet(tmp_path: Path) -> None:
    root = _photos(tmp_path / "in", {"p1.png": b"1", "p2.png": b"2", "p3.png": b"3", "sub/p4.png": b"4"})
    csv = tmp_path / "groups.csv"
    csv.write_text(f"path,group\np1.png,ann\n./p2.png,ann\n{root / 'sub/p4.png'},ben\nfile://{root}/p1.png,ben\n")
    items = list_items(str(root), group_map=str(csv))
    groups = {i.group: i for i in items if i.is_group}
    assert {k: len(g.members) for k, g in groups.items()} == {"ann": 2, "ben": 2}  # p1 is in both groups
    assert groups["ann"].uri == f"{csv}#ann"  # the map file's absolute path and the group's name
    assert [Path(i.uri).name for i in items if not i.is_group] == ["p3.png"]  # not in the map: its own item
    parquet = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"path": ["p1.png", "p2.png", "sub/p4.png"], "group": ["ann", "ann", "ben"],
                             "note": ["x", "y", "z"]}), parquet)
    got = {i.group: i.id for i in list_items(str(root), group_map=str(parquet)) if i.is_group}
    assert got["ann"] == groups["ann"].id  # the same photos: the same group id, whatever file said so


@pytest.mark.parametrize(("content", "words"), [
    ("file,person\np1.png,ann\n", "needs the columns 'path' and 'group'"),
    ("path,group\n", "no rows"),
    ("path,group\np1.png,\n", "data row 1 has an empty"),
    ("path,group\nnope.png,ann\np1.png,ann\n../x.png,ann\n", "2 path(s) are not images of"),
])
def test_bad_group_maps_are_clear_config_errors(tmp_path: Path, content: str, words: str) -> None:
    root = _photos(tmp_path / "in", {"p1.png": b"1"})
    bad = tmp_path / "map.csv"
    bad.write_text(content)
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        list_items(str(root), group_map=str(bad))


def test_group_map_file_problems(tmp_path: Path) -> None:
    root = _photos(tmp_path / "in", {"p1.png": b"1"})
    with pytest.raises(ConfigError, match="cannot read it"):
        list_items(str(root), group_map=str(tmp_path / "missing.csv"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match="cannot read it"):
        list_items(str(root), group_map=str(tmp_path / "broken.parquet"))
    with pytest.raises(ConfigError, match="use a .csv or .parquet"):
        list_items(str(root), group_map=str(tmp_path / "map.xlsx"))
    with pytest.raises(ConfigError, match="not both"):
        list_items(str(root), group_by="folder", group_map=str(tmp_path / "m.csv"))
    with pytest.raises(ConfigError, match="unknown group_by"):
        list_items(str(root), group_by="person")


def test_config_options_validate_and_stay_out_of_the_hash() -> None:
    base = PipelineConfig(preset="smoke")
    grouped = PipelineConfig(preset="smoke", group_by="folder")
    assert grouped.config_hash == base.config_hash == PipelineConfig(preset="smoke", group_map="m.csv").config_hash
    assert grouped.to_json()["group_by"] == "folder" and "group_by" not in base.to_json()
    for kw, words in (({"group_by": "people"}, "unknown group_by"),
                      ({"group_by": "folder", "group_map": "m.csv"}, "not both"),
                      ({"group_map": "m.txt"}, "csv or .parquet")):
        with pytest.raises(ConfigError, match=words):
            PipelineConfig(**kw)  # type: ignore[arg-type]
    assert "empty_group" in FINAL_ERROR_CODES  # a rerun settles a group none of whose photos is usable


def test_group_rows_round_trip_and_old_parts_read_as_single_photos(tmp_path: Path) -> None:
    from tests.fixtures.make_store_v1 import FIX

    a, b = item_id_from_bytes(b"a"), item_id_from_bytes(b"b")
    gid = group_id([a, b])
    store = RunStore(str(tmp_path / "s"))
    started = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with store.index_writer("r", "s0") as index:
        with store.item_writer(gid, 0) as w:
            w.write_metrics({"psnr": 20.0})
        row = IndexRow(id=gid, status=Status.DONE, config_hash="h", group_name="ann", members=sorted([a, b]),
                       members_used=(a,), started_at=started)
        index.add_done(w.committed, row)
        index.add(IndexRow(id=b, status=Status.FAILED, config_hash="h", error_class="decode_error", group_name="ann"))
    got = {r.id: r for r in store.latest_rows()}
    assert got[gid].members == tuple(sorted((a, b))) and got[gid].members_used == (a,) and got[gid].members_dropped == (b,)
    assert got[gid].group_name == "ann" and got[b].members is None and got[b].members_dropped == ()
    back = IndexRow.from_manifest(gid, "items/x", {"attempt": 0, "files": {}, "meta": {"row": row.manifest_meta()}})
    assert (back.members, back.members_used, back.group_name) == (tuple(sorted((a, b))), (a,), "ann")
    old = RunStore(str(FIX / "store")).latest_rows()  # parts written before the columns existed
    assert old and all(r.members is None and r.group_name is None for r in old)


def test_make_group_dedupes_members() -> None:
    from sym3dinv.pipeline.inputs import InputItem

    one = InputItem(id=item_id_from_bytes(b"1"), uri="/a/1.png", size=3)
    two = InputItem(id=item_id_from_bytes(b"2"), uri="/a/2.png", size=5)
    g = make_group("a", "/a", [two, one, one])
    assert g.members == tuple(sorted((one, two), key=lambda m: m.id)) and g.size == 8 and g.is_group
