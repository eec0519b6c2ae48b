"""The report's latent-edit section: before/after strips of the edit folders ``sym3dinv edit apply`` writes
(``<store>/edits/<name>/edit.json``, format :data:`sym3dinv.store.layout.EDIT_FORMAT`)."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sym3dinv.report.format import e, figure, name, num
from sym3dinv.store.layout import EDIT_FORMAT, EDIT_MANIFEST, EDITS_DIR
from sym3dinv.store.root import StoreRoot

if TYPE_CHECKING:
    from sym3dinv.store import RunStore

Image = Callable[[StoreRoot, str], "str | None"]
"""(root, root-relative path) -> the page's URL of a thumbnail of that image, or None."""


@dataclass(frozen=True)
class EditFolder:
    """An edit folder: a root and the folder's path in it (``edits/x`` in the store, or '' for a URL)."""

    ref: str
    root: StoreRoot
    folder: str

    def rel(self, path: str) -> str:
        return posixpath.join(self.folder, path) if self.folder else path


def open_edit(store: RunStore, ref: str, storage_options: Mapping[str, Any] | None) -> EditFolder:
    """The folder of ``ref``: store-relative (``edits/x``) or a local path / URL of its own."""
    if "://" in ref or ref.startswith("/"):
        return EditFolder(ref, StoreRoot(ref, storage_options, kind="edit folder"), "")
    store.abspath(ref)  # refuses a path that escapes the store
    return EditFolder(ref, store, ref)


def find_edits(store: StoreRoot) -> list[str]:
    """Store-relative folders under ``edits/`` that hold an edit manifest."""
    return [posixpath.dirname(p) for p in store.glob(f"{EDITS_DIR}/*/{EDIT_MANIFEST}")]


def _renders(item: Mapping[str, Any]) -> dict[tuple[str, str], dict[float, str]]:
    """(direction, view) -> strength -> folder-relative path of an item's renders (hostile paths dropped)."""
    out: dict[tuple[str, str], dict[float, str]] = {}
    for rr in item.get("renders") or []:
        s = num(rr.get("strength"))
        rel = str(rr.get("path") or "")
        if s is None or not rel or rel.startswith("/") or ".." in rel.split("/"):
            continue
        out.setdefault((str(rr.get("direction")), str(rr.get("view"))), {})[s] = rel
    return out


def _direction_block(ed: EditFolder, image: Image, dname: str, views: Sequence[tuple[str, float, float]],
                     renders: dict[tuple[str, str], dict[float, str]]) -> str:
    strengths = sorted({s for (dn, _), m in renders.items() if dn == dname for s in m})
    strips = []
    for vname, vyaw, vpitch in views if strengths else ():
        m = renders.get((dname, vname), {})
        if not m:
            continue
        figs = [figure(image(ed.root, ed.rel(m[s])) if s in m else None,
                       "original" if s == 0 else f"strength {s:+g}", key=(s == 0)) for s in strengths]
        strips.append(f'<div class="strip"><div class="rowlabel">yaw {vyaw:+.2f}<br>pitch {vpitch:+.2f}'
                      f'</div>{"".join(figs)}</div>')
    if not strips:
        return ""
    return f'<div class="edit-dir"><div class="dname">{e(dname)}</div><div class="views">{"".join(strips)}</div></div>'


def edit_section(ed: EditFolder, image: Image, warnings: list[str], ids: set[str], names: Mapping[str, str]) -> str:
    """The HTML of one edit folder (only items in ``ids`` when given); a bad manifest is a warning."""
    try:
        man = json.loads(ed.root.cat(ed.rel(EDIT_MANIFEST)))
        if man.get("format") != EDIT_FORMAT:
            raise ValueError(f"format {man.get('format')!r}")
    except (ValueError, AttributeError, OSError) as exc:
        warnings.append(f"edit folder {ed.ref}: unreadable manifest ({exc})")
        return ""
    views = [(str(v.get("name")), num(v.get("yaw")) or 0.0, num(v.get("pitch")) or 0.0) for v in man.get("views") or []]
    directions = man.get("directions") or []
    blocks = []
    for item in man.get("items") or []:
        iid = str(item.get("id"))
        if ids and iid not in ids:
            continue
        renders = _renders(item)
        blocks_d = [_direction_block(ed, image, str(d.get("name")), views, renders) for d in directions]
        if any(blocks_d):
            title = names.get(iid) or name(item.get("source_uri"), iid)
            blocks.append(f'<div class="item"><div class="meta"><div class="name">{e(title)}</div>'
                          f'<div class="mono">{e(iid)}</div></div><div>{"".join(blocks_d)}</div></div>')
    desc = ", ".join(f"{e(d.get('name'))} ({e(d.get('source', ''))})" for d in directions)
    head = (f'<div class="panel"><h3>edit <code>{e(man.get("name") or ed.ref)}</code></h3><p class="note">'
            f"directions: {desc or '–'}; strengths are multiples of each direction (0 = the unedited pivot); "
            f"generator {e(man.get('generator', '?'))}</p></div>")
    return head + ("".join(blocks) or '<p class="empty">no items of this selection in the edit</p>')
