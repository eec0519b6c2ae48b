"""Inputs of the bulk job: list a folder, glob, single file, fsspec URL or EG3D ``dataset.json`` as
content-addressed :class:`InputItem` s (with known cameras where a ``dataset.json`` gives them), and cut
them into shards. No torch here; the flow lists inputs before any model loads.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec

from sym3dinv.errors import ConfigError
from sym3dinv.store.ids import item_id_from_bytes, item_id_from_stream

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class InputItem:
    """One input image: content-hash id, where it is, size, and (for dataset.json inputs) its camera.

    Or a group: several photos of one person inverted into one head (``sym3dinv.pipeline.grouping``), one
    store item whose ``members`` are the photos' own items (sorted by id; its id hashes their ids)."""

    id: str
    uri: str
    size: int
    camera: tuple[float, ...] | None = None
    members: tuple[InputItem, ...] = ()
    """A group's photos (empty for a single photo)."""
    group: str | None = None
    """A group's name (its folder relative to the input root, or its value in the mapping file)."""

    @property
    def is_group(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True)
class Listing:
    """Every image file of an input source, duplicates included (:func:`scan_inputs`); what grouping reads."""

    source: str
    root: str
    """The folder (filesystem path, no protocol) that relative paths start from: the folder itself, the
    ``dataset.json``'s or a single file's folder, or a glob's fixed leading folders."""
    files: tuple[tuple[str, InputItem], ...]
    """(filesystem path, item) of each image file, sorted by path; the same bytes under two names twice."""
    unreadable: int = 0
    """Files that could not be read while listing (their items have :func:`unreadable_id` ids)."""


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def _read_dataset_json(fs: fsspec.AbstractFileSystem, path: str, proto: str) -> dict[str, tuple[float, ...]]:
    """EG3D's ``dataset.json`` (``{"labels": [[relpath, [floats]], ...]}``) -> abs path -> label values, in
    ``PipelineConfig.align.camera_format``'s convention (25 floats for EG3D's): each is checked and
    converted by the item's processor, so one bad label fails that item only."""
    data = json.loads(fs.cat_file(path))
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise ConfigError(f"{path}: not an EG3D dataset.json (no 'labels' list)")
    root = posixpath.dirname(path)
    out: dict[str, tuple[float, ...]] = {}
    for rel, lab in labels:
        try:
            out[posixpath.join(root, rel)] = tuple(float(v) for v in lab)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: label of {rel} is not a list of numbers ({exc})") from exc
    return out


def list_inputs(source: str, storage_options: Mapping[str, Any] | None = None) -> list[InputItem]:
    """Inputs of a folder, glob, single file, fsspec URL or EG3D ``dataset.json``, deduplicated by content.

    Ids are content hashes (the store's id function), so the same photo under two names is one item.
    A folder's ``dataset.json`` (if any) supplies known cameras. An empty or unreadable source is a
    :class:`ConfigError` (fail fast).
    """
    listing = scan_inputs(source, storage_options)
    items: dict[str, InputItem] = {}
    for _, item in listing.files:
        items.setdefault(item.id, item)
    log.info("listed %d inputs (%d unique, %d unreadable) from %s", len(listing.files), len(items),
             listing.unreadable, source)
    return list(items.values())


def _root(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The folder relative paths of ``path``'s images start from (see :attr:`Listing.root`)."""
    if _is_glob(path):
        parts = path.split("/")
        fixed = next(i for i, part in enumerate(parts) if _is_glob(part))
        return "/".join(parts[:fixed]) or "/"
    if path.endswith(".json") or not fs.isdir(path):
        return posixpath.dirname(path)
    return path.rstrip("/") or "/"


def scan_inputs(source: str, storage_options: Mapping[str, Any] | None = None) -> Listing:
    """Every image file of ``source`` with its content id (streamed), duplicates kept: :func:`list_inputs`
    deduplicates them, grouping assigns each file to its group first. Errors as :func:`list_inputs`."""
    try:
        fs, path = fsspec.core.url_to_fs(source, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot open input {source!r}: {exc}") from exc
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    cameras: dict[str, tuple[float, ...]] = {}
    if path.endswith(".json"):
        cameras = _read_dataset_json(fs, path, proto)
        paths = sorted(cameras)
    elif _is_glob(path):
        paths = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = fs.find(path)
        if f"{path.rstrip('/')}/dataset.json" in found:
            cameras = _read_dataset_json(fs, f"{path.rstrip('/')}/dataset.json", proto)
        paths = sorted(p for p in found if p.lower().endswith(IMAGE_EXTENSIONS))
    elif fs.isfile(path):
        paths = [path]
    else:
        raise ConfigError(f"input {source!r} does not exist")
    if not paths:
        raise ConfigError(f"input {source!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    files: list[tuple[str, InputItem]] = []
    unreadable = 0
    for p in paths:
        uri = p if proto in ("file", "local") else f"{proto}://{p}"
        try:
            with fs.open(p, "rb") as f:  # streamed in 1 MiB chunks: a huge file never sits in memory
                iid, size = item_id_from_stream(f)
        except (OSError, ValueError) as exc:
            # one unreadable file (permissions, broken symlink, vanished) must not stop the listing of
            # a whole bucket: it gets an id from its URI and becomes an ``unreadable`` row later
            log.warning("cannot read input %s while listing: %s: %s", uri, type(exc).__name__, exc)
            iid, size, unreadable = unreadable_id(uri), 0, unreadable + 1
        files.append((p, InputItem(id=iid, uri=uri, size=size, camera=cameras.get(p))))
    return Listing(source, _root(fs, path), tuple(files), unreadable)


def unreadable_id(uri: str) -> str:
    """Id of an input whose bytes cannot be read: a hash of its URI in a separate namespace, so the
    file still gets a row (``unreadable``) and a later readable copy gets its normal content id."""
    return item_id_from_bytes(b"sym3dinv-unreadable-input\0" + uri.encode("utf-8", "surrogateescape"))


def shards(items: Sequence[InputItem], shard_size: int) -> list[list[InputItem]]:
    """Consecutive runs of ``shard_size`` items (the last may be shorter): one flow task and index part each."""
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    return [list(items[i:i + shard_size]) for i in range(0, len(items), shard_size)]
