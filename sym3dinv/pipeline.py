"""The per-item pipeline that the bulk flow runs on every worker: decode -> align (or a known camera)
-> invert (stage 1 + stage 2) -> render -> atomic write to the run store -> one index row.

No Prefect or Ray here (DESIGN.md): ``tasks/actors.py`` wraps :class:`ItemProcessor` in a Ray actor,
and a notebook can use it directly. Every per-item failure becomes a ``failed`` :class:`IndexRow` with a
stable error class; only configuration errors (missing checkpoint, bad preset) raise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import logging
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np

from sym3dinv.batching import is_out_of_memory, release_memory
from sym3dinv.config import config_hash as _hash
from sym3dinv.config import replace_path
from sym3dinv.config.align import AlignConfig
from sym3dinv.config.invert import InversionConfig
from sym3dinv.config.presets import PRESETS, preset
from sym3dinv.errors import ConfigError, ItemError, OutOfMemoryItemError, StoreError, is_oom_message
from sym3dinv.store.ids import item_id_from_bytes, item_id_from_stream
from sym3dinv.store.schema import IndexRow, Status, failure_row, utcnow

if TYPE_CHECKING:
    import torch

    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PIPELINE_PRESETS: dict[str, str] = {"cpu-demo": "cpu", **{k: k for k in PRESETS}}
"""Pipeline preset -> inversion preset. ``cpu-demo`` is the reduced CPU preset of the two-command demo."""


@dataclass(frozen=True)
class RenderSpec:
    """Cameras every item is rendered at, as (yaw, pitch) in radians around the EG3D pivot."""

    views: tuple[tuple[float, float], ...] = ((0.0, 0.0), (-0.5, 0.0), (0.5, 0.0))
    depth: bool = True

    def names(self) -> list[str]:
        return [f"yaw{y:+.2f}_pitch{p:+.2f}" for y, p in self.views]


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides an item's outputs; its :meth:`config_hash` keys resume in the store."""

    generator: str = "synthheads"
    """``synthheads`` (embedded default), or an EG3D pickle / sym3dinv checkpoint path or URL."""
    preset: str = "paper"
    mode: str = "spi"
    overrides: tuple[tuple[str, Any], ...] = ()
    """``(("stage1.steps", 20), ...)`` applied to the inversion config (type-checked)."""
    align: AlignConfig = field(default_factory=AlignConfig)
    render: RenderSpec = field(default_factory=RenderSpec)
    losses: str = "lpips"
    """``lpips`` (METHOD.md's LPIPS + contextual) or ``fast`` (multi-scale L1 stand-in: smoke tests only)."""

    def __post_init__(self) -> None:
        if self.preset not in PIPELINE_PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; known: {sorted(PIPELINE_PRESETS)}")
        if self.mode not in ("spi", "pti", "w+"):
            raise ConfigError(f"unknown mode {self.mode!r}; use spi, pti or w+")
        if self.losses not in ("lpips", "fast"):
            raise ConfigError(f"unknown losses {self.losses!r}; use lpips or fast")
        self.inversion  # noqa: B018 - validates overrides eagerly (config errors before any work)

    @property
    def inversion(self) -> InversionConfig:
        cfg = preset(PIPELINE_PRESETS[self.preset], self.mode)
        for key, value in self.overrides:
            cfg = replace_path(cfg, key, value)
        return cfg

    @property
    def config_hash(self) -> str:
        # the generator *source string* is part of the hash: a different checkpoint is different work
        return _hash(self.inversion, self.align, self.render, _Source(self.generator, self.losses))

    def to_json(self) -> dict[str, Any]:
        return {"generator": self.generator, "preset": self.preset, "mode": self.mode,
                "overrides": [list(kv) for kv in self.overrides], "losses": self.losses, "views": [list(v) for v in self.render.views],
                "config_hash": self.config_hash}


@dataclass(frozen=True)
class _Source:
    generator: str
    losses: str


