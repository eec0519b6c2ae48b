"""A static HTML report of a run store (or of one run in it), readable offline in any browser.

What it shows: counts (done / failed by error class), timings (seconds per item, throughput, per stage),
metric distributions with histograms (PSNR, LPIPS, seconds), one row per item with
``input | reconstruction | novel views`` thumbnails, latent-edit strips (``sym3dinv edit apply``
folders), the failure table with reasons, and the inversion configuration.

Two output modes: relative assets (``index.html`` + ``assets/<hash>.png``: thumbnails, so the folder is
small and portable) and self-contained (one ``index.html`` with every image inlined as a data URI). The
page has no scripts and fetches nothing from the network. Every string taken from the store (file names,
error messages, config values) is HTML-escaped; asset file names are content hashes we generate.

Stores are read through :class:`~sym3dinv.store.RunStore` (local, ``memory://``, ``s3://``); the output
goes next to the store (``<store>/reports/<run_id or all>/``) unless ``out`` names another folder or URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import posixpath
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sym3dinv.errors import ConfigError, StoreError
from sym3dinv.report.edits import edit_section, find_edits, open_edit
from sym3dinv.report.format import (
    METRIC_LABELS,
    METRIC_ORDER,
    e,
    figure,
    fmt,
    fmt_rate,
    fmt_seconds,
    histogram,
    name,
    num,
    stats,
    table,
    thumbnail,
)
from sym3dinv.report.summary import Overview, overview
from sym3dinv.report.template import CSS, PAGE
from sym3dinv.store.layout import REPORTS_DIR, input_outputs, member_outputs, parse_view, render_views
from sym3dinv.store.root import StoreRoot
from sym3dinv.store.schema import IndexRow, Status

if TYPE_CHECKING:
    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)
__all__ = ["ReportResult", "build_report", "find_edits", "parse_view", "thumbnail"]


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it holds."""

    index: str
    """Path (local) or URL of ``index.html``."""
    items: int
    """Items (latest row per id) in the report."""
    shown: int
    """Done items with a thumbnail row."""
    failed: int
    assets: tuple[str, ...]
    """Relative paths of the asset files written next to ``index.html`` (empty when self-contained)."""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Sink:
    """The report's output folder: a folder of a root (the store's ``reports/<run>``, or a URL of its own)."""

    root: StoreRoot
    folder: str

    @classmethod
    def open(cls, store: RunStore, out: str | None, run_id: str | None,
             storage_options: Mapping[str, Any] | None) -> _Sink:
        if out is None:
            folder = posixpath.join(REPORTS_DIR, run_id or "all")
            store.abspath(folder)  # refuses a run id that would leave the store
            return cls(store, folder)
        return cls(StoreRoot(out, storage_options, kind="report output"), "")

    def rel(self, path: str) -> str:
        return posixpath.join(self.folder, path) if self.folder else path

    def write(self, path: str, data: bytes) -> None:
        self.root.write(self.rel(path), data)

    def url(self, path: str) -> str:
        return self.root.url_of(self.rel(path))


class _Assets:
    """Images of the page: data URIs (self-contained) or content-addressed files under ``assets/``."""

    def __init__(self, inline: bool) -> None:
        self.inline = inline
        self.files: dict[str, bytes] = {}

    def add(self, data: bytes, ext: str = "png") -> str:
        mime = {"png": "image/png", "jpg": "image/jpeg", "svg": "image/svg+xml"}[ext]
        if self.inline:
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        path = f"assets/{hashlib.sha1(data).hexdigest()[:20]}.{ext}"  # noqa: S324 - a name, not security
        self.files[path] = data
        return path


