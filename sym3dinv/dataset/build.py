"""Build the identities of a multi-view dataset from a finished run store (docs/datasets.md).

For every done identity of the store: render a camera set with its tuned generator (G + delta) for the
pivot latent and each requested latent edit, and write RGB, depth, mask and alpha, optional meshes, a
nerfstudio ``transforms.json`` per (identity, edit), one Parquet index part per identity and, last, the
identity's manifest. The job around it (plan, shards, ``finalize``'s EG3D ``dataset.json``) is
:mod:`sym3dinv.dataset.job`.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sym3dinv.config.dataset import ORIG, DatasetConfig, EditSpec
from sym3dinv.dataset.camera_sets import CameraSet, camera_set
from sym3dinv.dataset.exports import (
    index_table,
    nerfstudio_frame,
    opencv_to_opengl,
    pixel_intrinsics,
    split_label,
    transforms_json,
)
from sym3dinv.errors import ConfigError, StoreError, Sym3dInvError
from sym3dinv.store.root import StoreRoot

if TYPE_CHECKING:
    from sym3dinv.dataset.render import Identity, Views
    from sym3dinv.generator import TriPlaneGenerator
    from sym3dinv.store import IndexRow, RunStore

log = logging.getLogger(__name__)
CONVENTION = "transform_matrix = c2w OpenGL = c2w_cv @ diag(1,-1,-1,1)"


class DatasetOutput(StoreRoot):
    """Root of a dataset on any fsspec URL: the store's root layer (safe paths, whole-file and atomic
    writes, one retry policy), named ``dataset output`` in its errors."""

    kind = "dataset output"


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=False).encode()


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def is_built(out: DatasetOutput, row: IndexRow, config_hash: str) -> bool:
    """True when ``out`` holds the identity of ``row`` complete under ``config_hash`` (its manifest names the
    same store item): resume skips it."""
    m = out.read_json(f"manifests/{row.id}.json")
    return m is not None and m.get("config_hash") == config_hash and m.get("item_dir") == row.item_dir


@dataclass
class ShardResult:
    """What one shard (or a whole build, merged) did."""

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0
    meshes: int = 0
    seconds: float = 0.0

    @classmethod
    def merge(cls, results: Sequence[ShardResult]) -> ShardResult:
        """One result of several shards' (seconds: the sum of their own)."""
        out = cls()
        for r in results:
            out.built += r.built
            out.skipped += r.skipped
            out.failed += r.failed
            out.images += r.images
            out.meshes += r.meshes
            out.seconds += r.seconds
        return out


