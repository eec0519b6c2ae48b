"""The worker side of a group (several photos of one person, one store item; ``sym3dinv.pipeline.grouping``
says which photos form one): decode and align every member on its own, invert the members left with
:func:`sym3dinv.invert.invert_group` into one head, render and commit it like a single photo's item.

A member that fails (undecodable, no face, unreadable, a bad known camera) gets its own ``failed`` row,
keyed by its photo id as a single photo's would be, and is dropped; the group goes on while a member is
left, and its row lists the members it used (``IndexRow.members_used``; ``members`` holds all of them).
A group none is left of gets a ``failed`` row of class ``empty_group``. Single photos go through
:class:`~sym3dinv.pipeline.processor.ItemProcessor` unchanged: :class:`GroupProcessor` only adds groups.

No Prefect or Ray here (DESIGN.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sym3dinv.errors import EmptyGroupError, StoreError
from sym3dinv.pipeline.inputs import InputItem
from sym3dinv.pipeline.processor import ItemProcessor, Progress, _Ready, _to_uint8
from sym3dinv.pipeline.quality import assess, camera_angles
from sym3dinv.store.layout import INPUT_VIEW, member_view
from sym3dinv.store.leases import leased_row
from sym3dinv.store.schema import IndexRow, Status, utcnow

if TYPE_CHECKING:
    import datetime as dt

    import torch

    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)

_PREP_STAGES = ("decode", "align")
"""Per-member stage seconds a group's row sums over its members."""


