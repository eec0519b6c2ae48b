"""Writing one item's outputs with an atomic commit that also holds on object stores.

Each attempt writes into its own folder ``items/<id>/a<attempt>-<token>/`` (so two attempts never
touch the same object) and writes ``_MANIFEST.json`` last, listing every file with its size. S3 has no
rename (it is copy + delete), so the manifest, not a rename, is the commit: a folder without a readable
manifest is an unfinished attempt and never counts as done.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Float, UInt8

from sym3dinv.eg3d_constants import RAY_END, RAY_START
from sym3dinv.errors import StoreError
from sym3dinv.store.ids import safe_relpath, validate_item_id, validate_name
from sym3dinv.store.layout import (
    DEPTH_PREFIX,
    INPUT_KEY,
    ITEMS_DIR,
    MANIFEST,
    RENDER_PREFIX,
    input_outputs,
    member_view,
)
from sym3dinv.store.schema import new_token, utcnow

if TYPE_CHECKING:
    from sym3dinv.store.root import StoreRoot

log = logging.getLogger(__name__)
__all__ = ["CommittedItem", "ItemWriter", "input_outputs"]  # input_outputs: from store.layout


@dataclass(frozen=True)
class CommittedItem:
    """What :meth:`ItemWriter.commit` returns: the folder and files that a ``done`` row points at."""

    item_id: str
    attempt: int
    item_dir: str
    """Relative to the store root."""
    outputs: Mapping[str, str]
    """Logical name (``latents``, ``render/yaw+30``, ...) -> path relative to the store root."""


@dataclass
class ItemWriter:
    """Collects one attempt's files; use as ``with store.item_writer(id, attempt) as w:``.

    Leaving the block normally commits (writes the manifest); an exception leaves the folder
    uncommitted, which readers ignore.
    """

    store: StoreRoot
    item_id: str
    attempt: int
    meta: Mapping[str, Any] = field(default_factory=dict)
    """JSON-able facts stored in the manifest (the pipeline puts its config hash and index-row fields
    here, so a committed attempt can be adopted by a later or concurrent run without redoing it)."""
    item_dir: str = field(init=False, default="")
    _files: dict[str, tuple[str, int]] = field(init=False, default_factory=dict)
    _committed: CommittedItem | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        validate_item_id(self.item_id)
        if self.attempt < 0:
            raise StoreError(f"attempt must be >= 0, got {self.attempt}")
        self.item_dir = safe_relpath(ITEMS_DIR, self.item_id, f"a{self.attempt}-{new_token()}")

    # --- writers -------------------------------------------------------------------------------
    def write_bytes(self, key: str, filename: str, data: bytes) -> str:
        """Write one file of this item; ``key`` names it in the manifest/outputs. Returns its rel path."""
        if self._committed is not None:
            raise StoreError(f"item {self.item_id} attempt {self.attempt} is already committed")
        rel = safe_relpath(self.item_dir, validate_name(filename))
        self.store.write(rel, data)
        self._files[key] = (rel, len(data))
        return rel

    def write_latents(
        self, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
    ) -> str:
        """Latents (e.g. ``{"ws": [14, 512]}``) as ``latents.safetensors``."""
        from safetensors.numpy import save

        arrays = {validate_name(k): np.ascontiguousarray(v) for k, v in tensors.items()}
        return self.write_bytes("latents", "latents.safetensors", save(arrays, metadata=dict(metadata or {})))

    def write_delta(self, tensors: Mapping[str, np.ndarray]) -> str:
        """Tuned-generator weight delta, stored as fp16 (half the bytes; deltas are small)."""
        from safetensors.numpy import save

        arrays = {validate_name(k): np.ascontiguousarray(v, dtype=np.float16) for k, v in tensors.items()}
        return self.write_bytes("delta", "delta.safetensors", save(arrays))

    def write_render(self, name: str, image: UInt8[np.ndarray, "h w c"]) -> str:
        """An 8-bit RGB(A) or grey render as ``render-<name>.png`` (``render-input.png``: the render at the
        input camera)."""
        return self.write_bytes(f"{RENDER_PREFIX}{validate_name(name)}", f"render-{name}.png", _png(name, image))

    def write_input(self, image: UInt8[np.ndarray, "h w c"], member: int | None = None) -> str:
        """The input as the inversion saw it (aligned, at the generator's resolution) as ``input.png``; with
        ``member``, a group member's as ``input-<k>.png`` (key ``input-<k>``, ``store.layout.member_view``)."""
        key = INPUT_KEY if member is None else member_view(member)
        return self.write_bytes(key, f"{key}.png", _png(key, image))

    def write_depth(
        self,
        name: str,
        depth: Float[np.ndarray, "h w"],
        *,
        fmt: str = "npy",
        depth_range: tuple[float, float] = (RAY_START, RAY_END),
    ) -> str:
        """Depth map: ``npy`` (float32, exact) or ``png16`` (16-bit, linear over ``depth_range``)."""
        arr = np.asarray(depth, dtype=np.float32)
        if arr.ndim != 2:
            raise StoreError(f"depth {name!r}: expected [H, W], got shape {arr.shape}")
        if fmt == "npy":
            buf = io.BytesIO()
            np.save(buf, arr)
            return self.write_bytes(f"{DEPTH_PREFIX}{validate_name(name)}", f"depth-{name}.npy", buf.getvalue())
        if fmt == "png16":
            from PIL import Image

            lo, hi = depth_range
            q = np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 65535.0
            buf = io.BytesIO()
            Image.fromarray(np.round(q).astype(np.uint16)).save(buf, format="PNG")
            return self.write_bytes(f"{DEPTH_PREFIX}{validate_name(name)}", f"depth-{name}.png", buf.getvalue())
        raise StoreError(f"unknown depth format {fmt!r}; use 'npy' or 'png16'")

    def write_metrics(self, metrics: Mapping[str, Any]) -> str:
        """Metrics JSON (any JSON-able values; the index row carries the float ones)."""
        data = json.dumps(dict(metrics), sort_keys=True, default=float).encode()
        return self.write_bytes("metrics", "metrics.json", data)

    # --- commit --------------------------------------------------------------------------------
    def commit(self) -> CommittedItem:
        """Write the manifest last; from this moment the attempt's files are complete."""
        if self._committed is not None:
            return self._committed
        manifest = {
            "item_id": self.item_id,
            "attempt": self.attempt,
            "committed_at": utcnow().isoformat(),
            "files": {k: {"path": p, "bytes": n} for k, (p, n) in sorted(self._files.items())},
            "meta": dict(self.meta),
        }
        self.store.atomic_write(
            safe_relpath(self.item_dir, MANIFEST), json.dumps(manifest, sort_keys=True).encode()
        )
        self._committed = CommittedItem(
            self.item_id, self.attempt, self.item_dir, {k: p for k, (p, _) in sorted(self._files.items())}
        )
        return self._committed

    @property
    def committed(self) -> CommittedItem | None:
        return self._committed

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            log.info("item %s attempt %d not committed (%s)", self.item_id, self.attempt, exc_type)


def read_manifest(store: StoreRoot, item_dir: str) -> dict[str, Any] | None:
    """The manifest of a committed attempt, or None when missing/unreadable (= not committed)."""
    try:
        manifest = json.loads(store.cat(safe_relpath(item_dir, MANIFEST)))
    except (FileNotFoundError, ValueError, OSError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def committed_attempts(store: StoreRoot, item_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(item_dir, manifest) of every committed attempt of ``item_id``, oldest commit first.

    One listing plus one read per attempt folder; folders without a readable manifest are skipped.
    """
    base = safe_relpath(ITEMS_DIR, validate_item_id(item_id))
    found = []
    for name in store.ls(base):
        rel = safe_relpath(base, name.rstrip("/").rsplit("/", 1)[-1])
        manifest = read_manifest(store, rel)
        if manifest is not None:
            found.append((rel, manifest))
    return sorted(found, key=lambda x: str(x[1].get("committed_at", "")))


def _png(name: str, image: UInt8[np.ndarray, "h w c"]) -> bytes:
    """PNG bytes of an 8-bit RGB(A) or grey image (``name`` for the error message)."""
    from PIL import Image

    arr = np.asarray(image)
    if (
        arr.dtype != np.uint8
        or arr.ndim not in (2, 3)
        or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4))
    ):
        raise StoreError(
            f"render {name!r}: expected uint8 [H, W] or [H, W, 1|3|4], got {arr.dtype} {arr.shape}"
        )
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()
