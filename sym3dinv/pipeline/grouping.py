"""Several photos of one person as one item: which photos form a group, and the group's id (listing side; no
torch, the flow groups before any model loads). The inversion of a group is ``sym3dinv.pipeline.groups``.

A group comes from the input's folders (``group_by="folder"``: the photos of one folder, named by the
folder's path relative to the input root) or from a mapping file (``group_map``: a CSV or Parquet file
with a ``path`` and a ``group`` column). Its id hashes the sorted content ids of its members in a
namespace of its own, so the order of the photos does not matter, a group never shares an id with a
photo, and a group with a photo added (or replaced) is another item: the old one stays as it was.

Policies (docs/orchestration.md "Several photos of one person"):

- a photo in no group (directly in the input root; not named in the mapping file) is its own item, as
  without grouping;
- a mapping-file path is relative to the input root, or absolute (a path or a URL of the same
  filesystem); a path that is not an image of the input is a :class:`ConfigError` naming it, before any
  work (a typo must not quietly shrink a group); a photo may be named in several groups;
- the same bytes twice in one group are one member (content ids, as everywhere in the store).
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import fsspec

from sym3dinv.config.pipeline import GROUP_MAP_SUFFIXES, GroupBy
from sym3dinv.errors import ConfigError
from sym3dinv.pipeline.inputs import InputItem, Listing, list_inputs, scan_inputs
from sym3dinv.store.ids import item_id_from_bytes

log = logging.getLogger(__name__)

GROUP_BY_CHOICES: tuple[str, ...] = typing.get_args(GroupBy)
MAP_PATH_COLUMN = "path"
"""Mapping-file column of the photo: relative to the input root, or absolute."""
MAP_GROUP_COLUMN = "group"
"""Mapping-file column of the group's name (any non-empty text)."""
_MAX_NAMED = 5
"""Unknown paths a mapping-file error names (then a count)."""


def group_id(member_ids: Iterable[str]) -> str:
    """The id of the group of ``member_ids``: independent of their order and repeats, never a photo's id."""
    ids = sorted(set(member_ids))
    if not ids:
        raise ValueError("a group needs at least one member")
    return item_id_from_bytes(b"sym3dinv-group\0" + "\n".join(ids).encode("ascii"))


def make_group(name: str, uri: str, members: Iterable[InputItem]) -> InputItem:
    """The item of group ``name`` (``uri``: where it came from): members deduplicated by id, sorted by id."""
    unique = {m.id: m for m in members}
    ordered = tuple(unique[i] for i in sorted(unique))
    return InputItem(id=group_id(unique), uri=uri, size=sum(m.size for m in ordered), members=ordered, group=name)


def list_items(source: str, storage_options: Mapping[str, Any] | None = None, group_by: str = "none",
               group_map: str = "") -> list[InputItem]:
    """The items of a run: :func:`~sym3dinv.pipeline.inputs.list_inputs` without grouping, else the groups
    (by folder, or by ``group_map``) followed by the photos that are in no group, each as its own item."""
    if group_by not in GROUP_BY_CHOICES:
        raise ConfigError(f"unknown group_by {group_by!r}; use one of {', '.join(GROUP_BY_CHOICES)}")
    if group_map and group_by != "none":
        raise ConfigError("give either --group-by folder or --group-map FILE, not both")
    if group_by == "none" and not group_map:
        return list_inputs(source, storage_options)
    listing = scan_inputs(source, storage_options)
    return _items(listing, _by_map(listing, group_map, storage_options) if group_map else _by_folder(listing))


