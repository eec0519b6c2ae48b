"""Item ids: content hashes of the input bytes, and path checks so nothing escapes the store root.

An id is the first 32 hex digits (128 bits) of the SHA-256 of the file's bytes. Birthday bound: the
chance that any two of n distinct inputs share an id is about n^2 / 2^129, i.e. ~1.5e-25 for 10 million
images and ~1.5e-17 for 10 billion, far below the rate of undetected disk errors. The same bytes
under two names are one item by construction.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import BinaryIO

from sym3dinv.errors import StoreError

ID_HEX_DIGITS = 32
"""128-bit prefix of SHA-256: short enough for paths and joins, collision-free in practice (see above)."""
CHUNK_BYTES = 1 << 20
"""Hash inputs in 1 MiB chunks so large files never sit whole in memory."""

_ID_RE = re.compile(rf"^[0-9a-f]{{{ID_HEX_DIGITS}}}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def item_id_from_bytes(data: bytes) -> str:
    """Id of an input given its bytes."""
    return hashlib.sha256(data).hexdigest()[:ID_HEX_DIGITS]


def item_id_from_stream(stream: BinaryIO) -> tuple[str, int]:
    """(id, size in bytes) of a readable binary stream, hashed in chunks (works on fsspec files)."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_BYTES):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest()[:ID_HEX_DIGITS], size


def item_id_from_uri(uri: str, storage_options: dict[str, object] | None = None) -> tuple[str, int]:
    """(id, size) of the file at a local path or fsspec URL, streamed."""
    import fsspec

    with fsspec.open(uri, "rb", **(storage_options or {})) as f:
        return item_id_from_stream(f)


def validate_item_id(item_id: str) -> str:
    """Return ``item_id`` if it is exactly 32 lowercase hex digits, else raise StoreError."""
    if not isinstance(item_id, str) or not _ID_RE.match(item_id):
        raise StoreError(f"invalid item id {item_id!r}: expected {ID_HEX_DIGITS} lowercase hex digits")
    return item_id


def validate_name(name: str) -> str:
    """A user-given file/part name component: letters, digits, ``._+-``, no separators, no ``..``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StoreError(
            f"invalid name {name!r}: use 1-128 letters, digits, '.', '_', '+', '-' (no '/', no '..')"
        )
    return name


def safe_relpath(*parts: str) -> str:
    """Join relative parts and refuse anything that would leave the store root."""
    rel = posixpath.normpath(posixpath.join(*parts))
    if rel.startswith(("/", "..")) or rel == "." or "\\" in rel:
        raise StoreError(f"path {rel!r} escapes the store root")
    return rel
