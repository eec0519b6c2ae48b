"""Store faults tried for real: an S3 endpoint stopped and restarted mid-run (moto server), a full
file system (a 2 MiB tmpfs), a store another user cannot write (uid 65534), hostile names."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sym3dinv.config.store import RetryPolicy
from sym3dinv.errors import ConfigError, StoreError, StoreWriteError
from sym3dinv.store import IndexRow, RunStore, Status, item_id_from_bytes
from sym3dinv.store.index import list_parts
from sym3dinv.store.retry import is_transient

CFG = "cfg0123456789abc"


def _write_item(store: RunStore, iw, payload: bytes, kb: int = 16) -> str:  # noqa: ANN001
    iid = item_id_from_bytes(payload)
    with store.item_writer(iid, 0) as w:
        w.write_latents({"ws": np.random.default_rng(len(payload)).standard_normal((kb * 256,)).astype(np.float32)})
        w.write_metrics({"psnr": 30.0})
    iw.add_done(w.committed, IndexRow(id=iid, status=Status.DONE, config_hash=CFG, source_uri=payload.decode()))
    return iid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- S3 endpoint down mid-run ---------------------------------------------------------------------------
class Endpoint:
    """A TCP front for the moto server that can go down for real: stop() closes the listening socket and
    every open connection (moto's own stop() keeps serving open keep-alive connections), start() listens
    again on the same port."""

    def __init__(self, port: int, backend: int) -> None:
        self.port, self.backend = port, backend
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.backend))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_s3_endpoint_stopped_and_restarted_mid_run(monkeypatch: pytest.MonkeyPatch,
                                                   figures: dict[str, object]) -> None:
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port, moto_port = _free_port(), _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    server.start()
    endpoint = Endpoint(port, moto_port)
    endpoint.start()
    opts = {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}
    # s3fs (5 tries) and botocore (up to 5, random backoff up to ~15 s) retry on their own; switch them off
    # for the writing store so every refused connection reaches our backoff and the count is deterministic
    no_inner = {**opts, "config_kwargs": {"retries": {"max_attempts": 1}}}
    bucket = f"outage-{uuid.uuid4().hex[:12]}"  # moto's buckets are per process, shared by all its servers
    url = f"s3://{bucket}/run"
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    store = RunStore(url, no_inner, retry=RetryPolicy(attempts=12, base_delay_s=0.2, max_delay_s=2.0))
    store.fs.retries = 1  # s3fs' own loop (an attribute, not an option); this instance is ours alone
    n_items, per_part = 24, 4
    ids: list[str] = []
    errors: list[BaseException] = []
    first_part, outage_over = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            for part in range(n_items // per_part):
                with store.index_writer("run1", f"s{part}") as iw:
                    for i in range(per_part):
                        ids.append(_write_item(store, iw, f"s3-{part}-{i}".encode()))
                first_part.set()
                if part == 0:
                    time.sleep(0.5)  # let the outage begin while items are being written
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            first_part.set()

    th = threading.Thread(target=writer)
    th.start()
    try:
        assert first_part.wait(120)
        endpoint.stop()  # the endpoint goes away: open connections reset, new ones refused
        server.stop()  # and the moto server itself stops
        down_at = time.monotonic()
        done_at_stop = len(ids)
        time.sleep(6.0)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)  # same process: moto keeps its data
        server.start()
        endpoint.start()
        outage = time.monotonic() - down_at
        outage_over.set()
        th.join(180)
        assert not th.is_alive() and not errors, errors
        check = RunStore(url, opts)
        t = check.read_index()
        assert t.num_rows == n_items and sorted(t["id"].to_pylist()) == sorted(ids)
        assert len(list_parts(check)) == n_items // per_part
        assert check.pending([(i, "u") for i in ids], CFG, verify_outputs=True).num_rows == 0
        assert done_at_stop < n_items  # the outage hit the run mid-way
        assert store.retries >= 1  # ... and our backoff rode it out
        figures.update(items=n_items, parts=n_items // per_part, outage_s=round(outage, 1), retries=store.retries,
                       rows=t.num_rows, lost=0, items_before_outage=done_at_stop)
    finally:
        endpoint.stop()
        server.stop()


def test_transient_classification() -> None:
    import errno

    assert is_transient(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert is_transient(TimeoutError())
    assert not is_transient(FileNotFoundError("gone"))
    assert not is_transient(PermissionError(errno.EACCES, "denied"))
    assert not is_transient(OSError(errno.ENOSPC, "No space left on device"))
    from botocore.exceptions import ClientError, EndpointConnectionError

    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    slow = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
    assert is_transient(slow)
    wrapped = OSError("translated by s3fs")
    wrapped.__cause__ = slow
    assert is_transient(wrapped)
    denied = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    assert not is_transient(denied)
    p = RetryPolicy()
    assert [p.delay(k) for k in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0]


# --- disk full ----------------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_fs() -> Iterator[Path]:
    """A real 2 MiB tmpfs (needs root / CAP_SYS_ADMIN; skipped with the reason otherwise)."""
    mnt = Path(tempfile.mkdtemp(prefix="sym3dinv-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode}); disk-full test needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


def test_disk_full_fails_clearly_and_writes_no_done_row(tiny_fs: Path, figures: dict[str, object]) -> None:
    store = RunStore(str(tiny_fs / "run"), retry=RetryPolicy(attempts=3, base_delay_s=0.01))
    committed: list[str] = []
    failed_payload = None
    with pytest.raises(StoreWriteError, match="No space left on device") as info, \
            store.index_writer("run1", "s0") as iw:
        for i in range(100):  # ~66 KiB per item: the 2 MiB disk fills up part way
            failed_payload = f"full-{i}".encode()
            committed.append(_write_item(store, iw, failed_payload))
    assert "cannot write" in str(info.value) and store.url in str(info.value)
    assert store.retries == 0  # ENOSPC is permanent: not retried
    n_ok = len(committed)
    assert 5 < n_ok < 100
    t = store.read_index()  # the index part of this shard could not be written either (or holds only done items)
    assert set(t["id"].to_pylist()) <= set(committed)
    assert all(store.is_committed(d) for d in t["item_dir"].to_pylist())
    failed_id = item_id_from_bytes(failed_payload)
    assert store.committed_attempts(failed_id) == []  # the item being written has no manifest ...
    assert failed_id not in t["id"].to_pylist()  # ... and no row
    assert not [p for p in (tiny_fs / "run").rglob(".tmp-*")]  # no temp file left behind
    # space comes back: resume redoes exactly what has no done row
    for p in (tiny_fs / "run" / "items").iterdir():
        if p.name == failed_id:
            import shutil

            shutil.rmtree(p)
    with store.index_writer("run2", "s0") as iw:
        redo = store.pending([(i, "u") for i in [*committed, failed_id]], CFG)["id"].to_pylist()
        assert failed_id in redo
    figures.update(items_written_before_full=n_ok, done_rows=t.num_rows, done_rows_for_unwritten=0,
                   pending_after=len(redo))


def test_item_processor_raises_store_error_instead_of_a_row(tiny_fs: Path, tiny_checkpoint: str) -> None:
    """On a full disk the pipeline stops (the shard fails clearly) instead of burning through every item."""
    from PIL import Image

    from sym3dinv.pipeline import InputItem, ItemProcessor
    from tests.plugin import tiny_pipeline

    img = tiny_fs.parent / f"{tiny_fs.name}-in.png"
    Image.new("RGB", (128, 128), (120, 90, 80)).save(img)
    try:
        (tiny_fs / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 8192))  # leave 8 KiB
        cfg = tiny_pipeline(tiny_checkpoint)
        proc = ItemProcessor(cfg)
        item = InputItem(id=item_id_from_bytes(img.read_bytes()), uri=str(img), size=img.stat().st_size,
                         camera=tuple([1.0, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 2.7, 0, 0, 0, 1, 4.2647, 0, 0.5, 0, 4.2647,
                                       0.5, 0, 0, 1]))
        store = RunStore(str(tiny_fs / "run"), retry=RetryPolicy(attempts=2, base_delay_s=0.01))
        with pytest.raises(StoreWriteError, match="No space left"):
            proc.process(item, store)
        assert store.committed_attempts(item.id) == [] and store.read_index().num_rows == 0
    finally:
        img.unlink()


# --- permission denied (as an unprivileged user: root ignores permission bits) ------------------------------
def _write_attempts(root: str) -> list[str]:
    lines = []
    store = RunStore(root, retry=RetryPolicy(attempts=3, base_delay_s=0.01))
    try:
        store.check_writable()
        lines.append("writable")
    except ConfigError as exc:
        lines.append(f"ConfigError {exc}")
    try:
        with store.item_writer(item_id_from_bytes(b"x"), 0) as w:
            w.write_metrics({"a": 1.0})
    except StoreWriteError as exc:
        lines.append(f"StoreWriteError {exc}")
    lines.append(f"retries {store.retries}")
    return lines


def test_permission_denied_on_the_store(figures: dict[str, object], as_nobody: tuple[Path, Callable[..., list[str]]]) -> None:
    base, run = as_nobody
    root = base / "run"
    root.mkdir()
    root.chmod(0o755)  # owned by root: uid 65534 may read, not write
    lines = run(_write_attempts, str(root))
    assert lines[0].startswith("ConfigError run store RunStore(") and "not writable" in lines[0]
    assert "PermissionError" in lines[0]
    assert lines[1].startswith("StoreWriteError cannot write 'items/") and "Permission denied" in lines[1]
    assert lines[2] == "retries 0"  # permanent: failed at once
    assert list(root.iterdir()) == []
    figures.update(check_writable="ConfigError", item_write="StoreWriteError", retries=0)


# --- names never escape ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40) | st.sampled_from(["..", "../x", "a/../../b", "/etc/passwd", "~root", ".", "a\\b",
                                                    "x\0y", "..\\..", "....", "%2e%2e", "a/b"]))
def test_any_name_is_refused_or_stays_under_the_root(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    root = tmp_path_factory.getbasetemp() / "names-root"
    store = RunStore(str(root))
    w = store.item_writer(item_id_from_bytes(b"n"), 0)
    for write in (lambda: w.write_render(name, np.zeros((2, 2, 3), np.uint8)),
                  lambda: w.write_bytes(name, name, b"x"),
                  lambda: store.index_writer(name, "s0"),
                  lambda: store.index_writer("r", name),
                  lambda: store.abspath(name)):
        try:
            write()
        except StoreError:
            continue
    for p in root.rglob("*"):
        assert p.resolve().is_relative_to(root.resolve())
    assert not (root.parent / "x").exists() and not (root.parent / "b").exists()