@dataclass
class _Builder:
    store: RunStore
    assets: _Assets
    thumb_size: int
    warnings: list[str] = field(default_factory=list)
    _cache: dict[tuple[int, str], str | None] = field(default_factory=dict)

    def read(self, root: StoreRoot, rel: str) -> bytes | None:
        """Bytes of a file of the store (or of an edit folder); None with a warning when unreadable."""
        try:
            return root.cat(rel)
        except StoreError as exc:  # a hostile path in the index is a warning, not a crash
            self.warnings.append(f"refused output path {rel!r}: {exc}")
        except (FileNotFoundError, OSError, ValueError) as exc:
            log.warning("report: cannot read %s: %s", rel, exc)
        return None

    def image(self, root: StoreRoot, rel: str | None) -> str | None:
        """The asset URL of a thumbnail of the image at ``rel`` (None when missing or unreadable)."""
        if not rel:
            return None
        key = (id(root), rel)
        if key not in self._cache:
            data = self.read(root, rel)
            thumb = thumbnail(data, self.thumb_size) if data is not None else None
            if thumb is None:
                self.warnings.append(f"image {rel} is missing or unreadable")
            self._cache[key] = None if thumb is None else self.assets.add(thumb)
        return self._cache[key]


def _select_rows(store: RunStore, run_id: str | None) -> list[IndexRow]:
    if run_id is not None:
        runs = store.runs()
        if run_id not in runs:
            raise ConfigError(f"run {run_id!r} is not in store {store.url}; runs there: {runs or 'none'}")
    return store.latest_rows(run_id=run_id)


# --- sections ---------------------------------------------------------------------------------------
def _summary_section(ov: Overview, skipped: Sequence[IndexRow]) -> str:
    secs = ov.seconds
    cards = [("items", str(ov.items), ""), ("done", str(ov.done), "ok"), ("failed", str(ov.failed), "bad" if ov.failed else "")]
    if ov.skipped:
        cards.append(("skipped", str(ov.skipped), ""))
    cards += [("mean s / item", fmt_seconds(statistics.fmean(secs)) if secs else "–", ""),
              ("median s / item", fmt_seconds(statistics.median(secs)) if secs else "–", ""),
              ("throughput", fmt_rate(ov.rate), ""),
              ("wall span", fmt_seconds(ov.span_s) if ov.span_s > 0 else "–", "")]
    card_html = "".join(f'<div class="card {c}"><div class="v">{e(v)}</div><div class="k">{e(k)}</div></div>'
                        for k, v, c in cards)
    status_rows = [('<span class="badge done">done</span>', "", str(ov.done))]
    status_rows += [('<span class="badge failed">failed</span>', f"<code>{e(k)}</code>", str(v))
                    for k, v in sorted(ov.failed_by_class.items(), key=lambda kv: (-kv[1], kv[0]))]
    status_rows += [(f'<span class="badge skipped">{e(r.status.value)}</span>', "", "1") for r in skipped[:20]]
    stage_rows = [(e(k), fmt(m, 2), fmt(md, 2)) for k, (m, md) in ov.stages.items()]
    if secs:
        stage_rows.append(("<b>total</b>", fmt(statistics.fmean(secs), 2), fmt(statistics.median(secs), 2)))
    timings = table(["stage", "mean", "median"], stage_rows, (1, 2)) if stage_rows else "<p class=empty>no timings</p>"
    return ('<section id="summary"><h2>Summary</h2>'
            f'<div class="cards">{card_html}</div><div class="cols" style="margin-top:14px">'
            f'<div class="panel"><h3>status</h3>{table(["status", "error class", "items"], status_rows, (2,))}</div>'
            f'<div class="panel"><h3>seconds per done item, by stage</h3>{timings}</div></div></section>')


