"""Build a multi-view dataset from a finished run store (docs/datasets.md).

For every done identity of the store: render a camera set with its tuned generator (G + delta) for the
pivot latent and each requested latent edit, and write RGB, depth, mask and alpha, optional meshes, a
nerfstudio ``transforms.json`` per (identity, edit), one Parquet index part per identity and, last, the
identity's manifest. ``finalize`` then writes the EG3D ``dataset.json`` over every finished identity.

Layout under ``OUT`` (any fsspec URL)::

    _build.json                                  config + hash of the build (a rerun must match it)
    rgb/dataset.json                             EG3D/StyleGAN labels of every image below
    rgb/<id>/<variant>/<view>.png                RGB only (EG3D's loader walks this folder)
    scenes/<id>/<variant>/transforms.json        nerfstudio / instant-ngp scene
    scenes/<id>/<variant>/depth/<view>.png       uint16 z-depth / depth_unit (0 = background)
    scenes/<id>/<variant>/masks/<view>.png       uint8 0/255: alpha > mask_threshold
    scenes/<id>/<variant>/alpha/<view>.png       uint8 opacity * 255
    meshes/<id>/<variant>.ply|.glb               marching-cubes mesh with vertex colours
    index/part-<id>.parquet                      one row per image (exports.INDEX_SCHEMA)
    manifests/<id>.json                          written LAST: the identity is complete

``<variant>`` is ``orig`` (the inverted latent) or ``<edit><strength>`` such as ``smile+1``. Resume:
an identity whose manifest exists (and points at the same store item) is skipped, so rerunning a
finished build renders nothing; a build killed mid-identity redoes only that identity (all names
are deterministic, so the redo overwrites its partial files).
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np

from sym3dinv.config.dataset import ORIG, DatasetConfig, EditSpec
from sym3dinv.dataset.camera_sets import CameraSet, camera_set
from sym3dinv.dataset.exports import (
    eg3d_dataset_json,
    index_table,
    nerfstudio_frame,
    opencv_to_opengl,
    pixel_intrinsics,
    split_label,
    transforms_json,
)
from sym3dinv.errors import ConfigError, StoreError, Sym3dInvError

if TYPE_CHECKING:
    from sym3dinv.generator import TriPlaneGenerator
    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)

BUILD_FILE = "_build.json"


# --- output location -------------------------------------------------------------------------------------
class DatasetOutput:
    """Root of a dataset on any fsspec URL: whole-file writes, atomic where it matters."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url:
            raise ConfigError("dataset output URL is empty")
        self.url = url.rstrip("/") or "/"
        self.options = dict(storage_options or {})
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **self.options)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"cannot open dataset output {self.url}: {exc}") from exc
        self.root = root.rstrip("/") if root not in ("/", "") else root
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.is_local = "file" in protocols

    def __reduce__(self) -> tuple[Any, ...]:
        return (DatasetOutput, (self.url, self.options))

    def path(self, rel: str) -> str:
        rel = posixpath.normpath(rel)
        if rel.startswith(("/", "..")) or rel == ".":
            raise StoreError(f"path {rel!r} escapes the dataset root")
        return posixpath.join(self.root, rel) if self.root else rel

    def write(self, rel: str, data: bytes) -> str:
        p = self.path(rel)
        if self.is_local:
            self.fs.makedirs(posixpath.dirname(p), exist_ok=True)
        self.fs.pipe_file(p, data)
        return rel

    def atomic_write(self, rel: str, data: bytes) -> str:
        """Appear complete or not at all: temp + rename locally, a single PUT on object stores."""
        p = self.path(rel)
        if not self.is_local:
            self.fs.pipe_file(p, data)
            return rel
        tmp = posixpath.join(posixpath.dirname(p), f".tmp-{time.time_ns()}-{posixpath.basename(p)}")
        self.fs.makedirs(posixpath.dirname(p), exist_ok=True)
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, p)
        return rel

    def read(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def read_json(self, rel: str) -> Any | None:
        try:
            return json.loads(self.read(rel))
        except (FileNotFoundError, OSError, ValueError):
            return None

    def list(self, rel: str, suffix: str = "") -> list[str]:
        try:
            names = self.fs.ls(self.path(rel), detail=False)
        except (FileNotFoundError, OSError):
            return []
        return sorted(posixpath.basename(n.rstrip("/")) for n in names if n.endswith(suffix))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=False).encode()


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


