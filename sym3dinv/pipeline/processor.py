"""The per-item pipeline that the bulk flow runs on every worker: decode -> align (or a known camera)
-> invert (stage 1 + stage 2) -> render -> atomic write to the run store -> one index row.

No Prefect or Ray here (DESIGN.md): ``tasks/actors.py`` wraps :class:`ItemProcessor` in a Ray actor,
and a notebook can use it directly. Every per-item failure becomes a ``failed`` :class:`IndexRow` with a
stable error class; only configuration errors (missing checkpoint, bad preset) raise. Numerics
(flush-denormal, threads) are the entry point's business (:func:`sym3dinv.perf.cpu_numerics`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np

from sym3dinv.batching import is_out_of_memory, run_splitting
from sym3dinv.camera_check import known_label
from sym3dinv.config.pipeline import PipelineConfig
from sym3dinv.errors import ConfigError, ItemError, OutOfMemoryItemError, StoreError, is_oom_message
from sym3dinv.pipeline.inputs import InputItem
from sym3dinv.pipeline.models import code_version, load_encoder, load_losses
from sym3dinv.pipeline.quality import QualityConfig, assess, camera_angles
from sym3dinv.store.leases import LeaseKeeper, leased_row
from sym3dinv.store.schema import IndexRow, Status, failure_row, utcnow

if TYPE_CHECKING:
    import torch

    from sym3dinv.config.store import LeaseConfig
    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)


Progress = Callable[[str, int, int, Mapping[str, float]], None]


@dataclass
class _Ready:
    """An item decoded and aligned, waiting for its inversion (:meth:`ItemProcessor.process_many`)."""

    pos: int  # index in the caller's list
    item: InputItem
    attempt: int
    image: np.ndarray  # aligned crop, uint8 RGB
    camera: tuple[float, ...]  # 25-d label
    mask: np.ndarray | None  # face mask of an aligned photo
    regions: Any  # FaceRegions for the mirror branch
    seconds: dict[str, float]  # stage timings so far
    started: dt.datetime
    t0: float  # perf_counter at the item's start


class ItemProcessor:
    """Loads the generator (and, lazily, the aligner and losses) once; :meth:`process` runs one item."""

    def __init__(self, config: PipelineConfig, device: str = "cpu", *,
                 storage_options: Mapping[str, Any] | None = None, losses: Any = None,
                 generator: Any = None, adopt: bool = True, lease: LeaseConfig | None = None,
                 owner: str | None = None, quality: QualityConfig | None = None) -> None:
        import torch

        from sym3dinv.generator import load_generator
        from sym3dinv.generator.fingerprint import generator_fingerprint

        self.config = config
        self.device = torch.device(device)
        self.storage_options = dict(storage_options or {})
        self.G = generator.to(self.device) if generator is not None else load_generator(config.generator, device=device)
        self.fingerprint = generator_fingerprint(self.G)  # once per worker; in every row and manifest it writes
        self.encoder = load_encoder(config, self.G, self.device)  # once, next to G (None unless the preset needs it)
        self.losses = losses if losses is not None else load_losses(config.losses)
        self._aligner: Callable[..., Any] | None = None
        self._hash = config.config_hash
        self._version = code_version()
        self.adopt = adopt
        """Reuse an attempt of this item already committed under this config hash (a run killed after the
        commit but before its index part, or a concurrent run) instead of inverting it again."""
        if lease is not None and not owner:
            raise ConfigError("leases need an owner (the run id)")
        self.lease, self.owner = lease, owner
        self.quality = quality or QualityConfig()  # poor-fit thresholds of the done rows
        """With ``lease``, each item is leased in the store for run ``owner`` before it is worked on
        (``sym3dinv.store.leases``): an item another run holds gets a ``skipped`` row (error class
        ``leased``, never indexed) and is left for a later run."""
        self._keeper: LeaseKeeper | None = None

    # --- stages ------------------------------------------------------------------------------------
    def _decode(self, item: InputItem) -> np.ndarray:
        from sym3dinv.align.decode import decode_bytes, read_bytes

        if "://" in item.uri and not item.uri.startswith("file://"):
            with fsspec.open(item.uri, "rb", **self.storage_options) as f:  # object stores need the options
                data = f.read()
        else:
            data = read_bytes(item.uri)
        return decode_bytes(data, self.config.align.max_pixels, self.config.align.min_side)

    def _align(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, ...], np.ndarray | None, Any]:
        """Crop, camera, face mask, and the eye/mouth boxes that stage 2's mirror branch checks for asymmetry."""
        from sym3dinv.invert.pseudo import FaceRegions

        if self._aligner is None:
            from sym3dinv.align import FaceAligner  # late: MediaPipe loads only for photos without cameras

            self._aligner = FaceAligner(self.config.align).align
        face = self._aligner(rgb)
        size = float(np.asarray(face.image).shape[1])
        boxes = tuple(tuple(float(v) / size for v in b) for b in (face.left_eye_box, face.right_eye_box, face.mouth_box))
        return (np.asarray(face.image), tuple(float(v) for v in np.asarray(face.label).reshape(-1)), face.face_mask,
                FaceRegions(boxes=boxes))  # type: ignore[arg-type]

    def close(self) -> None:
        """Release the face landmarker (MediaPipe's graph complains when it is left to interpreter exit)."""
        aligner = getattr(self._aligner, "__self__", None)
        if aligner is not None:
            aligner.close()
        self._aligner = None

    def _to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        res = int(self.G.img_resolution)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        if x.shape[-1] != res or x.shape[-2] != res:
            x = F.interpolate(x, size=(res, res), mode="area" if x.shape[-1] > res else "bilinear", align_corners=None)
        return x.to(self.device)

    def process(self, item: InputItem, store: RunStore, attempt: int = 0, worker: str | None = None,
                progress: Progress | None = None) -> IndexRow:
        """Run one item end to end and write its files; never raises for per-item problems.

        Store write failures (:class:`StoreError`: disk full, permission denied, endpoint down after
        retries) do raise: they are not the item's fault, and recording them as rows would burn through
        every remaining item. The item stays pending (no done row) and the shard fails clearly.
        """
        return self.process_many([item], store, [attempt], worker=worker, progress=progress)[0]

    def process_many(self, items: Sequence[InputItem], store: RunStore, attempts: Sequence[int] | None = None, *,
                     worker: str | None = None, progress: Progress | None = None) -> list[IndexRow]:
        """:meth:`process` for several items, with stage 1 batched across them; one row per item, in order.

        Each item is decoded and aligned on its own; those that get that far are inverted with stage 1 in
        batches of ``inversion.stage1.batch_size`` (a batch fills a GPU: 1.7x per image at 512 px,
        docs/performance.md), then stage 2, render and write one item at a time, each written as soon as it
        is done. An item's result does not depend on its batch (``run_stage1``). When a batch fails (an
        item's stage 2 raising), its items not yet written are redone one by one, so the failure is
        recorded against the item that causes it and the others still finish; out of memory splits the
        batch in halves first (:func:`sym3dinv.batching.run_splitting`), down to single items.
        """
        attempts = list(attempts) if attempts is not None else [0] * len(items)
        if self.lease is not None:
            here = worker or f"{socket.gethostname()}:{os.getpid()}"
            self._keeper = LeaseKeeper(store, str(self.owner), here, self.lease)
        try:
            return self._process_leased(items, store, attempts, worker, progress)
        finally:
            if self._keeper is not None:
                self._keeper.close()  # releases the leases of failed items; a heartbeat may still hold one
                self._keeper = None

    def _process_leased(self, items: Sequence[InputItem], store: RunStore, attempts: list[int],
                        worker: str | None, progress: Progress | None) -> list[IndexRow]:
        """:meth:`process_many` inside its lease keeper: lease, adopt or decode + align, then invert."""
        rows: dict[int, IndexRow] = {}
        ready: list[_Ready] = []
        for pos, (item, attempt) in enumerate(zip(items, attempts, strict=True)):
            started, t0 = utcnow(), time.perf_counter()
            if self._keeper is not None:
                got = self._keeper.acquire(item.id)
                if got.lease is None:
                    rows[pos] = leased_row(item.id, got.holder, config_hash=self._hash, attempt=attempt,
                                           source_uri=item.uri, bytes=item.size, worker=worker,
                                           code_version=self._version)
                    continue
            if self.adopt:  # after the lease: the last holder may have committed it a moment ago
                adopted = self.adopt_committed(item, store, worker)
                if adopted is not None:
                    rows[pos] = adopted
                    self._release(item.id)
                    continue
            t: dict[str, float] = {}
            try:
                ready.append(self._prepare(pos, item, attempt, started, t0, t))
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - every per-item failure must become a row
                rows[pos] = self._failure(item, attempt, worker, exc, t, t0, started)
        size = self.config.inversion.stage1.batch_size
        for kind in (True, False):  # a face mask changes the warp loss: a batch holds items of one kind
            group = [r for r in ready if (r.mask is not None) == kind]
            for lo in range(0, len(group), size):
                self._invert_batch(group[lo:lo + size], store, worker, progress, rows)
        return [rows[i] for i in range(len(items))]

    def _prepare(self, pos: int, item: InputItem, attempt: int, started: dt.datetime, t0: float,
                 t: dict[str, float]) -> _Ready:
        """Decode and align one photo (or take its known camera); its timings go into ``t`` as they are
        measured, so a failure row still has them. Raises for a per-item problem."""
        rgb = self._decode(item)
        t["decode"] = time.perf_counter() - t0
        if item.camera is not None:  # known camera (dataset.json): the image is already an aligned crop
            camera = known_label(item.camera, self.config.align.camera_format, item.uri).tolist()
            image, mask, regions = rgb, None, None
        else:
            image, camera, mask, regions = self._align(rgb)
            t["align"] = time.perf_counter() - t0 - t["decode"]
        return _Ready(pos, item, attempt, image, tuple(camera), mask, regions, t, started, t0)

    def _release(self, item_id: str) -> None:
        if self._keeper is not None:
            self._keeper.release(item_id)

    def _failure(self, item: InputItem, attempt: int, worker: str | None, exc: Exception, t: dict[str, float],
                 t0: float, started: dt.datetime) -> IndexRow:
        """The ``failed`` row of a per-item exception (out-of-memory errors classed as such)."""
        if not isinstance(exc, ItemError) and (isinstance(exc, MemoryError) or is_oom_message(str(exc))):
            exc = OutOfMemoryItemError(str(exc))
        if isinstance(exc, ConfigError) and not isinstance(exc, ItemError):
            log.error("item %s hit a configuration error: %s", item.id, exc)
        log.warning("item %s (%s) failed: %s: %s", item.id, item.uri, type(exc).__name__, exc)
        t["total"] = time.perf_counter() - t0
        return failure_row(item.id, exc, config_hash=self._hash, attempt=attempt, source_uri=item.uri,
                           size=item.size, worker=worker, code_version=self._version, stage_seconds=t,
                           started_at=started, generator_fingerprint=self.fingerprint)

    def _invert_batch(self, batch: list[_Ready], store: RunStore, worker: str | None, progress: Progress | None,
                      rows: dict[int, IndexRow]) -> None:
        """Invert ``batch`` (one stage-1 batch) and write each item as its stage 2 ends; rows into ``rows``.

        Out of memory: :func:`~sym3dinv.batching.run_splitting` retries the halves, down to single items,
        and an item that does not fit alone gets an ``out_of_memory`` row. Items a failed try had already
        written keep their rows (a retry skips them)."""
        report = run_splitting(lambda part: self._invert_or_redo(part, store, worker, progress, rows), batch)
        for r, res in zip(batch, report.results, strict=True):
            if isinstance(res, OutOfMemoryItemError):
                rows[r.pos] = self._failure(r.item, r.attempt, worker, res, r.seconds, r.t0, r.started)

    def _invert_or_redo(self, batch: Sequence[_Ready], store: RunStore, worker: str | None,
                        progress: Progress | None, rows: dict[int, IndexRow]) -> list[IndexRow]:
        """One try of a stage-1 batch: its rows, in order. Out of memory propagates (to be split); any other
        failure is recorded against the item that causes it: the items not yet written are redone alone."""
        todo = [r for r in batch if r.pos not in rows]
        failure: str | None = None  # the reason only: the exception's frames hold the batch's tensors
        try:
            if todo:
                self._run_batch(todo, store, worker, progress, rows)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every per-item failure must become a row
            if is_out_of_memory(exc):
                log.warning("out of memory in a stage-1 batch of %d items after %d were written; splitting it",
                            len(todo), sum(r.pos in rows for r in todo))
                raise
            if len(todo) == 1:
                r = todo[0]
                rows[r.pos] = self._failure(r.item, r.attempt, worker, exc, r.seconds, r.t0, r.started)
            else:
                failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:  # redone outside the except block, so the failed call's tensors are freed first
            rest = [r for r in todo if r.pos not in rows]
            log.warning("a stage-1 batch of %d items failed after %d were written (%s); redoing the other %d one "
                        "by one", len(todo), len(todo) - len(rest), failure, len(rest))
            for r in rest:
                self._invert_or_redo([r], store, worker, progress, rows)
        return [rows[r.pos] for r in batch]

    def _run_batch(self, batch: list[_Ready], store: RunStore, worker: str | None, progress: Progress | None,
                   rows: dict[int, IndexRow]) -> None:
        """The inversion of one stage-1 batch; each item's row goes into ``rows`` as soon as it is written."""
        import torch
        import torch.nn.functional as F

        from sym3dinv.invert import iter_inversions

        res_px = int(self.G.img_resolution)
        xs = torch.cat([self._to_tensor(r.image) for r in batch])
        cams = torch.tensor([r.camera for r in batch], dtype=torch.float32, device=self.device)
        masks = None
        if batch[0].mask is not None:  # at the generator's resolution, as invert() would resize it
            masks = torch.stack([F.interpolate(torch.as_tensor(np.asarray(r.mask), dtype=torch.float32)[None, None],
                                               size=(res_px, res_px), mode="nearest")[0, 0] for r in batch])
        results = iter_inversions(self.G, xs, cams, masks=masks, regions=[r.regions for r in batch],
                                  config=self.config.inversion, progress=progress, losses=self.losses,
                                  encoder=self.encoder)
        with contextlib.closing(results):
            for j, (r, res) in enumerate(zip(batch, results, strict=True)):
                rows[r.pos] = self._write(r, xs[j:j + 1], res, store, worker)
                self._release(r.item.id)  # committed: a run that takes the lease now adopts it

    def _write(self, r: _Ready, x: torch.Tensor, res: Any, store: RunStore, worker: str | None) -> IndexRow:
        """Render an inverted item at the configured views and commit its files; its done row."""
        import torch

        from sym3dinv.cameras import camera_label
        from sym3dinv.invert import render_views

        item, attempt, t = r.item, r.attempt, r.seconds
        camera = [float(v) for v in res.camera.reshape(-1)]  # stage 1 may have corrected the input's camera
        t.update({f"invert_{k}": float(v) for k, v in res.timings.items()})
        t1 = time.perf_counter()
        # the configured views, then the input camera: render-input.png is the reconstruction a viewer
        # compares with input.png (same camera, same resolution)
        cams = torch.cat([torch.stack([camera_label(y, p) for y, p in self.config.render.views]).reshape(-1, 25),
                          torch.tensor(camera, dtype=torch.float32).reshape(1, 25)]).float()
        views = render_views(self.G, res.ws, cams.to(self.device), delta=res.delta or None)
        names = [*self.config.render.names(), "input"]
        t["render"] = time.perf_counter() - t1
        metrics = {k: float(v) for k, v in vars(res.metrics).items() if v is not None}
        yaw, pitch = camera_angles(camera)
        t["total"] = sum(v for k, v in t.items() if k in ("decode", "align", "render")) + float(res.timings.get("total", 0))
        quality, reason = assess(metrics, yaw, pitch, self.quality)
        row = IndexRow(id=item.id, status=Status.DONE, config_hash=self._hash, attempt=attempt, source_uri=item.uri,
                       bytes=item.size, camera_label=tuple(camera), yaw=yaw, pitch=pitch, metrics=metrics,
                       stage_seconds=dict(t), worker=worker, code_version=self._version, started_at=r.started,
                       generator_fingerprint=self.fingerprint, quality=quality, quality_reason=reason)
        meta = {"config_hash": self._hash, "generator_fingerprint": self.fingerprint, "row": row.manifest_meta()}
        with store.item_writer(item.id, attempt, meta=meta) as w:
            w.write_latents({"ws": res.ws[0].float().cpu().numpy()}, metadata={"config_hash": self._hash})
            if res.delta:
                w.write_delta({k.replace("/", "_"): v.float().cpu().numpy() for k, v in res.delta.items()})
            w.write_input(_to_uint8(x[0]))
            for name, img, dz in zip(names, views.image, views.depth_z, strict=True):
                w.write_render(name, _to_uint8(img))
                if self.config.render.depth:
                    w.write_depth(name, dz[0].float().cpu().numpy())
            w.write_metrics({**metrics, "stage2_steps": res.stage2_steps, "stopped_early": res.stopped_early,
                             "timings": dict(t), "config": self.config.to_json()})
        committed = w.committed
        assert committed is not None  # the writer commits on normal exit
        return replace(row, attempt=committed.attempt, item_dir=committed.item_dir, outputs=dict(committed.outputs))

    def adopt_committed(self, item: InputItem, store: RunStore, worker: str | None) -> IndexRow | None:
        """The done row of an attempt of ``item`` already committed under this config hash by this generator
        (fingerprint; a manifest written before fingerprints were recorded is accepted), or None.

        One listing of ``items/<id>/`` per item. The row is rebuilt from the manifest (files) and the
        row fields the writer stored in it, so the adopted row equals the one the writer would have
        indexed; ``stage_seconds['adopted']`` marks it.
        """
        for item_dir, manifest in reversed(store.committed_attempts(item.id)):
            meta = manifest.get("meta") or {}
            if meta.get("config_hash") != self._hash or not isinstance(meta.get("row"), dict):
                continue
            made_by = meta.get("generator_fingerprint") or meta["row"].get("generator_fingerprint")
            if made_by and made_by != self.fingerprint:  # another generator's result: never adopted
                log.info("item %s: committed attempt %s was made by generator %s, not %s; not adopting it", item.id,
                         item_dir, made_by, self.fingerprint)
                continue
            try:
                row = IndexRow.from_manifest(item.id, item_dir, manifest)
                out = replace(row, config_hash=self._hash, source_uri=item.uri, bytes=item.size,
                              stage_seconds={**row.stage_seconds, "adopted": 1.0}, worker=row.worker or worker)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("item %s: committed attempt %s has an unusable manifest (%s); redoing", item.id,
                            item_dir, exc)
                continue
            log.info("item %s: adopting committed attempt %s (no new work)", item.id, item_dir)
            return out
        return None


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