@dataclass
class _Written:
    """What an identity's variants have written so far: the index rows, dataset.json entries, files, meshes."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    images: list[list[Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    meshes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Variant:
    """One latent of an identity being written: the pivot (``orig``) or an edit at one strength."""

    ident: Identity
    G: TriPlaneGenerator
    tensors: Any
    source: str
    name: str
    edit: str
    strength: float
    ws: np.ndarray

    @property
    def scene(self) -> str:
        return f"scenes/{self.ident.id}/{self.name}"


class DatasetBuilder:
    """Holds loaded generators and edit directions across identities (one per shard/worker)."""

    def __init__(self, store: RunStore, out: DatasetOutput, config: DatasetConfig,
                 generator: TriPlaneGenerator | None = None) -> None:
        self.store, self.out, self.config = store, out, config
        self.cams: CameraSet = camera_set(config.cameras)
        self.frontal = int(np.argmin(np.abs(self.cams.yaw) + np.abs(self.cams.pitch)))
        self.config_hash = config.config_hash()
        self._generators: dict[str, TriPlaneGenerator] = {}
        self._given = generator
        self._directions: dict[tuple[str, int], np.ndarray] = {}
        self._fingerprints: dict[int, str] = {}
        self.rendered: list[str] = []  # ids rendered by this builder (tests count re-renders with it)

    def generator(self, source: str) -> TriPlaneGenerator:
        if self._given is not None:
            return self._given
        if source not in self._generators:
            from sym3dinv.generator import load_generator

            self._generators[source] = load_generator(source, device=self.config.device)
        return self._generators[source]

    def check_generators(self, rows: Sequence[IndexRow]) -> None:
        """Refuse (:class:`~sym3dinv.errors.GeneratorMismatchError`, unless ``config.force``) rows inverted by
        another generator (fingerprint) than the one each would be rendered with; before any rendering."""
        from sym3dinv.edit.apply import store_generator_source
        from sym3dinv.generator.fingerprint import generator_fingerprint
        from sym3dinv.store.fingerprints import check_rows

        by_source: dict[str, list[IndexRow]] = {}
        for r in rows:
            if r.generator_fingerprint:
                source = self.config.generator or store_generator_source(self.store, r)
                by_source.setdefault(source, []).append(r)
        for source, group in by_source.items():
            G = self.generator(source)
            if id(G) not in self._fingerprints:
                self._fingerprints[id(G)] = generator_fingerprint(G)
            check_rows(group, self._fingerprints[id(G)], source, what="dataset build", force=self.config.force)

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

    def resolutions(self, G: TriPlaneGenerator) -> tuple[int, int]:
        """(RGB, depth/alpha) resolution of the renders: the config's, else the generator's own."""
        return (int(self.config.resolution or G.img_resolution),
                int(self.config.depth_resolution or G.neural_rendering_resolution))

    def build_identity(self, row: IndexRow) -> dict[str, Any]:
        """Render and write one identity; returns its manifest (written last)."""
        import pyarrow.parquet as pq

        from sym3dinv.dataset.render import delta_tensors, load_identity

        t0 = time.perf_counter()
        ident = load_identity(self.store, row)
        source = self.config.generator or ident.generator or "synthheads"
        G = self.generator(source)
        if ident.ws.shape != (G.num_ws, G.w_dim):
            raise StoreError(f"identity {ident.id}: ws {ident.ws.shape} does not fit generator {source} "
                             f"([{G.num_ws}, {G.w_dim}])")
        tensors = delta_tensors(G, ident.delta)
        acc = _Written()
        variants = self.variants(G, ident.ws)
        for name, edit, strength, ws in variants:
            self._write_variant(_Variant(ident, G, tensors, source, name, edit, strength, ws), acc)
        buf = io.BytesIO()
        pq.write_table(index_table(acc.rows), buf, compression="zstd")
        acc.files.append(self.out.atomic_write(f"index/part-{ident.id}.parquet", buf.getvalue()))
        manifest = {"identity": ident.id, "item_dir": ident.item_dir, "source_uri": ident.source_uri,
                    "config_hash": self.config_hash, "generator": source, "resolution": self.resolutions(G)[0],
                    "variants": [v[0] for v in variants], "images": acc.images, "rows": len(acc.rows),
                    "meshes": acc.meshes, "files": acc.files, "seconds": round(time.perf_counter() - t0, 3),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if row.members is not None:  # a group: one identity from several photos of one person
            manifest["group"] = {"name": row.group_name, "photos": list(row.members_used or ())}
        self.out.atomic_write(f"manifests/{ident.id}.json", json_bytes(manifest))
        self.rendered.append(ident.id)
        log.info("identity %s: %d images, %d meshes in %.1f s", ident.id, len(acc.rows), len(acc.meshes),
                 manifest["seconds"])
        return manifest

    def _write_variant(self, v: _Variant, acc: _Written) -> None:
        """Render one latent at every camera and write its images, mesh and transforms.json."""
        from sym3dinv.dataset.render import compute_planes, render_identity

        cfg = self.config
        res, dres = self.resolutions(v.G)
        planes = compute_planes(v.G, v.ws, v.tensors)  # once per latent: renders and mesh share them
        views = render_identity(v.G, v.ws, self.cams.labels, tensors=v.tensors, resolution=res,
                                depth_resolution=dres, chunk=cfg.chunk, planes=planes)
        mesh_rel, mesh_metrics = self._write_mesh(v, planes, views, dres, acc) if cfg.mesh else (None, {})
        frames = [self._write_view(v, views, i, mesh_rel, mesh_metrics, acc) for i in range(len(self.cams.names))]
        extra: dict[str, Any] = {"depth_unit_scale_factor": cfg.depth_unit,
                                 "sym3dinv": {"identity": v.ident.id, "edit": v.edit, "strength": v.strength,
                                              "variant": v.name, "source_uri": v.ident.source_uri,
                                              "camera_convention": CONVENTION}}
        if mesh_rel is not None and mesh_rel.endswith(".ply"):
            extra["ply_file_path"] = posixpath.relpath(mesh_rel, v.scene)
        acc.files.append(self.out.write(f"{v.scene}/transforms.json", json_bytes(transforms_json(frames, extra=extra))))

    def _write_mesh(self, v: _Variant, planes: Any, views: Views, dres: int,
                    acc: _Written) -> tuple[str | None, dict[str, float]]:
        """Marching-cubes mesh of one latent in each configured format; its checks against the frontal depth."""
        from sym3dinv.dataset.mesh import depth_map, extract_mesh, mesh_bytes, mesh_stats

        cfg, f = self.config, self.frontal
        try:
            verts, faces, colors = extract_mesh(v.G, v.ws, tensors=v.tensors, resolution=cfg.mesh_resolution,
                                                threshold=cfg.mesh_threshold, keep_largest=cfg.mesh_keep_largest,
                                                planes=planes)
        except ValueError as exc:  # nothing crosses the level: no mesh for this variant, said so
            log.warning("identity %s %s: no mesh (%s)", v.ident.id, v.name, exc)
            acc.meshes[v.name] = {"error": str(exc)}
            return None, {}
        rels = [self.out.write(f"meshes/{v.ident.id}/{v.name}.{fmt}", mesh_bytes(verts, faces, colors, fmt))
                for fmt in cfg.mesh_formats]
        acc.files += rels
        st = mesh_stats(verts, faces)
        zb = depth_map(verts, faces, self.cams.labels[f], dres)
        sel = views.alpha[f] > cfg.mask_threshold
        err = np.abs(zb - views.depth[f])[sel]
        metrics = {"mesh/frontal_depth_median_abs": float(np.median(err)) if err.size else float("nan"),
                   "mesh/frontal_hit_fraction": float(np.isfinite(zb[sel]).mean()) if sel.any() else 0.0,
                   "mesh/boundary_edge_fraction": st.boundary_edge_fraction}
        acc.meshes[v.name] = {"vertices": st.vertices, "faces": st.faces, "watertight": st.watertight, **metrics}
        return (rels[0] if rels else None), metrics

    def _write_view(self, v: _Variant, views: Views, i: int, mesh_rel: str | None, mesh_metrics: dict[str, float],
                    acc: _Written) -> dict[str, Any]:
        """Write view ``i`` of one latent (RGB, depth, mask, alpha) and its index row; its nerfstudio frame."""
        cfg, out, name, label = self.config, self.out, self.cams.names[i], self.cams.labels[i]
        res, _ = self.resolutions(v.G)
        rgb_rel = out.write(f"rgb/{v.ident.id}/{v.name}/{name}.png", _png(views.rgb[i]))
        alpha = views.alpha[i]
        alpha_rgb = _resize_map(alpha, res) if alpha.shape[-1] != res else alpha
        mask = (alpha_rgb > cfg.mask_threshold).astype(np.uint8) * 255
        z, keep = views.depth[i], alpha > cfg.mask_threshold
        dq = np.where(keep, np.clip(np.round(z / cfg.depth_unit), 0, 65535), 0).astype(np.uint16)
        depth_rel = out.write(f"{v.scene}/depth/{name}.png", _png(dq))
        mask_rel = out.write(f"{v.scene}/masks/{name}.png", _png(mask))
        alpha_rel = out.write(f"{v.scene}/alpha/{name}.png", _png((alpha_rgb * 255).round().astype(np.uint8)))
        acc.files += [rgb_rel, depth_rel, mask_rel, alpha_rel]
        acc.images.append([posixpath.relpath(rgb_rel, "rgb"), [float(x) for x in label]])
        c2w, K = split_label(label)
        zs = z[keep]
        acc.rows.append({
            "identity": v.ident.id, "source_uri": v.ident.source_uri, "edit": v.edit, "strength": v.strength,
            "variant": v.name, "view": name, "view_index": i, "camera_set": cfg.cameras.kind,
            "yaw": float(self.cams.yaw[i]), "pitch": float(self.cams.pitch[i]), "camera_label": label,
            "transform_matrix": opencv_to_opengl(c2w).reshape(-1), **pixel_intrinsics(K, res, res),
            "width": res, "height": res, "rgb_path": rgb_rel, "depth_path": depth_rel, "mask_path": mask_rel,
            "alpha_path": alpha_rel, "transforms_path": f"{v.scene}/transforms.json", "mesh_path": mesh_rel,
            "metrics": {**{f"inversion/{k}": m for k, m in v.ident.metrics.items()}, **mesh_metrics,
                        "mask_fraction": float(mask.mean() / 255),
                        "depth_min": float(zs.min()) if zs.size else float("nan"),
                        "depth_max": float(zs.max()) if zs.size else float("nan")},
            "generator": v.source, "config_hash": self.config_hash,
        })
        return nerfstudio_frame(label, res, res, posixpath.relpath(rgb_rel, v.scene),
                                depth_file_path=posixpath.relpath(depth_rel, v.scene),
                                mask_path=posixpath.relpath(mask_rel, v.scene), extra={"view": name})

    def build_many(self, rows: Sequence[IndexRow],
                   progress: Callable[[str, dict[str, Any] | None], None] | None = None) -> ShardResult:
        """Build each identity not already complete; per-identity data problems are recorded, not raised."""
        t0 = time.perf_counter()
        res = ShardResult()
        self.check_generators([r for r in rows if not is_built(self.out, r, self.config_hash)])
        for row in rows:
            if is_built(self.out, row, self.config_hash):
                res.skipped.append(row.id)  # finished by an earlier (or racing) attempt
                continue
            try:
                m = self.build_identity(row)
            except Sym3dInvError as exc:
                if isinstance(exc, ConfigError) and not isinstance(exc, StoreError):
                    raise
                log.warning("identity %s failed: %s", row.id, exc)
                res.failed.append((row.id, str(exc)))
                if progress:
                    progress(row.id, None)
                continue
            res.built.append(row.id)
            res.images += int(m["rows"])
            res.meshes += sum("error" not in v for v in m["meshes"].values()) * len(self.config.mesh_formats)
            if progress:
                progress(row.id, m)
        res.seconds = time.perf_counter() - t0
        return res


def _resize_map(x: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None]
    mode = "area" if x.shape[-1] > size else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(t, size=(size, size), mode=mode, **kw)[0, 0].numpy()
