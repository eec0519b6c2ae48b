"""The dataset job around the identity builder: plan (done identities not yet built), shards, finalize
(the EG3D ``dataset.json`` over every finished identity) and the build's summary (docs/datasets.md).

What the flow's tasks call (:func:`plan_dataset`, :func:`build_shard`, :func:`finalize_dataset`) and the
one-process :func:`build_dataset`; :class:`ShardResult.merge` is the one shard-merge both use.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sym3dinv.config.dataset import DatasetConfig
from sym3dinv.dataset.build import DatasetBuilder, DatasetOutput, ShardResult, is_built, json_bytes
from sym3dinv.dataset.exports import eg3d_dataset_json
from sym3dinv.errors import ConfigError

if TYPE_CHECKING:
    from sym3dinv.generator import TriPlaneGenerator
    from sym3dinv.store import IndexRow

log = logging.getLogger(__name__)
BUILD_FILE = "_build.json"


@dataclass(frozen=True)
class Plan:
    """Which identities of the store a build covers, and which of them still need work."""

    store: str
    out: str
    config_hash: str
    rows: tuple[IndexRow, ...]  # latest done index row per identity to build (all of them)
    todo: tuple[str, ...]  # ids still to build
    done: tuple[str, ...]  # ids already complete in OUT

    def shards(self, size: int) -> list[list[str]]:
        return [list(self.todo[i:i + size]) for i in range(0, len(self.todo), size)]


def _check_build_file(out: DatasetOutput, config: DatasetConfig, write: bool) -> str:
    """The build's config hash, checked against (and, writing, recorded in) ``OUT/_build.json``."""
    h = config.config_hash()
    prev = out.read_json(BUILD_FILE)
    if prev is not None and prev.get("config_hash") != h and write and not out.names("manifests", ".json"):
        prev = None  # nothing was finished under the old config (e.g. it failed on a bad edit): replace it
    if prev is not None and prev.get("config_hash") != h:
        raise ConfigError(f"{out.url} holds a dataset built with another config ({prev.get('config_hash')} != {h}); "
                          "use a new output location")
    if write and (prev is None or prev.get("config_hash") != h):
        out.atomic_write(BUILD_FILE, json_bytes({"config_hash": h, "config": config.hashed(),
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
    rows = store.done_rows(identities)
    if config.skip_poor:
        poor = [r.id for r in rows if r.quality == "poor_fit"]
        rows = [r for r in rows if r.quality != "poor_fit"]
        log.info("dataset %s: %d identities flagged poor_fit left out (--skip-poor)", out.url, len(poor))
    todo, done = [], []
    for r in rows:
        (done if is_built(out, r, h) else todo).append(r.id)
    log.info("dataset %s: %d identities in %s, %d already built, %d to build", out.url, len(rows), store.url,
             len(done), len(todo))
    return Plan(store.url, out.url, h, tuple(rows), tuple(todo), tuple(done))


def build_shard(store_url: str, out_url: str, config: DatasetConfig, ids: Sequence[str], *,
                storage_options: Mapping[str, Any] | None = None,
                out_storage_options: Mapping[str, Any] | None = None,
                generator: TriPlaneGenerator | None = None) -> ShardResult:
    """Build the identities ``ids`` (one worker: generators loaded once for the shard)."""
    from sym3dinv.store import RunStore

    store = RunStore(store_url, storage_options)
    out = DatasetOutput(out_url, out_storage_options if out_storage_options is not None else storage_options)
    rows = store.done_rows(ids)
    return DatasetBuilder(store, out, config, generator).build_many(rows)


@dataclass(frozen=True)
class DatasetSummary:
    """What a build did and where its outputs are (the flow returns it, the CLI prints it)."""

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
    for name in out.names("manifests", ".json"):
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
    by_id = {r.id: r for r in plan.rows}
    results = []
    if plan.todo:
        builder = DatasetBuilder(RunStore(store_url, storage_options), DatasetOutput(out_url, oso), config, generator)
        builder.check_generators([by_id[i] for i in plan.todo])  # every identity, before any rendering
        results = [builder.build_many([by_id[i] for i in shard], progress) for shard in plan.shards(config.shard_size)]
    res = ShardResult.merge(results)
    _, total = finalize_dataset(out_url, config, out_storage_options=oso)
    return summarize(plan, res, total, time.perf_counter() - t0)


def summarize(plan: Plan, res: ShardResult, total_images: int, seconds: float) -> DatasetSummary:
    """The summary of a build from its plan, its shards' merged results and finalize's image count."""
    out = plan.out
    return DatasetSummary(out=out, config_hash=plan.config_hash, identities=len(plan.rows), built=len(res.built),
                          skipped=len(plan.done) + len(res.skipped), failed=list(res.failed), images=total_images,
                          new_images=res.images, meshes=res.meshes, seconds=seconds, dataset_json=f"{out}/rgb/dataset.json",
                          index=f"{out}/index", scenes=f"{out}/scenes")