def _metrics_section(b: _Builder, done: Sequence[IndexRow], secs: Sequence[float]) -> str:
    keys = sorted({k for r in done for k in r.metrics},
                  key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else 99, k))
    mrows = []
    for k in keys:
        vals = [v for v in (num(r.metrics.get(k)) for r in done) if v is not None]
        if vals:
            s = stats(vals)
            mrows.append((e(METRIC_LABELS.get(k, k)), str(s["n"]),
                          *(fmt(s[q]) for q in ("mean", "median", "p05", "p95", "min", "max"))))
    hists = []
    for key, label, color in (("psnr", "PSNR at the input view (dB)", "#3b7dd8"),
                              ("lpips_alex", "LPIPS (AlexNet) at the input view", "#8a5bd6"),
                              ("seconds", "seconds per item", "#d8823b")):
        vals = list(secs) if key == "seconds" else [v for v in (num(r.metrics.get(key)) for r in done) if v is not None]
        if vals:
            src = b.assets.add(histogram(vals, label, color))
            hists.append(f'<figure><img src="{e(src)}" alt="histogram of {e(label)}" width="400" height="260"></figure>')
    return ('<section id="metrics"><h2>Metrics</h2>'
            + (table(["metric", "n", "mean", "median", "p05", "p95", "min", "max"], mrows, (1, 2, 3, 4, 5, 6, 7))
               if mrows else '<p class="empty">no metrics (no done items)</p>')
            + (f'<div class="hists" style="margin-top:14px">{"".join(hists)}</div>' if hists else "")
            + "</section>")


def _member_figures(b: _Builder, outs: Mapping[str, str]) -> list[str]:
    """A group's photos, each next to the head rendered at that photo's camera."""
    figs = []
    for k, input_rel, at_input in member_outputs(outs):
        figs += [figure(b.image(b.store, input_rel), f"photo {k}", key=True),
                 figure(b.image(b.store, at_input), f"reconstruction · photo {k}", alt=f"reconstruction input-{k}")]
    return figs


def _item_row(b: _Builder, r: IndexRow) -> str:
    outs = dict(r.outputs)
    views = render_views(outs)
    yaw, pitch = num(r.yaw) or 0.0, num(r.pitch) or 0.0
    input_rel, at_input = input_outputs(outs)
    recon = None
    figs = [figure(b.image(b.store, input_rel), "input", key=True)]
    if r.members is not None and member_outputs(outs):  # a group: every photo it used, with its reconstruction
        figs = _member_figures(b, outs)
    elif at_input is not None:  # rendered at the input camera itself
        figs.append(figure(b.image(b.store, at_input), "reconstruction · input camera", alt="reconstruction input"))
    elif views:  # a store from before render-input.png was the reconstruction: the nearest stored view
        recon = min(views, key=lambda v: (v[0][0] - yaw) ** 2 + (v[0][1] - pitch) ** 2)
        (ry, _), vname, rrel = recon
        figs.append(figure(b.image(b.store, rrel), f"reconstruction · yaw {ry:+.2f}", alt=f"reconstruction {vname}"))
    figs.append('<div class="sep"></div>')
    novel = [v for v in views if v is not recon]
    figs += [figure(b.image(b.store, rel), f"yaw {yp[0]:+.2f} pitch {yp[1]:+.2f}") for yp, _, rel in novel]
    if not novel:
        figs.append('<span class="empty">no novel views stored</span>')
    m = r.metrics
    mets = " · ".join(f"{e(METRIC_LABELS.get(k, k).split(' (')[0])} <b>{fmt(num(m.get(k)))}</b>"
                      for k in METRIC_ORDER if num(m.get(k)) is not None)
    secs = num(r.stage_seconds.get("total"))
    angle = f"yaw {yaw:+.2f} · pitch {pitch:+.2f}" if r.yaw is not None else "camera unknown"
    group = "" if r.members is None else (
        f"<div>group of {len(r.members)} photos · {len(r.members_used or ())} used"
        + (f" · {len(r.members_dropped)} dropped (see Failures)" if r.members_dropped else "") + "</div>")
    title = r.group_name if r.members is not None and r.group_name else name(r.source_uri, r.id)
    return (f'<div class="item" id="item-{e(r.id)}"><div class="meta"><div class="name">{e(title)}</div>'
            f'<div class="mono">{e(r.id)}</div>{group}<div>{mets or "no metrics"}</div>'
            f"<div>{e(angle)} · {e(fmt_seconds(secs))}</div>"
            f'<div>attempt {e(r.attempt)} · {e(r.worker or "")}</div></div>'
            f'<div class="strip">{"".join(figs)}</div></div>')