def _by_folder(listing: Listing) -> dict[str, list[tuple[str, str]]]:
    """Filesystem path -> [(group name, group uri)]: each photo's parent folder relative to the root."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path, item in listing.files:
        rel = posixpath.relpath(posixpath.dirname(path), listing.root)
        if rel != "." and not rel.startswith(".."):
            out[path] = [(rel, posixpath.dirname(item.uri))]
    return out


def _by_map(listing: Listing, group_map: str, storage_options: Mapping[str, Any] | None
            ) -> dict[str, list[tuple[str, str]]]:
    """Filesystem path -> [(group name, group uri)] from the mapping file (errors: see the module doc)."""
    rows = read_group_map(group_map, storage_options)
    where = _full_uri(group_map, storage_options)
    known = {path for path, _ in listing.files}
    out: dict[str, list[tuple[str, str]]] = {}
    unknown: list[str] = []
    for raw, name in rows:
        path = _resolve(raw, listing.root)
        if path not in known:
            unknown.append(raw)
            continue
        entry = (name, f"{where}#{name}")
        if entry not in out.setdefault(path, []):
            out[path].append(entry)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:_MAX_NAMED]) + (
            f" and {len(unknown) - _MAX_NAMED} more" if len(unknown) > _MAX_NAMED else "")
        raise ConfigError(f"group map {group_map}: {len(unknown)} path(s) are not images of {listing.source}: {shown} "
                          f"(a path is relative to {listing.root} or absolute)")
    return out


def _full_uri(url: str, storage_options: Mapping[str, Any] | None) -> str:
    """``url`` as an absolute path (local files) or a full URL: a group's ``source_uri`` names its map file."""
    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if proto in ("file", "local") else f"{proto}://{path}"


def _resolve(raw: str, root: str) -> str:
    """A mapping-file path as a filesystem path of the listing: URLs lose their protocol, relative paths
    start at ``root``."""
    if "://" in raw:
        return posixpath.normpath(fsspec.core.strip_protocol(raw))
    if raw.startswith("/"):
        return posixpath.normpath(raw)
    return posixpath.normpath(posixpath.join(root, raw))


def _items(listing: Listing, assigned: Mapping[str, Sequence[tuple[str, str]]]) -> list[InputItem]:
    """Groups (sorted by name), then the photos in no group (deduplicated by content, as ``list_inputs``)."""
    members: dict[tuple[str, str], list[InputItem]] = {}
    singles: dict[str, InputItem] = {}
    for path, item in listing.files:
        for key in assigned.get(path, ()):
            members.setdefault(key, []).append(item)
        if path not in assigned:
            singles.setdefault(item.id, item)
    groups: dict[str, InputItem] = {}
    for (name, uri), items in sorted(members.items()):
        group = make_group(name, uri, items)
        if group.id in groups:  # the same photos under two group names are one item, as one photo under two names
            log.info("group %r has the same photos as group %r: one item", name, groups[group.id].group)
            continue
        groups[group.id] = group
    log.info("listed %d inputs of %s: %d groups of %d photos, %d photos in no group (their own items)",
             len(listing.files), listing.source, len(groups), len({i.id for g in groups.values() for i in g.members}),
             len(singles))
    return [*groups.values(), *singles.values()]


def read_group_map(group_map: str, storage_options: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """The (path, group) rows of a CSV or Parquet mapping file; a :class:`ConfigError` saying what is wrong
    with a file that cannot be read, has no ``path``/``group`` column, an empty cell or no rows."""
    if not group_map.lower().endswith(GROUP_MAP_SUFFIXES):
        raise ConfigError(f"group map {group_map}: use a .csv or .parquet file (columns "
                          f"{MAP_PATH_COLUMN!r}, {MAP_GROUP_COLUMN!r})")
    try:
        with fsspec.open(group_map, "rb", **dict(storage_options or {})) as f:
            data = f.read()
        columns, records = _parse(group_map, data)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing file, bad encoding, broken Parquet: one clear line
        raise ConfigError(f"group map {group_map}: cannot read it ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in (MAP_PATH_COLUMN, MAP_GROUP_COLUMN) if c not in columns]
    if missing:
        raise ConfigError(f"group map {group_map}: needs the columns {MAP_PATH_COLUMN!r} and {MAP_GROUP_COLUMN!r}; "
                          f"it has {list(columns)}")
    rows = []
    for n, rec in enumerate(records, start=1):
        path, name = (str(rec.get(c) or "").strip() for c in (MAP_PATH_COLUMN, MAP_GROUP_COLUMN))
        if not path or not name:
            raise ConfigError(f"group map {group_map}: data row {n} has an empty {MAP_PATH_COLUMN!r} or "
                              f"{MAP_GROUP_COLUMN!r}")
        rows.append((path, name))
    if not rows:
        raise ConfigError(f"group map {group_map}: no rows")
    return rows


def _parse(group_map: str, data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, records) of a mapping file's bytes."""
    if group_map.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        return [c.strip() for c in reader.fieldnames or []], [
            {(k or "").strip(): v for k, v in rec.items()} for rec in reader]
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    return list(table.column_names), table.to_pylist()
