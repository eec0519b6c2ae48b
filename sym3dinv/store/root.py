"""The store's root layer: one URL over fsspec, with the file operations every writer of the project shares.

A :class:`StoreRoot` opens a root URL (``/path``, ``file://``, ``s3://bucket/prefix``, ``memory://``) and
offers paths relative to it that cannot escape it, whole-file and atomic writes, reads and listings, all
under one retry policy (:func:`sym3dinv.store.retry.with_retries`: transient object-store errors are
retried with backoff, permanent ones fail at once). The run store (:class:`~sym3dinv.store.RunStore`),
the dataset writer and the HTML report's output are all roots; index parts and item folders
(``store/index.py``, ``store/items.py``) write through one, so none of them needs the run store itself.

Atomic means "complete or absent": on local disk a temp file in the same folder and a rename (the temp file
is removed when the write fails, e.g. on a full disk); on object stores a single PUT, which is atomic there.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import fsspec

from sym3dinv.config.store import RetryPolicy
from sym3dinv.errors import ConfigError, StoreWriteError
from sym3dinv.store.ids import safe_relpath
from sym3dinv.store.retry import with_retries
from sym3dinv.store.schema import new_token

T = TypeVar("T")
_SECRET_HINTS = ("secret", "token", "password", "key", "credential", "session")


def storage_options(endpoint_url: str | None = None) -> dict[str, Any]:
    """fsspec options for an S3-compatible endpoint (MinIO, moto, R2); empty for AWS or local roots.

    The one place that turns the command line's ``--endpoint-url`` (:class:`~sym3dinv.config.StoreConfig`)
    into s3fs options; credentials come from the environment (AWS_* variables, profiles, roles)."""
    return {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url else {}


def mask_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options with anything credential-like replaced by ``'***'`` (recursively): for logs, reprs and
    parameters that end up in a database (Prefect flow-run parameters)."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, Mapping):
            out[k] = mask_secrets(v)
        elif any(h in k.lower() for h in _SECRET_HINTS):
            out[k] = "***"
        else:
            out[k] = v
    return out


class StoreRoot:
    """A root URL over fsspec; every path given to its methods is relative to the root (``safe_relpath``).

    ``kind`` names the root in error messages (``run store``, ``dataset output``, ``report output``).
    ``retries`` counts the retries this instance made (tests and reports read it)."""

    kind = "store"

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None,
                 retry: RetryPolicy | None = None, *, kind: str | None = None) -> None:
        if kind is not None:
            self.kind = kind
        if not url:
            raise ConfigError(f"{self.kind} URL is empty")
        self.url = url.rstrip("/") or "/"
        self._options = dict(storage_options or {})
        self.retry = retry or RetryPolicy()
        self.retries = 0
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **self._options)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"cannot open {self.kind} {self.url}: {exc}") from exc
        self.root = root.rstrip("/") if root not in ("/", "") else root
        self.protocols: tuple[str, ...] = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (
            self.fs.protocol,)
        self.is_local = "file" in self.protocols or "local" in self.protocols

    @property
    def options(self) -> dict[str, Any]:
        """The fsspec storage options this root was opened with (may hold credentials: never log them)."""
        return dict(self._options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, storage_options={mask_secrets(self._options)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable for Ray/multiprocessing: reopen from url + options on the other side
        return (_reopen, (type(self), self.url, self._options, self.retry, self.kind))

    # --- paths ---------------------------------------------------------------------------------------
    def abspath(self, rel: str) -> str:
        """Absolute fsspec path of a path relative to the root; refuses anything escaping the root."""
        return posixpath.join(self.root, safe_relpath(rel)) if self.root else safe_relpath(rel)

    def url_of(self, rel: str) -> str:
        """What a person opens: the local path, or ``<protocol>://<path>`` on other filesystems."""
        p = self.abspath(rel)
        if self.is_local:
            return p
        proto = self.protocols[0]
        return f"{proto}://{p.lstrip('/') if proto == 'memory' else p}"

    def relpath(self, path: str) -> str:
        """The root-relative form of an absolute fsspec path below the root (what ``glob``/``ls`` return)."""
        root = self.root.strip("/")
        p = path.strip("/")
        return posixpath.relpath(p, root) if root else p

    # --- retries -------------------------------------------------------------------------------------
    def _count_retry(self, _exc: BaseException) -> None:
        self.retries += 1

    def retrying(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` under this root's retry policy (transient errors retried, permanent ones raised)."""
        return with_retries(fn, what, self.retry, self._count_retry)

    def _write_guarded(self, rel: str, fn: Callable[[], None]) -> None:
        try:
            self.retrying(fn, f"write {rel}")
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write {rel!r} to {self.kind} {self.url}: {type(exc).__name__}: {exc}") from exc

    # --- writes --------------------------------------------------------------------------------------
    def write(self, rel: str, data: bytes) -> str:
        """Write a whole file (parents created on local disk; one PUT on object stores); returns ``rel``."""
        path = self.abspath(rel)

        def put() -> None:
            if self.is_local:
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self.fs.pipe_file(path, data)

        self._write_guarded(rel, put)
        return rel

    def atomic_write(self, rel: str, data: bytes) -> str:
        """Make ``rel`` appear complete or not at all (module doc); returns ``rel``."""
        path = self.abspath(rel)

        def put() -> None:
            if not self.is_local:
                self.fs.pipe_file(path, data)
                return
            tmp = posixpath.join(posixpath.dirname(path), f".tmp-{new_token()}-{posixpath.basename(path)}")
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            try:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
            finally:
                if self.fs.exists(tmp):  # a failed write (disk full) must not leave its temp behind
                    self.fs.rm_file(tmp)

        self._write_guarded(rel, put)
        return rel

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Write ``rel`` only if nothing is there; True when this call created it, False when it existed.

        The one conditional write of the project (leases, ``store/leases.py``). Local disk: a complete temp
        file hard-linked to the name (``link`` fails when the name exists, like ``O_EXCL``, and a reader never
        sees a half-written file). S3: one PUT with ``If-None-Match: *`` (s3fs ``mode="create"``; AWS S3
        and moto honour it, answering 412 when the key exists). Other fsspec filesystems: their
        ``mode="create"``, which is a check then a write (``memory://``: one process, fine). A transient
        error retried after the PUT had landed reads as False: callers re-read the object to tell."""
        path = self.abspath(rel)

        def put() -> bool:
            if self.is_local:
                return _link_exclusive(path, data)
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True

        try:
            return self.retrying(put, f"create {rel}")
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write {rel!r} to {self.kind} {self.url}: {type(exc).__name__}: {exc}") from exc

    def remove(self, rel: str, *, recursive: bool = False) -> None:
        """Delete a file (or a folder with ``recursive``); one already gone is not an error."""
        path = self.abspath(rel)

        def rm() -> None:
            try:
                if recursive:
                    self.fs.rm(path, recursive=True)
                else:
                    self.fs.rm_file(path)
            except FileNotFoundError:
                pass

        self._write_guarded(rel, rm)

    def find(self, rel: str) -> dict[str, dict[str, Any]]:
        """Every file below folder ``rel`` (root-relative path -> fsspec info: size, modification time):
        one recursive listing (paginated on object stores). Missing folder: empty."""
        path = self.abspath(rel)
        try:
            hits = self.retrying(lambda: self.fs.find(path, detail=True, withdirs=False), f"list {rel}/ recursively")
        except FileNotFoundError:
            return {}
        return {self.relpath(p): info for p, info in hits.items() if info.get("type", "file") == "file"}

    def check_writable(self, probe_dir: str = ".") -> None:
        """Fail fast (ConfigError) when the root cannot be written, before any work starts."""
        rel = posixpath.normpath(posixpath.join(probe_dir, f".probe-{new_token()}"))
        try:
            self.atomic_write(rel, b"ok")
            self.fs.rm_file(self.abspath(rel))
        except Exception as exc:  # noqa: BLE001 - any failure here is a configuration problem
            raise ConfigError(f"{self.kind} {self!r} is not writable: {type(exc).__name__}: {exc}") from exc

    # --- reads ---------------------------------------------------------------------------------------
    def cat(self, rel: str) -> bytes:
        """Bytes of a file relative to the root (transient errors retried)."""
        path = self.abspath(rel)
        return self.retrying(lambda: self.fs.cat_file(path), f"read {rel}")

    def read_json(self, rel: str) -> Any | None:
        """The JSON document at ``rel``, or None when it is missing or unreadable."""
        try:
            return json.loads(self.cat(rel))
        except (FileNotFoundError, OSError, ValueError):
            return None

    def exists(self, rel: str) -> bool:
        path = self.abspath(rel)
        return bool(self.retrying(lambda: self.fs.exists(path), f"stat {rel}"))

    def ls(self, rel: str) -> list[str]:
        """Absolute paths of the entries of folder ``rel`` (fresh listing; missing folder: empty)."""
        path = self.abspath(rel)
        try:
            return list(self.retrying(lambda: self.fs.ls(path, detail=False, refresh=True), f"list {rel}/"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def names(self, rel: str, suffix: str = "") -> list[str]:
        """Sorted base names of the entries of folder ``rel`` that end with ``suffix``."""
        return sorted(posixpath.basename(n.rstrip("/")) for n in self.ls(rel) if n.rstrip("/").endswith(suffix))

    def glob(self, pattern: str) -> list[str]:
        """Root-relative paths matching ``pattern`` (itself relative to the root), sorted."""
        path = self.abspath(pattern)
        try:
            hits = self.retrying(lambda: self.fs.glob(path), f"glob {pattern}")
        except (FileNotFoundError, OSError):
            return []
        return sorted(self.relpath(h) for h in hits)


def _link_exclusive(path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists (local disk): write a temp file, ``link`` it."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{new_token()}-{os.path.basename(path)}")
    with open(tmp, "xb") as f:
        f.write(data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:  # no hard links here (some FUSE/SMB mounts): O_EXCL, a reader may see it half-written
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    finally:
        os.unlink(tmp)
    return True


def _reopen(cls: type[StoreRoot], url: str, options: Mapping[str, Any], retry: RetryPolicy, kind: str) -> StoreRoot:
    root = cls(url, options, retry)
    root.kind = kind
    return root