def _items_section(b: _Builder, done: Sequence[IndexRow], max_items: int) -> tuple[str, int]:
    order = sorted(done, key=lambda r: (num(r.metrics.get("psnr")) is None, num(r.metrics.get("psnr")) or 0.0,
                                        str(r.source_uri)))
    shown = order[:max_items]
    note = (f"{len(shown)} of {len(done)} done items, lowest PSNR first. Reconstruction = the render at the input "
            "camera (render-input.png; in older stores the stored view nearest it); the strip after the bar holds "
            "the other (novel) views.")
    return ('<section id="items"><h2>Items</h2>' + f'<p class="note">{e(note)}</p>'
            + ("".join(_item_row(b, r) for r in shown) or '<p class="empty">no done items</p>') + "</section>",
            len(shown))


def _edits_section(b: _Builder, rows: Sequence[IndexRow], refs: Sequence[str],
                   storage_options: Mapping[str, Any] | None) -> str:
    ids = {r.id for r in rows}
    names = {r.id: name(r.source_uri, r.id) for r in rows}
    parts = []
    for ref in refs:
        try:
            ed = open_edit(b.store, ref, storage_options)
        except (ValueError, ImportError, ConfigError, StoreError) as exc:
            b.warnings.append(f"edit folder {ref}: {exc}")
            continue
        parts.append(edit_section(ed, b.image, b.warnings, ids, names))
    return '<section id="edits"><h2>Latent edits</h2>' + "".join(parts) + "</section>"


def _poor_fits_section(done: Sequence[IndexRow]) -> str:
    poor = sorted((r for r in done if r.quality == "poor_fit"), key=lambda r: -(r.metrics.get("lpips_alex") or 0))
    prows = [(f'<span class="mono">{e(r.id)}</span>', e(name(r.source_uri, "–")),
              '<span class="badge failed">poor_fit</span>', f'<div class="msg">{e(r.quality_reason or "")}</div>')
             for r in poor]
    return ('<section id="poor-fits"><h2>Poor fits</h2>'
            + (table(["id", "source", "quality", "reason"], prows) if prows else '<p class="empty">no poor fits</p>')
            + "</section>")


def _failures_section(failed: Sequence[IndexRow]) -> str:
    frows = [(f'<span class="mono">{e(r.id)}</span>',
              e(name(r.source_uri, "–") + (f" (group {r.group_name})" if r.group_name else "")),
              f'<span class="badge failed">{e(r.error_class or "unknown")}</span>',
              f'<div class="msg">{e(r.error_message or "")}</div>', e(r.attempt), e(r.worker or ""))
             for r in sorted(failed, key=lambda r: (str(r.error_class), str(r.source_uri)))]
    return ('<section id="failures"><h2>Failures</h2>'
            + (table(["id", "source", "error class", "reason", "attempt", "worker"], frows)
               if frows else '<p class="empty">no failed items</p>') + "</section>")


def _recorded_config(b: _Builder, rows: Sequence[IndexRow]) -> dict[str, Any]:
    """The inversion config a done item of ``rows`` recorded in its metrics.json (the first readable one)."""
    for r in rows:
        rel = r.outputs.get("metrics")
        if r.status is Status.DONE and rel:
            try:
                cfg = dict(json.loads(b.read(b.store, rel) or b"{}").get("config") or {})
            except (ValueError, AttributeError, TypeError):
                cfg = {}
            if cfg:
                return cfg
    return {}


def _config_section(b: _Builder, rows: Sequence[IndexRow]) -> str:
    by_hash: dict[str, list[IndexRow]] = {}
    for r in rows:
        by_hash.setdefault(r.config_hash or "?", []).append(r)
    parts = []
    for h, rs in sorted(by_hash.items(), key=lambda kv: -len(kv[1])):
        cfg = _recorded_config(b, rs)
        versions = sorted({str(r.code_version) for r in rs if r.code_version})
        workers = sorted({str(r.worker) for r in rs if r.worker})
        kv = [(k, v) for k, v in cfg.items() if k != "config_hash"]
        kv += [("code version", ", ".join(versions) or "–"), ("workers", ", ".join(workers) or "–"),
               ("items", str(len(rs)))]
        cells = [(f"<b>{e(k)}</b>", f'<span class="mono">{e(v if isinstance(v, str) else json.dumps(v))}</span>')
                 for k, v in kv]
        parts.append(f'<div class="panel"><h3>config hash <code>{e(h)}</code></h3>{table(["setting", "value"], cells)}</div>')
    body = f'<div class="cols">{"".join(parts)}</div>' if parts else '<p class="empty">no items</p>'
    return f'<section id="config"><h2>Configuration</h2>{body}</section>'