@dataclass(frozen=True)
class InputItem:
    """One input image: content-hash id, where it is, size, and (for dataset.json inputs) its camera."""

    id: str
    uri: str
    size: int
    camera: tuple[float, ...] | None = None


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def _read_dataset_json(fs: fsspec.AbstractFileSystem, path: str, proto: str) -> dict[str, tuple[float, ...]]:
    """EG3D's ``dataset.json`` (``{"labels": [[relpath, [25 floats]], ...]}``) -> abs path -> label."""
    data = json.loads(fs.cat_file(path))
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise ConfigError(f"{path}: not an EG3D dataset.json (no 'labels' list)")
    root = posixpath.dirname(path)
    out: dict[str, tuple[float, ...]] = {}
    for rel, lab in labels:
        if len(lab) != 25:
            raise ConfigError(f"{path}: label of {rel} has {len(lab)} values, expected 25")
        out[posixpath.join(root, rel)] = tuple(float(v) for v in lab)
    return out


def list_inputs(source: str, storage_options: Mapping[str, Any] | None = None) -> list[InputItem]:
    """Inputs of a folder, glob, single file, fsspec URL or EG3D ``dataset.json``, deduplicated by content.

    Ids are content hashes (the store's id function), so the same photo under two names is one item.
    A folder's ``dataset.json`` (if any) supplies known cameras. An empty or unreadable source is a
    :class:`ConfigError` (fail fast).
    """
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
    items: dict[str, InputItem] = {}
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
        items.setdefault(iid, InputItem(id=iid, uri=uri, size=size, camera=cameras.get(p)))
    log.info("listed %d inputs (%d unique, %d unreadable) from %s", len(paths), len(items), unreadable, source)
    return list(items.values())


def unreadable_id(uri: str) -> str:
    """Id of an input whose bytes cannot be read: a hash of its URI in a separate namespace, so the
    file still gets a row (``unreadable``) and a later readable copy gets its normal content id."""
    return item_id_from_bytes(b"sym3dinv-unreadable-input\0" + uri.encode("utf-8", "surrogateescape"))


def shards(items: Sequence[InputItem], shard_size: int) -> list[list[InputItem]]:
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    return [list(items[i:i + shard_size]) for i in range(0, len(items), shard_size)]