class GroupProcessor(ItemProcessor):
    """An :class:`ItemProcessor` that also takes group items (``InputItem.members``): single photos exactly
    as the base class does (stage-1 batches included), each group on its own (one ``invert_group`` call).

    :meth:`process_many` returns the rows in the order of the items; a group's row is followed by the
    failure rows of the members it dropped (so a call may return more rows than items)."""

    def _process_leased(self, items: Sequence[InputItem], store: RunStore, attempts: list[int],
                        worker: str | None, progress: Progress | None) -> list[IndexRow]:
        singles = [pos for pos, item in enumerate(items) if not item.is_group]
        out: dict[int, list[IndexRow]] = {}
        if singles:
            rows = super()._process_leased([items[p] for p in singles], store, [attempts[p] for p in singles],
                                           worker, progress)
            out.update((p, [r]) for p, r in zip(singles, rows, strict=True))
        for pos, (item, attempt) in enumerate(zip(items, attempts, strict=True)):
            if item.is_group:
                out[pos] = self.process_group(item, store, attempt, worker, progress)
        return [row for pos in range(len(items)) for row in out[pos]]

    def process_group(self, item: InputItem, store: RunStore, attempt: int = 0, worker: str | None = None,
                      progress: Progress | None = None) -> list[IndexRow]:
        """The group's row, then a failure row per dropped member; never raises for per-item problems
        (store write failures do, as in :meth:`ItemProcessor.process`)."""
        started, t0 = utcnow(), time.perf_counter()
        if self._keeper is not None:
            got = self._keeper.acquire(item.id)
            if got.lease is None:
                return [leased_row(item.id, got.holder, config_hash=self._hash, attempt=attempt, source_uri=item.uri,
                                   bytes=item.size, worker=worker, code_version=self._version)]
        if self.adopt:
            adopted = self.adopt_committed(item, store, worker)
            if adopted is not None:
                self._release(item.id)
                return [adopted, *self._dropped_from_manifest(item, store, adopted)]
        ready, dropped = self._prepare_members(item, attempt, worker)
        if not ready:
            exc = EmptyGroupError(f"none of the {len(item.members)} photos of group {item.group!r} could be used "
                                  "(each photo's own failure row says why)")
            row = self._failure(item, attempt, worker, exc, {}, t0, started)
            return [self._group_fields(row, item, ()), *dropped]
        try:
            row = self._invert(item, ready, dropped, store, worker, progress, started, t0)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every per-item failure must become a row
            row = self._group_fields(self._failure(item, attempt, worker, exc, {}, t0, started), item, ready)
        else:
            self._release(item.id)  # committed: a run that takes the lease now adopts it
        return [row, *dropped]

    def _prepare_members(self, item: InputItem, attempt: int, worker: str | None
                         ) -> tuple[list[_Ready], list[IndexRow]]:
        """Each member decoded and aligned on its own: (the members left, the failure rows of the others)."""
        ready: list[_Ready] = []
        dropped: list[IndexRow] = []
        for k, member in enumerate(item.members):
            started, t0 = utcnow(), time.perf_counter()
            t: dict[str, float] = {}
            try:
                ready.append(self._prepare(k, member, attempt, started, t0, t))
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - a member's failure is its own row; the group goes on
                row = self._failure(member, attempt, worker, exc, t, t0, started)
                dropped.append(replace(row, group_name=item.group))
        if dropped:
            log.warning("group %s (%s): %d of %d photos dropped", item.id, item.group, len(dropped), len(item.members))
        return ready, dropped

    @staticmethod
    def _group_fields(row: IndexRow, item: InputItem, used: Sequence[_Ready]) -> IndexRow:
        return with_group(row, item, [r.item.id for r in used])

    def _invert(self, item: InputItem, ready: list[_Ready], dropped: list[IndexRow], store: RunStore,
                worker: str | None, progress: Progress | None, started: dt.datetime, t0: float) -> IndexRow:
        """One ``invert_group`` call over the members left, then render and commit; the group's done row."""
        import torch

        from sym3dinv.invert import invert_group

        xs = torch.cat([self._to_tensor(r.image) for r in ready])  # [n, 3, R, R]
        cams = torch.tensor([r.camera for r in ready], dtype=torch.float32, device=self.device)  # [n, 25]
        masks = None
        if all(r.mask is not None for r in ready):  # all or none: a known camera's crop has no face mask
            masks = _masks([r.mask for r in ready], int(self.G.img_resolution), self.device)
        elif any(r.mask is not None for r in ready):
            log.info("group %s: some photos have known cameras (no face mask); inverting without masks", item.id)
        res = invert_group(self.G, xs, cams, masks=masks, regions=[r.regions for r in ready],
                           config=self.config.inversion, progress=progress, losses=self.losses, encoder=self.encoder)
        return self._write_group(_GroupRun(item, ready, dropped, xs, res, started, t0), store, worker)

    def _write_group(self, g: _GroupRun, store: RunStore, worker: str | None) -> IndexRow:
        """Render the group's head at the configured views and at every member's camera; commit; its done row."""
        t = g.seconds()
        t1 = time.perf_counter()
        renders = self._render(g)
        t["render"] = time.perf_counter() - t1
        t["total"] = sum(v for k, v in t.items() if k in (*_PREP_STAGES, "render")) + float(g.res.timings.get("total", 0))
        camera = [float(v) for v in g.res.camera.reshape(-1)]  # the reference view: member 0's
        metrics = _floats(g.res.metrics)
        yaw, pitch = camera_angles(camera)
        quality, reason = assess(metrics, yaw, pitch, self.quality)
        row = IndexRow(id=g.item.id, status=Status.DONE, config_hash=self._hash, attempt=g.ready[0].attempt,
                       source_uri=g.item.uri, bytes=g.item.size, camera_label=tuple(camera), yaw=yaw, pitch=pitch,
                       metrics=metrics, stage_seconds=dict(t), worker=worker, code_version=self._version,
                       started_at=g.started, generator_fingerprint=self.fingerprint, quality=quality,
                       quality_reason=reason)
        row = self._group_fields(row, g.item, g.ready)
        meta = {"config_hash": self._hash, "generator_fingerprint": self.fingerprint, "row": row.manifest_meta(),
                "dropped": [_dropped_meta(r) for r in g.dropped]}
        with store.item_writer(g.item.id, row.attempt, meta=meta) as w:
            w.write_latents({"ws": g.res.ws[0].float().cpu().numpy(), "member_ws": g.res.member_ws.float().cpu().numpy()},
                            metadata={"config_hash": self._hash})
            if g.res.delta:
                w.write_delta({k.replace("/", "_"): v.float().cpu().numpy() for k, v in g.res.delta.items()})
            w.write_input(_to_uint8(g.xs[0]))
            for k in range(len(g.ready)):
                w.write_input(_to_uint8(g.xs[k]), member=k)
            for name, img, dz in renders:
                w.write_render(name, _to_uint8(img))
                if self.config.render.depth:
                    w.write_depth(name, dz[0].float().cpu().numpy())
            w.write_metrics({**metrics, "stage2_steps": g.res.stage2_steps, "stopped_early": g.res.stopped_early,
                             "timings": dict(t), "config": self.config.to_json(), "group": g.summary()})
        committed = w.committed
        assert committed is not None  # the writer commits on normal exit
        return replace(row, attempt=committed.attempt, item_dir=committed.item_dir, outputs=dict(committed.outputs))

    def _render(self, g: _GroupRun) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(name, image, depth) of the group's head: the shared pivot at the configured views, and each
        member's own latent (pivot + offset, ``member_ws``) at its camera (``input-<k>``: what its metrics
        measure); member 0's is also ``input``, the reference view a single photo's item has."""
        import torch

        from sym3dinv.cameras import camera_label
        from sym3dinv.invert import render_views

        delta = g.res.delta or None
        cams = torch.stack([camera_label(y, p) for y, p in self.config.render.views]).reshape(-1, 25).float()
        views = render_views(self.G, g.res.ws, cams.to(self.device), delta=delta)
        out = list(zip(self.config.render.names(), views.image, views.depth_z, strict=True))
        member_cams = g.res.cameras.reshape(-1, 25).float()
        for k in range(len(g.ready)):
            v = render_views(self.G, g.res.member_ws[k:k + 1], member_cams[k:k + 1].to(self.device), delta=delta)
            out += [*([(INPUT_VIEW, v.image[0], v.depth_z[0])] if k == 0 else []), (member_view(k), v.image[0], v.depth_z[0])]
        return out

    def _dropped_from_manifest(self, item: InputItem, store: RunStore, adopted: IndexRow) -> list[IndexRow]:
        """The dropped members' failure rows an adopted attempt recorded (its run may have died before
        indexing them), so a bad photo never vanishes."""
        by_id = {m.id: m for m in item.members}
        for item_dir, manifest in store.committed_attempts(item.id):
            if item_dir == adopted.item_dir:
                return [_dropped_row(d, by_id, adopted, item) for d in manifest.get("meta", {}).get("dropped") or ()
                        if isinstance(d, Mapping) and d.get("id") in by_id]
        return []


class _GroupRun:
    """One group between its inversion and its commit."""

    def __init__(self, item: InputItem, ready: list[_Ready], dropped: list[IndexRow], xs: torch.Tensor, res: Any,
                 started: dt.datetime, t0: float) -> None:
        self.item, self.ready, self.dropped, self.xs, self.res, self.started, self.t0 = (
            item, ready, dropped, xs, res, started, t0)

    def seconds(self) -> dict[str, float]:
        """Stage seconds: decode/align summed over the members, the inversion's timings as ``invert_<k>``."""
        t = {k: sum(r.seconds.get(k, 0.0) for r in self.ready) for k in _PREP_STAGES
             if any(k in r.seconds for r in self.ready)}
        t.update({f"invert_{k}": float(v) for k, v in self.res.timings.items()})
        return t

    def summary(self) -> dict[str, Any]:
        """metrics.json's ``group``: name, each used member (k, id, uri, camera, metrics), the dropped ones."""
        cams = self.res.cameras.reshape(-1, 25).float().cpu().tolist()
        used = [{"k": k, "id": r.item.id, "uri": r.item.uri, "camera": cams[k], "metrics": _floats(m)}
                for k, (r, m) in enumerate(zip(self.ready, self.res.member_metrics, strict=True))]
        return {"name": self.item.group, "members": used, "dropped": [_dropped_meta(r) for r in self.dropped]}