def _page(store: RunStore, run_id: str | None, rows: Sequence[IndexRow], body: Sequence[str], edits: bool) -> str:
    from sym3dinv import __version__

    runs = sorted({str(r.run_id) for r in rows if r.run_id})
    title = f"sym3dinv run {run_id}" if run_id else "sym3dinv run store report"
    sub = (f"store <code>{e(store.url)}</code> · " + (f"run <code>{e(run_id)}</code>" if run_id else f"{len(runs)} run(s)")
           + f" · {len(rows)} items")
    nav = "".join(f'<a href="#{k}">{v}</a>' for k, v in
                  (("summary", "Summary"), ("metrics", "Metrics"), ("items", "Items"),
                   *((("edits", "Edits"),) if edits else ()), ("failures", "Failures"), ("config", "Configuration")))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"generated by sym3dinv {e(__version__)} on {e(now)} · `sym3dinv report`"
    return PAGE.format(title=e(title), subtitle=sub, nav=nav, body="\n".join(body), footer=footer, css=CSS)


# --- the report -------------------------------------------------------------------------------------
def build_report(
    store: RunStore,
    out: str | None = None,
    run_id: str | None = None,
    *,
    self_contained: bool = False,
    edits: Sequence[str] | None = None,
    max_items: int = 200,
    thumb_size: int = 160,
    storage_options: Mapping[str, Any] | None = None,
) -> ReportResult:
    """Write the HTML report of ``store`` (of rows from ``run_id`` only, if given).

    ``out``: output folder (local path or URL; default ``<store>/reports/<run_id or all>/``).
    ``edits``: edit folders to show (store-relative like ``edits/hair`` or paths/URLs); None = every
    folder under ``<store>/edits/`` with a manifest. ``max_items``: thumbnail rows (lowest PSNR first).
    """
    if max_items < 0 or thumb_size < 16:
        raise ConfigError("max_items must be >= 0 and thumb_size >= 16")
    rows = _select_rows(store, run_id)
    sink = _Sink.open(store, out, run_id, storage_options)
    b = _Builder(store, _Assets(self_contained), thumb_size)
    ov = overview(rows)
    done = [r for r in rows if r.status is Status.DONE]
    failed = [r for r in rows if r.status is Status.FAILED]
    items_html, shown = _items_section(b, done, max_items)
    refs = find_edits(store) if edits is None else list(edits)
    body = [_summary_section(ov, [r for r in rows if r.status not in (Status.DONE, Status.FAILED)]),
            _metrics_section(b, done, ov.seconds), items_html]
    if refs:
        body.append(_edits_section(b, rows, refs, storage_options))
    body += [_poor_fits_section(done), _failures_section(failed), _config_section(b, rows)]
    if b.warnings:
        body.append('<section id="warnings"><h2>Warnings</h2><ul>'
                    + "".join(f"<li>{e(w)}</li>" for w in b.warnings[:50]) + "</ul></section>")
    page = _page(store, run_id, rows, body, bool(refs))
    for rel, data in b.assets.files.items():
        sink.write(rel, data)
    sink.write("index.html", page.encode("utf-8"))
    index = sink.url("index.html")
    log.info("report: %s (%d items, %d assets)", index, len(rows), len(b.assets.files))
    return ReportResult(index=index, items=len(rows), shown=shown, failed=len(failed),
                        assets=tuple(sorted(b.assets.files)), warnings=tuple(b.warnings))