def resolve_device(num_gpus: float, cuda_available: bool | None = None) -> str:
    """``cuda`` when GPUs were requested and CUDA works here, else ``cpu`` (logged, not an error)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if num_gpus > 0 and cuda_available:
        return "cuda"
    if num_gpus > 0:
        log.warning("%s GPU(s) requested but CUDA is not available; running on CPU", num_gpus)
    return "cpu"


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sym3dinv")
    except PackageNotFoundError:
        return "0+unknown"


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
                 generator: Any = None, adopt: bool = True) -> None:
        import torch

        from sym3dinv.generator import load_generator

        if device == "cpu":
            torch.set_flush_denormal(True)
        self.config = config
        self.device = torch.device(device)
        self.storage_options = dict(storage_options or {})
        self.G = generator.to(self.device) if generator is not None else load_generator(config.generator, device=device)
        self.losses = losses if losses is not None else (fast_losses() if config.losses == "fast" else None)
        self._aligner: Callable[..., Any] | None = None
        self._hash = config.config_hash
        self._version = code_version()
        self.adopt = adopt
        """Reuse an attempt of this item already committed under this config hash (a run killed after the
        commit but before its index part, or a concurrent run) instead of inverting it again."""

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
        rest in halves first (as :func:`sym3dinv.batching.run_splitting` does), down to single items.
        """
        attempts = list(attempts) if attempts is not None else [0] * len(items)
        rows: dict[int, IndexRow] = {}
        ready: list[_Ready] = []
        for pos, (item, attempt) in enumerate(zip(items, attempts, strict=True)):
            started, t0 = utcnow(), time.perf_counter()
            if self.adopt:
                adopted = self.adopt_committed(item, store, worker)
                if adopted is not None:
                    rows[pos] = adopted
                    continue
            t: dict[str, float] = {}
            try:
                rgb = self._decode(item)
                t["decode"] = time.perf_counter() - t0
                if item.camera is not None:  # known camera (dataset.json): the image is already an aligned crop
                    image, camera, mask, regions = rgb, item.camera, None, None
                else:
                    image, camera, mask, regions = self._align(rgb)
                    t["align"] = time.perf_counter() - t0 - t["decode"]
                ready.append(_Ready(pos, item, attempt, image, tuple(camera), mask, regions, t, started, t0))
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
                           started_at=started)

    def _invert_batch(self, batch: list[_Ready], store: RunStore, worker: str | None, progress: Progress | None,
                      rows: dict[int, IndexRow]) -> None:
        """Invert ``batch`` (one stage-1 batch) and write each item as its stage 2 ends; rows into ``rows``."""
        written = [0]
        failure: tuple[bool, str] | None = None  # (out of memory, reason); not the exception: its frames hold tensors
        try:
            self._run_batch(batch, store, worker, progress, rows, written)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every per-item failure must become a row
            if len(batch) == 1:
                r = batch[0]
                rows[r.pos] = self._failure(r.item, r.attempt, worker, exc, r.seconds, r.t0, r.started)
                return
            failure = (is_out_of_memory(exc), f"{type(exc).__name__}: {exc}")
        if failure is None:
            return
        # retried outside the except block, so the failed call's frames (and their tensors) are freed first
        done = written[0]
        rest = batch[done:]
        if failure[0] and len(rest) > 1:  # too big a batch for the device: halves, then singles
            release_memory()
            mid = len(rest) // 2
            log.warning("out of memory in a stage-1 batch of %d items after %d were written; retrying the other "
                        "%d as %d + %d", len(batch), done, len(rest), mid, len(rest) - mid)
            for part in (rest[:mid], rest[mid:]):
                self._invert_batch(part, store, worker, progress, rows)
            return
        log.warning("a stage-1 batch of %d items failed after %d were written (%s); redoing the other %d one by one",
                    len(batch), done, failure[1], len(rest))
        for r in rest:
            self._invert_batch([r], store, worker, progress, rows)

    def _run_batch(self, batch: list[_Ready], store: RunStore, worker: str | None, progress: Progress | None,
                   rows: dict[int, IndexRow], written: list[int]) -> None:
        """The inversion of one stage-1 batch; ``written[0]`` counts the items already committed."""
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
                                  config=self.config.inversion, progress=progress, losses=self.losses)
        with contextlib.closing(results):
            for j, (r, res) in enumerate(zip(batch, results, strict=True)):
                rows[r.pos] = self._write(r, xs[j:j + 1], res, store, worker)
                written[0] += 1

    def _write(self, r: _Ready, x: torch.Tensor, res: Any, store: RunStore, worker: str | None) -> IndexRow:
        """Render an inverted item at the configured views and commit its files; its done row."""
        import torch

        from sym3dinv.cameras import camera_label, yaw_pitch_roll
        from sym3dinv.invert import render_views

        item, attempt, camera, t = r.item, r.attempt, r.camera, r.seconds
        t.update({f"invert_{k}": float(v) for k, v in res.timings.items()})
        t1 = time.perf_counter()
        cams = torch.stack([camera_label(y, p) for y, p in self.config.render.views]).reshape(-1, 25).float()
        views = render_views(self.G, res.ws, cams.to(self.device), delta=res.delta or None)
        t["render"] = time.perf_counter() - t1
        metrics = {k: float(v) for k, v in vars(res.metrics).items() if v is not None}
        try:
            yaw, pitch, _ = (float(v) for v in yaw_pitch_roll(torch.tensor(camera).reshape(1, 25))[0])
        except Exception:  # noqa: BLE001 - angles are a convenience column
            yaw = pitch = None  # type: ignore[assignment]
        t["total"] = sum(v for k, v in t.items() if k in ("decode", "align", "render")) + float(res.timings.get("total", 0))
        row_meta = {"config_hash": self._hash, "source_uri": item.uri, "bytes": item.size,
                    "camera_label": [float(v) for v in camera], "yaw": yaw, "pitch": pitch, "metrics": metrics,
                    "stage_seconds": dict(t), "worker": worker, "code_version": self._version,
                    "started_at": r.started.isoformat()}
        with store.item_writer(item.id, attempt, meta={"config_hash": self._hash, "row": row_meta}) as w:
            w.write_latents({"ws": res.ws[0].float().cpu().numpy()}, metadata={"config_hash": self._hash})
            if res.delta:
                w.write_delta({k.replace("/", "_"): v.float().cpu().numpy() for k, v in res.delta.items()})
            w.write_render("input", _to_uint8(x[0]))
            for name, img, dz in zip(self.config.render.names(), views.image, views.depth_z, strict=True):
                w.write_render(name, _to_uint8(img))
                if self.config.render.depth:
                    w.write_depth(name, dz[0].float().cpu().numpy())
            w.write_metrics({**metrics, "stage2_steps": res.stage2_steps, "stopped_early": res.stopped_early,
                             "timings": dict(t), "config": self.config.to_json()})
        committed = w.committed
        assert committed is not None  # the writer commits on normal exit
        return IndexRow(id=item.id, status=Status.DONE, config_hash=self._hash, attempt=committed.attempt,
                        source_uri=item.uri, bytes=item.size, camera_label=tuple(camera), yaw=yaw, pitch=pitch,
                        metrics=metrics, stage_seconds=dict(t), worker=worker, code_version=self._version,
                        item_dir=committed.item_dir, outputs=dict(committed.outputs), started_at=r.started)


    def adopt_committed(self, item: InputItem, store: RunStore, worker: str | None) -> IndexRow | None:
        """The done row of an attempt of ``item`` already committed under this config hash, or None.

        One listing of ``items/<id>/`` per item. The row is rebuilt from the manifest (files) and the
        row fields the writer stored in it, so the adopted row equals the one the writer would have
        indexed; ``stage_seconds['adopted']`` marks it.
        """
        for item_dir, manifest in reversed(store.committed_attempts(item.id)):
            meta = manifest.get("meta") or {}
            row = meta.get("row")
            if meta.get("config_hash") != self._hash or not isinstance(row, dict):
                continue
            try:
                started = dt.datetime.fromisoformat(row["started_at"]) if row.get("started_at") else None
                label = row.get("camera_label")
                out = IndexRow(
                    id=item.id, status=Status.DONE, config_hash=self._hash, attempt=int(manifest["attempt"]),
                    source_uri=item.uri, bytes=item.size, camera_label=tuple(label) if label else None,
                    yaw=row.get("yaw"), pitch=row.get("pitch"), metrics=dict(row.get("metrics") or {}),
                    stage_seconds={**(row.get("stage_seconds") or {}), "adopted": 1.0},
                    worker=row.get("worker") or worker, code_version=row.get("code_version"), item_dir=item_dir,
                    outputs={k: v["path"] for k, v in manifest["files"].items()}, started_at=started)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("item %s: committed attempt %s has an unusable manifest (%s); redoing", item.id,
                            item_dir, exc)
                continue
            log.info("item %s: adopting committed attempt %s (no new work)", item.id, item_dir)
            return out
        return None


def _l1_pyramid(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    total = (x - y).abs().mean(dim=(1, 2, 3))
    for _ in range(2):
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        total = total + (x - y).abs().mean(dim=(1, 2, 3))
    return total / 3


def fast_losses() -> Any:
    """Loss set without LPIPS weights: multi-scale L1 perceptual stand-in (pipeline smoke tests only)."""
    from sym3dinv.invert.losses import LossFunctions, patch_contextual_loss

    return LossFunctions(perceptual=_l1_pyramid, contextual=patch_contextual_loss, lpips_metric=_l1_pyramid)


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def matches(uri: str, pattern: str) -> bool:
    """Shell-style match on the file name (used by tests' fault hooks and ``--only``)."""
    return fnmatch.fnmatch(posixpath.basename(uri), pattern)


def with_overrides(cfg: PipelineConfig, overrides: Mapping[str, Any]) -> PipelineConfig:
    return replace(cfg, overrides=tuple(cfg.overrides) + tuple(overrides.items()))