# --- planning ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Which identities of the store a build covers, and which of them still need work."""

    store: str
    out: str
    config_hash: str
    rows: tuple[dict[str, Any], ...]  # latest done index row per identity to build (all of them)
    todo: tuple[str, ...]  # ids still to build
    done: tuple[str, ...]  # ids already complete in OUT

    def shards(self, size: int) -> list[list[str]]:
        return [list(self.todo[i:i + size]) for i in range(0, len(self.todo), size)]


def done_rows(store: RunStore, identities: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Latest done index row per id (optionally only ``identities``; unknown or not-done ids are an error)."""
    import pyarrow.compute as pc

    t = store.latest(["status", "item_dir", "outputs", "source_uri", "metrics", "camera_label", "config_hash"])
    t = t.filter(pc.equal(t["status"], "done"))
    rows = {r["id"]: r for r in t.to_pylist()}
    if identities is not None:
        missing = [i for i in identities if i not in rows]
        if missing:
            raise ConfigError(f"{len(missing)} requested identities are not done in {store.url}: {missing[:5]}")
        return [rows[i] for i in dict.fromkeys(identities)]
    return [rows[k] for k in sorted(rows)]


def _check_build_file(out: DatasetOutput, config: DatasetConfig, write: bool) -> str:
    h = config.config_hash()
    prev = out.read_json(BUILD_FILE)
    if prev is not None and prev.get("config_hash") != h and write and not out.list("manifests", ".json"):
        prev = None  # nothing was finished under the old config (e.g. it failed on a bad edit): replace it
    if prev is not None and prev.get("config_hash") != h:
        raise ConfigError(f"{out.url} holds a dataset built with another config ({prev.get('config_hash')} != {h}); "
                          "use a new output location")
    if write and (prev is None or prev.get("config_hash") != h):
        out.atomic_write(BUILD_FILE, _json_bytes({"config_hash": h, "config": config.hashed(),
                                                  "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return h


def plan_dataset(store_url: str, out_url: str, config: DatasetConfig, identities: Sequence[str] | None = None, *,
                 storage_options: Mapping[str, Any] | None = None,
                 out_storage_options: Mapping[str, Any] | None = None) -> Plan:
    """List the store's done identities, record the build config in OUT, and drop complete identities."""
    from sym3dinv.store import RunStore

    store = RunStore.open_existing(store_url, storage_options)  # before OUT gets anything
    out = DatasetOutput(out_url, out_storage_options if out_storage_options is not None else storage_options)
    h = _check_build_file(out, config, write=True)
    rows = done_rows(store, identities)
    todo, done = [], []
    for r in rows:
        m = out.read_json(f"manifests/{r['id']}.json")
        if m is not None and m.get("config_hash") == h and m.get("item_dir") == r["item_dir"]:
            done.append(r["id"])
        else:
            todo.append(r["id"])
    log.info("dataset %s: %d identities in %s, %d already built, %d to build", out.url, len(rows), store.url,
             len(done), len(todo))
    return Plan(store.url, out.url, h, tuple(rows), tuple(todo), tuple(done))


# --- building ------------------------------------------------------------------------------------------
@dataclass
class ShardResult:
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0
    meshes: int = 0
    seconds: float = 0.0


class DatasetBuilder:
    """Holds loaded generators and edit directions across identities (one per shard/worker)."""

    def __init__(self, store: RunStore, out: DatasetOutput, config: DatasetConfig,
                 generator: TriPlaneGenerator | None = None) -> None:
        self.store, self.out, self.config = store, out, config
        self.cams: CameraSet = camera_set(config.cameras)
        self.config_hash = config.config_hash()
        self._generators: dict[str, TriPlaneGenerator] = {}
        self._given = generator
        self._directions: dict[tuple[str, int], np.ndarray] = {}
        self.rendered: list[str] = []  # ids rendered by this builder (tests count re-renders with it)

    def generator(self, source: str) -> TriPlaneGenerator:
        if self._given is not None:
            return self._given
        if source not in self._generators:
            from sym3dinv.generator import load_generator

            self._generators[source] = load_generator(source, device=self.config.device)
        return self._generators[source]

    def direction(self, edit: EditSpec, G: TriPlaneGenerator) -> np.ndarray:
        key = (edit.name, id(G))
        if key not in self._directions:
            from sym3dinv.edit import load_direction

            self._directions[key] = load_direction(edit.path, G.w_dim, G.num_ws)
        return self._directions[key]

    def variants(self, G: TriPlaneGenerator, ws: np.ndarray) -> list[tuple[str, str, float, np.ndarray]]:
        from sym3dinv.edit import apply_edit

        out = [(ORIG, "", 0.0, ws)]
        for e in self.config.edits:
            d = self.direction(e, G)
            out += [(e.variant(s), e.name, float(s), apply_edit(ws, d, s)) for s in e.strengths]
        return out

    def build_identity(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Render and write one identity; returns its manifest (written last)."""
        from sym3dinv.dataset.mesh import depth_map, extract_mesh, mesh_bytes, mesh_stats
        from sym3dinv.dataset.render import compute_planes, delta_tensors, load_identity, render_identity

        t0 = time.perf_counter()
        cfg, out, cams = self.config, self.out, self.cams
        ident = load_identity(self.store, row)
        source = cfg.generator or ident.generator or "synthheads"
        G = self.generator(source)
        if ident.ws.shape != (G.num_ws, G.w_dim):
            raise StoreError(f"identity {ident.id}: ws {ident.ws.shape} does not fit generator {source} "
                             f"([{G.num_ws}, {G.w_dim}])")
        tensors = delta_tensors(G, ident.delta)
        res = int(cfg.resolution or G.img_resolution)
        dres = int(cfg.depth_resolution or G.neural_rendering_resolution)
        frontal = int(np.argmin(np.abs(cams.yaw) + np.abs(cams.pitch)))
        rows: list[dict[str, Any]] = []
        images: list[list[Any]] = []
        files: list[str] = []
        mesh_info: dict[str, Any] = {}
        inv_metrics = {f"inversion/{k}": v for k, v in ident.metrics.items()}
        variants = self.variants(G, ident.ws)
        for variant, edit, strength, ws in variants:
            planes = compute_planes(G, ws, tensors)  # once per latent: renders and mesh share them
            views = render_identity(G, ws, cams.labels, tensors=tensors, resolution=res, depth_resolution=dres,
                                    chunk=cfg.chunk, planes=planes)
            scene = f"scenes/{ident.id}/{variant}"
            mesh_rel: str | None = None
            mesh_metrics: dict[str, float] = {}
            verts = None
            if cfg.mesh:
                try:
                    verts, faces, colors = extract_mesh(G, ws, tensors=tensors, resolution=cfg.mesh_resolution,
                                                        threshold=cfg.mesh_threshold, keep_largest=cfg.mesh_keep_largest,
                                                        planes=planes)
                except ValueError as exc:  # nothing crosses the level: no mesh for this variant, said so
                    log.warning("identity %s %s: no mesh (%s)", ident.id, variant, exc)
                    mesh_info[variant] = {"error": str(exc)}
                    verts = None
            if cfg.mesh and verts is not None:
                for fmt in cfg.mesh_formats:
                    rel = out.write(f"meshes/{ident.id}/{variant}.{fmt}", mesh_bytes(verts, faces, colors, fmt))
                    files.append(rel)
                    mesh_rel = mesh_rel or rel
                st = mesh_stats(verts, faces)
                zb = depth_map(verts, faces, cams.labels[frontal], dres)
                sel = views.alpha[frontal] > cfg.mask_threshold
                err = np.abs(zb - views.depth[frontal])[sel]
                mesh_metrics = {"mesh/frontal_depth_median_abs": float(np.median(err)) if err.size else float("nan"),
                                "mesh/frontal_hit_fraction": float(np.isfinite(zb[sel]).mean()) if sel.any() else 0.0,
                                "mesh/boundary_edge_fraction": st.boundary_edge_fraction}
                mesh_info[variant] = {"vertices": st.vertices, "faces": st.faces, "watertight": st.watertight,
                                      **mesh_metrics}
            frames = []
            for v, name in enumerate(cams.names):
                label = cams.labels[v]
                rgb_rel = f"rgb/{ident.id}/{variant}/{name}.png"
                out.write(rgb_rel, _png(views.rgb[v]))
                alpha = views.alpha[v]
                alpha_rgb = _resize_map(alpha, res) if dres != res else alpha
                mask = (alpha_rgb > cfg.mask_threshold).astype(np.uint8) * 255
                z = views.depth[v]
                keep = alpha > cfg.mask_threshold
                dq = np.where(keep, np.clip(np.round(z / cfg.depth_unit), 0, 65535), 0).astype(np.uint16)
                depth_rel = out.write(f"{scene}/depth/{name}.png", _png(dq))
                mask_rel = out.write(f"{scene}/masks/{name}.png", _png(mask))
                alpha_rel = out.write(f"{scene}/alpha/{name}.png", _png((alpha_rgb * 255).round().astype(np.uint8)))
                files += [rgb_rel, depth_rel, mask_rel, alpha_rel]
                images.append([posixpath.relpath(rgb_rel, "rgb"), [float(x) for x in label]])
                frames.append(nerfstudio_frame(label, res, res, posixpath.relpath(rgb_rel, scene),
                                               depth_file_path=posixpath.relpath(depth_rel, scene),
                                               mask_path=posixpath.relpath(mask_rel, scene),
                                               extra={"view": name}))
                c2w, K = split_label(label)
                zs = z[keep]
                rows.append({
                    "identity": ident.id, "source_uri": ident.source_uri, "edit": edit, "strength": strength,
                    "variant": variant, "view": name, "view_index": v, "camera_set": cfg.cameras.kind,
                    "yaw": float(cams.yaw[v]), "pitch": float(cams.pitch[v]), "camera_label": label,
                    "transform_matrix": opencv_to_opengl(c2w).reshape(-1), **pixel_intrinsics(K, res, res),
                    "width": res, "height": res, "rgb_path": rgb_rel, "depth_path": depth_rel, "mask_path": mask_rel,
                    "alpha_path": alpha_rel, "transforms_path": f"{scene}/transforms.json", "mesh_path": mesh_rel,
                    "metrics": {**inv_metrics, **mesh_metrics, "mask_fraction": float(mask.mean() / 255),
                                "depth_min": float(zs.min()) if zs.size else float("nan"),
                                "depth_max": float(zs.max()) if zs.size else float("nan")},
                    "generator": source, "config_hash": self.config_hash,
                })
            extra: dict[str, Any] = {"depth_unit_scale_factor": cfg.depth_unit,
                                     "sym3dinv": {"identity": ident.id, "edit": edit, "strength": strength,
                                                  "variant": variant, "source_uri": ident.source_uri,
                                                  "camera_convention": "transform_matrix = c2w OpenGL = c2w_cv @ diag(1,-1,-1,1)"}}
            if mesh_rel is not None and mesh_rel.endswith(".ply"):
                extra["ply_file_path"] = posixpath.relpath(mesh_rel, scene)
            files.append(out.write(f"{scene}/transforms.json", _json_bytes(transforms_json(frames, extra=extra))))
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(index_table(rows), buf, compression="zstd")
        files.append(out.atomic_write(f"index/part-{ident.id}.parquet", buf.getvalue()))
        manifest = {"identity": ident.id, "item_dir": ident.item_dir, "source_uri": ident.source_uri,
                    "config_hash": self.config_hash, "generator": source, "resolution": res,
                    "variants": [v[0] for v in variants], "images": images, "rows": len(rows),
                    "meshes": mesh_info, "files": files, "seconds": round(time.perf_counter() - t0, 3),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        out.atomic_write(f"manifests/{ident.id}.json", _json_bytes(manifest))
        self.rendered.append(ident.id)
        log.info("identity %s: %d images, %d meshes in %.1f s", ident.id, len(rows), len(mesh_info), manifest["seconds"])
        return manifest

    def build_many(self, rows: Sequence[Mapping[str, Any]],
                   progress: Callable[[str, dict[str, Any] | None], None] | None = None) -> ShardResult:
        """Build each identity not already complete; per-identity data problems are recorded, not raised."""
        t0 = time.perf_counter()
        res = ShardResult()
        for row in rows:
            m = self.out.read_json(f"manifests/{row['id']}.json")
            if m is not None and m.get("config_hash") == self.config_hash and m.get("item_dir") == row["item_dir"]:
                res.skipped.append(row["id"])  # finished by an earlier (or racing) attempt
                continue
            try:
                m = self.build_identity(row)
            except Sym3dInvError as exc:
                if isinstance(exc, ConfigError) and not isinstance(exc, StoreError):
                    raise
                log.warning("identity %s failed: %s", row["id"], exc)
                res.failed.append((row["id"], str(exc)))
                if progress:
                    progress(row["id"], None)
                continue
            res.built.append(row["id"])
            res.images += int(m["rows"])
            res.meshes += sum("error" not in v for v in m["meshes"].values()) * len(self.config.mesh_formats)
            if progress:
                progress(row["id"], m)
        res.seconds = time.perf_counter() - t0
        return res


def _resize_map(x: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None]
    mode = "area" if x.shape[-1] > size else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(t, size=(size, size), mode=mode, **kw)[0, 0].numpy()


def build_shard(store_url: str, out_url: str, config: DatasetConfig, ids: Sequence[str], *,
                storage_options: Mapping[str, Any] | None = None,
                out_storage_options: Mapping[str, Any] | None = None,
                generator: TriPlaneGenerator | None = None) -> ShardResult:
    """Build the identities ``ids`` (one worker: generators loaded once for the shard)."""
    from sym3dinv.store import RunStore

    store = RunStore(store_url, storage_options)
    out = DatasetOutput(out_url, out_storage_options if out_storage_options is not None else storage_options)
    rows = done_rows(store, ids)
    return DatasetBuilder(store, out, config, generator).build_many(rows)


# --- finishing -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSummary:
    out: str
    config_hash: str
    identities: int
    built: int
    skipped: int
    failed: list[tuple[str, str]]
    images: int
    """Images in the dataset (all complete identities)."""
    new_images: int
    """Images rendered by this call."""
    meshes: int
    seconds: float
    dataset_json: str
    index: str
    scenes: str

    def lines(self) -> list[str]:
        return [f"dataset {self.out}: {self.identities} identities ({self.built} built, {self.skipped} already done, "
                f"{len(self.failed)} failed), {self.images} images ({self.new_images} new), {self.meshes} new meshes "
                f"in {self.seconds:.1f} s",
                f"  EG3D dataset.json : {self.dataset_json}",
                f"  nerfstudio scenes : {self.scenes}/<identity>/<variant>/transforms.json",
                f"  Parquet index     : {self.index}/part-*.parquet"]


def finalize_dataset(out_url: str, config: DatasetConfig, *,
                     out_storage_options: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """Write ``rgb/dataset.json`` over every complete identity; returns (identities, images)."""
    out = DatasetOutput(out_url, out_storage_options)
    h = _check_build_file(out, config, write=False)
    entries: list[tuple[str, Sequence[float]]] = []
    n = 0
    for name in out.list("manifests", ".json"):
        m = out.read_json(f"manifests/{name}")
        if m is None or m.get("config_hash") != h:
            continue
        n += 1
        entries += [(rel, lab) for rel, lab in m["images"]]
    out.atomic_write("rgb/dataset.json", json.dumps(eg3d_dataset_json(entries)).encode())
    return n, len(entries)


def build_dataset(store_url: str, out_url: str, config: DatasetConfig | None = None,
                  identities: Sequence[str] | None = None, *, storage_options: Mapping[str, Any] | None = None,
                  out_storage_options: Mapping[str, Any] | None = None,
                  generator: TriPlaneGenerator | None = None,
                  progress: Callable[[str, dict[str, Any] | None], None] | None = None) -> DatasetSummary:
    """Build (or finish) the dataset of ``store_url`` in ``out_url``; see the module doc for the layout.

    ``identities``: item ids to include (default: every done item). ``storage_options`` go to the
    store's fsspec filesystem (and OUT's unless ``out_storage_options`` is given). ``generator``: use
    this loaded generator for every identity (tests, notebooks) instead of loading the recorded one.
    """
    from sym3dinv.store import RunStore

    t0 = time.perf_counter()
    config = config or DatasetConfig()
    oso = out_storage_options if out_storage_options is not None else storage_options
    plan = plan_dataset(store_url, out_url, config, identities, storage_options=storage_options, out_storage_options=oso)
    by_id = {r["id"]: r for r in plan.rows}
    res = ShardResult()
    if plan.todo:
        builder = DatasetBuilder(RunStore(store_url, storage_options), DatasetOutput(out_url, oso), config, generator)
        for shard in plan.shards(config.shard_size):
            r = builder.build_many([by_id[i] for i in shard], progress)
            res.built += r.built
            res.skipped += r.skipped
            res.failed += r.failed
            res.images += r.images
            res.meshes += r.meshes
    _, total = finalize_dataset(out_url, config, out_storage_options=oso)
    return summarize(plan, res, total, time.perf_counter() - t0)


def summarize(plan: Plan, res: ShardResult, total_images: int, seconds: float) -> DatasetSummary:
    """The summary of a build from its plan, its shards' merged results and finalize's image count."""
    out = plan.out
    return DatasetSummary(out=out, config_hash=plan.config_hash, identities=len(plan.rows), built=len(res.built),
                          skipped=len(plan.done) + len(res.skipped), failed=list(res.failed), images=total_images,
                          new_images=res.images, meshes=res.meshes, seconds=seconds, dataset_json=f"{out}/rgb/dataset.json",
                          index=f"{out}/index", scenes=f"{out}/scenes")
