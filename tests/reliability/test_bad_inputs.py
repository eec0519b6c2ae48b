"""A generated messy bucket through the decoder, the lister and the real per-item pipeline: every file
is accounted for with one row of the right class, nothing crashes the job, nothing escapes the store."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

from sym3dinv.align.decode import load_image
from sym3dinv.errors import Sym3dInvError
from sym3dinv.pipeline import ItemProcessor, list_inputs
from sym3dinv.store import RunStore
from tests.plugin import tiny_pipeline

from .corpus import make_corpus


def _decode_outcome(path: Path) -> str:
    try:
        rgb = load_image(path)
    except Sym3dInvError as exc:
        return exc.code
    assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3
    return "ok"


def test_decoder_on_generated_corpus(tmp_path: Path, figures: dict[str, object]) -> None:
    expect = make_corpus(tmp_path / "in")
    got = {name: _decode_outcome(tmp_path / "in" / name) for name in expect}
    assert got == {name: e.decode for name, e in expect.items()}
    rotated = load_image(tmp_path / "in" / "exif-rotated.jpg")
    assert rotated.shape == (300, 260, 3)  # stored 260x300 sideways; EXIF orientation applied
    assert load_image(tmp_path / "in" / "grey16.png").max() > 200  # 16-bit scaled, not clipped to 255/65535
    figures.update(files=len(expect), outcomes=dict(collections.Counter(got.values())))


def test_corpus_through_the_pipeline_accounts_for_every_file(tmp_path: Path, tiny_checkpoint: str,
                                                             figures: dict[str, object]) -> None:
    expect = make_corpus(tmp_path / "in")
    items = list_inputs(str(tmp_path / "in"))  # broken links and loops do not stop the listing
    listed = {Path(i.uri).name for i in items}
    should_list = {n for n, e in expect.items() if e.listed} - {"link-to-face.png"}  # same bytes as face.png
    assert listed == should_list
    store = RunStore(str(tmp_path / "store"))
    config = tiny_pipeline(tiny_checkpoint)
    proc = ItemProcessor(config)
    with store.index_writer("corpus", "s0") as iw:
        for it in items:
            iw.add(proc.process(it, store))
    rows = {Path(r["source_uri"]).name: r for r in store.latest().to_pylist()}
    assert set(rows) == listed and store.read_index().num_rows == len(items)  # one row per file, no more
    for name, r in rows.items():
        e = expect[name]
        outcome = "done" if r["status"] == "done" else r["error_class"]
        allowed = e.row if e.row is not None else {e.decode}
        assert outcome in allowed, (name, outcome, r["error_message"])
        if outcome == "done":
            for rel in dict(r["outputs"]).values():  # every output lies inside the store root
                p = (tmp_path / "store" / rel).resolve()
                assert p.is_file() and p.is_relative_to((tmp_path / "store").resolve())
    # nothing written anywhere but the store's two folders
    assert {p.name for p in (tmp_path / "store").iterdir()} <= {"items", "index"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "store"]
    counts = collections.Counter("done" if r["status"] == "done" else r["error_class"] for r in rows.values())
    assert counts["done"] >= 10 and counts["decode_error"] == 8 and counts["unreadable"] == 3
    assert counts["too_small"] == 1 and counts["too_large"] == 2 and counts["no_face"] >= 1
    assert counts["done"] + counts["no_face"] == 17  # the 17 photos: each done or refused by alignment
    figures.update(files_on_disk=len(expect), listed=len(items), rows=len(rows), outcomes=dict(counts))


def _list_and_decode(folder: str) -> list[str]:
    lines = []
    for it in list_inputs(folder):
        try:
            load_image(it.uri)
            lines.append(f"{Path(it.uri).name} ok")
        except Sym3dInvError as exc:
            lines.append(f"{Path(it.uri).name} {exc.code}")
    return sorted(lines)


def test_unreadable_permissions_as_unprivileged_user(as_nobody: tuple[Path, Callable[..., list[str]]]) -> None:
    """The listing and decoding of a folder with a chmod 000 file, run by uid 65534 in a forked child."""
    from PIL import Image

    base, run = as_nobody
    folder = base / "in"
    folder.mkdir()
    folder.chmod(0o755)
    for name in ("readable.png", "secret.png"):
        Image.new("RGB", (64, 64), (len(name), 0, 0)).save(folder / name)
    (folder / "secret.png").chmod(0o000)
    assert run(_list_and_decode, str(folder)) == ["readable.png ok", "secret.png unreadable"]