def with_group(row: IndexRow, item: InputItem, used: Sequence[str] | None = None) -> IndexRow:
    """``row`` (of ``item``) with its group columns: name, all members, the members ``used`` (None: not known,
    e.g. the worker was lost). A single photo's row is returned as it is."""
    if not item.is_group:
        return row
    return replace(row, group_name=item.group, members=tuple(m.id for m in item.members),
                   members_used=None if used is None else tuple(used))


def _floats(metrics: Any) -> dict[str, float]:
    """A ViewMetrics as the index's float map (missing metrics left out)."""
    return {k: float(v) for k, v in vars(metrics).items() if v is not None}


def _masks(masks: Sequence[np.ndarray], res: int, device: Any) -> torch.Tensor:
    """Face masks at the generator's resolution, as ``ItemProcessor`` resizes a batch's: [n, R, R]."""
    import torch
    import torch.nn.functional as F

    return torch.stack([F.interpolate(torch.as_tensor(np.asarray(m), dtype=torch.float32)[None, None],
                                      size=(res, res), mode="nearest")[0, 0] for m in masks]).to(device)


def _dropped_meta(row: IndexRow) -> dict[str, Any]:
    return {"id": row.id, "uri": row.source_uri, "error_class": row.error_class, "error_message": row.error_message}


def _dropped_row(d: Mapping[str, Any], members: Mapping[str, InputItem], group: IndexRow, item: InputItem) -> IndexRow:
    member = members[str(d["id"])]
    return IndexRow(id=member.id, status=Status.FAILED, config_hash=group.config_hash, attempt=group.attempt,
                    source_uri=member.uri, bytes=member.size, error_class=d.get("error_class"),
                    error_message=d.get("error_message"), worker=group.worker, code_version=group.code_version,
                    generator_fingerprint=group.generator_fingerprint, group_name=item.group)
