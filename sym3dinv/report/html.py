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
import html
import io
import json
import logging
import math
import posixpath
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sym3dinv.errors import ConfigError
from sym3dinv.report.template import CSS, PAGE
from sym3dinv.store.items import input_outputs

if TYPE_CHECKING:
    import fsspec

    from sym3dinv.store import RunStore

log = logging.getLogger(__name__)

VIEW_RE = re.compile(r"^yaw([+-]?\d+(?:\.\d+)?)_pitch([+-]?\d+(?:\.\d+)?)$")
METRIC_ORDER = ("psnr", "lpips_alex", "ssim", "mse", "identity")
METRIC_LABELS = {"psnr": "PSNR (dB)", "lpips_alex": "LPIPS (AlexNet)", "ssim": "SSIM", "mse": "MSE",
                 "identity": "identity cosine"}
EDIT_MANIFEST = "edit.json"
EDIT_FORMAT = "sym3dinv-edit/1"


def e(value: object) -> str:
    """HTML-escape anything (quotes too, so the result is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


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


# --- output folder ----------------------------------------------------------------------------------
class _Sink:
    """Writes files under one folder of a filesystem (the store's, a local path or any fsspec URL)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, local: bool) -> None:
        self.fs, self.root, self.local = fs, root.rstrip("/"), local

    @classmethod
    def open(cls, store: RunStore, out: str | None, run_id: str | None,
             storage_options: Mapping[str, Any] | None) -> _Sink:
        if out is None:
            return cls(store.fs, store.abspath(posixpath.join("reports", run_id or "all")), store.is_local)
        import fsspec

        fs, root = fsspec.core.url_to_fs(out, **dict(storage_options or {}))
        protos = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        return cls(fs, root, "file" in protos or "local" in protos)

    def path(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def write(self, rel: str, data: bytes) -> None:
        p = self.path(rel)
        if self.local:
            self.fs.makedirs(posixpath.dirname(p), exist_ok=True)
        self.fs.pipe_file(p, data)

    def url(self, rel: str) -> str:
        p = self.path(rel)
        if self.local:
            return p
        protos = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return f"{protos[0]}://{p.lstrip('/') if protos[0] == 'memory' else p}"


class _Assets:
    """Images of the page: data URIs (self-contained) or content-addressed files under ``assets/``."""

    def __init__(self, inline: bool) -> None:
        self.inline = inline
        self.files: dict[str, bytes] = {}

    def add(self, data: bytes, ext: str = "png") -> str:
        mime = {"png": "image/png", "jpg": "image/jpeg", "svg": "image/svg+xml"}[ext]
        if self.inline:
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        name = f"assets/{hashlib.sha1(data).hexdigest()[:20]}.{ext}"  # noqa: S324 - a name, not security
        self.files[name] = data
        return name


# --- reading the store ------------------------------------------------------------------------------
def _as_dict(m: Any) -> dict[str, Any]:
    if m is None:
        return {}
    if isinstance(m, Mapping):
        return dict(m)
    return {k: v for k, v in m}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _read(fs: fsspec.AbstractFileSystem, path: str) -> bytes | None:
    try:
        return fs.cat_file(path)
    except (FileNotFoundError, OSError, ValueError) as exc:
        log.warning("report: cannot read %s: %s", path, exc)
        return None


def thumbnail(data: bytes, size: int) -> bytes | None:
    """A PNG no larger than ``size`` px on its long side (None if the bytes are not an image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if max(img.size) > size:
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def parse_view(name: str) -> tuple[float, float] | None:
    """``yaw+0.50_pitch-0.10`` -> (0.5, -0.1); None for other render names."""
    m = VIEW_RE.match(name)
    return (float(m.group(1)), float(m.group(2))) if m else None


def _select_rows(store: RunStore, run_id: str | None) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    from sym3dinv.store.query import latest

    table = store.read_index()
    if run_id is not None:
        runs = sorted({r for r in table["run_id"].to_pylist() if r}) if table.num_rows else []
        if run_id not in runs:
            raise ConfigError(f"run {run_id!r} is not in store {store.url}; runs there: {runs or 'none'}")
        table = table.filter(pc.equal(table["run_id"], run_id))
    rows = latest(table).to_pylist() if table.num_rows else []
    for r in rows:
        r["metrics"] = _as_dict(r.get("metrics"))
        r["stage_seconds"] = _as_dict(r.get("stage_seconds"))
        r["outputs"] = _as_dict(r.get("outputs"))
    return rows


def _name(uri: str | None, fallback: str) -> str:
    if not uri:
        return fallback
    return posixpath.basename(uri.rstrip("/")) or uri


# --- numbers ----------------------------------------------------------------------------------------
def _stats(values: Sequence[float]) -> dict[str, float]:
    v = sorted(values)

    def q(p: float) -> float:
        if len(v) == 1:
            return v[0]
        x = p * (len(v) - 1)
        i = int(math.floor(x))
        j = min(i + 1, len(v) - 1)
        return v[i] + (v[j] - v[i]) * (x - i)

    return {"n": len(v), "mean": statistics.fmean(v), "median": statistics.median(v), "p05": q(0.05),
            "p95": q(0.95), "min": v[0], "max": v[-1]}


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -(digits + 1)):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}" if abs(v) < 100 else f"{v:.1f}"


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def _fmt_rate(per_second: float | None) -> str:
    if not per_second:
        return "–"
    per_hour = per_second * 3600
    return f"{per_hour:.0f} / h" if per_hour >= 10 else f"{per_hour:.2g} / h"


def _histogram(values: Sequence[float], xlabel: str, color: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 2.6), dpi=100)
    bins = min(24, max(4, int(math.sqrt(len(values)) * 2)))
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:  # one value (or all equal): a visible bar around it
        lo, hi = lo - 0.5 * max(abs(lo) * 0.05, 1e-3), hi + 0.5 * max(abs(hi) * 0.05, 1e-3)
    ax.hist(values, bins=bins, range=(lo, hi), color=color, edgecolor="white", linewidth=0.6)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("items", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    ax.grid(axis="y", color="#e6e9f0", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# --- page parts -------------------------------------------------------------------------------------
def _table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    """A table; ``rows`` hold already-escaped cell HTML; ``num`` are right-aligned column indices."""
    th = "".join(f'<th class="num">{h}</th>' if i in num else f"<th>{h}</th>" for i, h in enumerate(head))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"
                                     for i, c in enumerate(r)) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(src: str | None, caption: str, key: bool = False, alt: str = "") -> str:
    cls = ' class="key"' if key else ""
    if src is None:
        return f'<figure{cls}><div class="missing">missing</div><figcaption>{e(caption)}</figcaption></figure>'
    return (f'<figure{cls}><img src="{e(src)}" alt="{e(alt or caption)}" width="128" height="128">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


@dataclass
class _Builder:
    store: RunStore
    assets: _Assets
    thumb_size: int
    warnings: list[str] = field(default_factory=list)
    _cache: dict[tuple[int, str], str | None] = field(default_factory=dict)

    def image(self, fs: fsspec.AbstractFileSystem, path: str) -> str | None:
        """The asset URL of a thumbnail of the image at ``path`` (None when missing or unreadable)."""
        key = (id(fs), path)
        if key not in self._cache:
            data = _read(fs, path)
            thumb = thumbnail(data, self.thumb_size) if data is not None else None
            if thumb is None:
                self.warnings.append(f"image {path} is missing or unreadable")
            self._cache[key] = None if thumb is None else self.assets.add(thumb)
        return self._cache[key]

    def store_image(self, rel: str | None) -> str | None:
        if not rel:
            return None
        try:
            path = self.store.abspath(rel)
        except Exception as exc:  # noqa: BLE001 - a hostile path in the index is a warning, not a crash
            self.warnings.append(f"refused output path {rel!r}: {exc}")
            return None
        return self.image(self.store.fs, path)


def _item_row(b: _Builder, r: dict[str, Any]) -> str:
    outs = r["outputs"]
    views = []
    for key, rel in outs.items():
        if key.startswith("render/"):
            yp = parse_view(key[len("render/"):])
            if yp is not None:
                views.append((yp, key[len("render/"):], rel))
    views.sort(key=lambda v: (v[0][0], v[0][1]))
    yaw, pitch = _num(r.get("yaw")) or 0.0, _num(r.get("pitch")) or 0.0
    input_rel, at_input = input_outputs(outs)
    recon = None
    figs = [_figure(b.store_image(input_rel), "input", key=True)]
    if at_input is not None:  # rendered at the input camera itself
        figs.append(_figure(b.store_image(at_input), "reconstruction · input camera", alt="reconstruction input"))
    elif views:  # a store from before render-input.png was the reconstruction: the nearest stored view
        recon = min(views, key=lambda v: (v[0][0] - yaw) ** 2 + (v[0][1] - pitch) ** 2)
        (ry, rp), _, rrel = recon
        figs.append(_figure(b.store_image(rrel), f"reconstruction · yaw {ry:+.2f}", alt=f"reconstruction {recon[1]}"))
    figs.append('<div class="sep"></div>')
    novel = [v for v in views if v is not recon]
    figs += [_figure(b.store_image(rel), f"yaw {yp[0]:+.2f} pitch {yp[1]:+.2f}") for yp, _, rel in novel]
    if not novel:
        figs.append('<span class="empty">no novel views stored</span>')
    m = r["metrics"]
    mets = " · ".join(f"{e(METRIC_LABELS.get(k, k).split(' (')[0])} <b>{_fmt(_num(m.get(k)))}</b>"
                      for k in METRIC_ORDER if _num(m.get(k)) is not None)
    secs = _num(r["stage_seconds"].get("total"))
    name = _name(r.get("source_uri"), r["id"])
    angle = f"yaw {yaw:+.2f} · pitch {pitch:+.2f}" if r.get("yaw") is not None else "camera unknown"
    return (f'<div class="item" id="item-{e(r["id"])}"><div class="meta"><div class="name">{e(name)}</div>'
            f'<div class="mono">{e(r["id"])}</div><div>{mets or "no metrics"}</div>'
            f"<div>{e(angle)} · {e(_fmt_seconds(secs))}</div>"
            f'<div>attempt {e(r.get("attempt"))} · {e(r.get("worker") or "")}</div></div>'
            f'<div class="strip">{"".join(figs)}</div></div>')


def _config_sections(b: _Builder, rows: list[dict[str, Any]]) -> str:
    by_hash: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_hash.setdefault(r.get("config_hash") or "?", []).append(r)
    parts = []
    for h, rs in sorted(by_hash.items(), key=lambda kv: -len(kv[1])):
        cfg: dict[str, Any] = {}
        for r in rs:
            rel = r["outputs"].get("metrics")
            if r["status"] == "done" and rel:
                data = _read(b.store.fs, b.store.abspath(rel))
                try:
                    cfg = dict(json.loads(data or b"{}").get("config") or {})
                except (ValueError, AttributeError, TypeError):
                    cfg = {}
                if cfg:
                    break
        versions = sorted({str(r.get("code_version")) for r in rs if r.get("code_version")})
        workers = sorted({str(r.get("worker")) for r in rs if r.get("worker")})
        kv = [(k, v) for k, v in cfg.items() if k != "config_hash"]
        kv += [("code version", ", ".join(versions) or "–"), ("workers", ", ".join(workers) or "–"),
               ("items", str(len(rs)))]
        cells = [(f"<b>{e(k)}</b>", f'<span class="mono">{e(v if isinstance(v, str) else json.dumps(v))}</span>')
                 for k, v in kv]
        parts.append(f'<div class="panel"><h3>config hash <code>{e(h)}</code></h3>'
                     f'{_table(["setting", "value"], cells)}</div>')
    return f'<div class="cols">{"".join(parts)}</div>' if parts else '<p class="empty">no items</p>'


# --- edits ------------------------------------------------------------------------------------------
def _open_edit(store: RunStore, ref: str,
               storage_options: Mapping[str, Any] | None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fs, folder) of an edit folder given store-relative (``edits/x``) or as a local path / URL."""
    import fsspec

    if "://" in ref or ref.startswith("/"):
        fs, root = fsspec.core.url_to_fs(ref, **dict(storage_options or {}))
        return fs, root.rstrip("/")
    return store.fs, store.abspath(ref)


def find_edits(store: RunStore) -> list[str]:
    """Store-relative folders under ``edits/`` that hold an edit manifest."""
    try:
        hits = store.fs.glob(store.abspath(f"edits/*/{EDIT_MANIFEST}"))
    except (FileNotFoundError, OSError):
        return []
    root = store.root.strip("/")
    out = []
    for h in sorted(hits):
        folder = posixpath.dirname(h.strip("/"))
        out.append(posixpath.relpath(folder, root) if root else folder)
    return out


def _edit_section(b: _Builder, ref: str, fs: fsspec.AbstractFileSystem, folder: str,
                  ids: set[str], names: Mapping[str, str]) -> str:
    raw = _read(fs, posixpath.join(folder, EDIT_MANIFEST))
    try:
        man = json.loads(raw or b"")
        if man.get("format") != EDIT_FORMAT:
            raise ValueError(f"format {man.get('format')!r}")
    except (ValueError, AttributeError) as exc:
        b.warnings.append(f"edit folder {ref}: unreadable manifest ({exc})")
        return ""
    views = [(str(v.get("name")), _num(v.get("yaw")) or 0.0, _num(v.get("pitch")) or 0.0)
             for v in man.get("views") or []]
    directions = man.get("directions") or []
    blocks = []
    for item in man.get("items") or []:
        iid = str(item.get("id"))
        if ids and iid not in ids:
            continue
        renders: dict[tuple[str, str], dict[float, str]] = {}
        for rr in item.get("renders") or []:
            s = _num(rr.get("strength"))
            rel = str(rr.get("path") or "")
            if s is None or not rel or rel.startswith("/") or ".." in rel.split("/"):
                continue
            renders.setdefault((str(rr.get("direction")), str(rr.get("view"))), {})[s] = rel
        blocks_d = []
        for d in directions:
            dname = str(d.get("name"))
            strengths = sorted({s for (dn, _), m in renders.items() if dn == dname for s in m})
            if not strengths:
                continue
            strips = []
            for vname, vyaw, vpitch in views:
                m = renders.get((dname, vname), {})
                if not m:
                    continue
                figs = [_figure(b.image(fs, posixpath.join(folder, m[s])) if s in m else None,
                                "original" if s == 0 else f"strength {s:+g}", key=(s == 0)) for s in strengths]
                strips.append(f'<div class="strip"><div class="rowlabel">yaw {vyaw:+.2f}<br>pitch {vpitch:+.2f}'
                              f'</div>{"".join(figs)}</div>')
            if strips:
                blocks_d.append(f'<div class="edit-dir"><div class="dname">{e(dname)}</div>'
                                f'<div class="views">{"".join(strips)}</div></div>')
        if blocks_d:
            name = names.get(iid) or _name(item.get("source_uri"), iid)
            blocks.append(f'<div class="item"><div class="meta"><div class="name">{e(name)}</div>'
                          f'<div class="mono">{e(iid)}</div></div><div>{"".join(blocks_d)}</div></div>')
    desc = ", ".join(f"{e(d.get('name'))} ({e(d.get('source', ''))})" for d in directions)
    head = (f'<div class="panel"><h3>edit <code>{e(man.get("name") or ref)}</code></h3><p class="note">'
            f"directions: {desc or '–'}; strengths are multiples of each direction (0 = the unedited pivot); "
            f"generator {e(man.get('generator', '?'))}</p></div>")
    return head + ("".join(blocks) or '<p class="empty">no items of this selection in the edit</p>')


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
    from sym3dinv import __version__

    if max_items < 0 or thumb_size < 16:
        raise ConfigError("max_items must be >= 0 and thumb_size >= 16")
    rows = _select_rows(store, run_id)
    sink = _Sink.open(store, out, run_id, storage_options)
    b = _Builder(store, _Assets(self_contained), thumb_size)
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = [r for r in rows if r["status"] not in ("done", "failed")]
    body: list[str] = []

    # summary cards
    by_class: dict[str, int] = {}
    for r in failed:
        by_class[r.get("error_class") or "unknown"] = by_class.get(r.get("error_class") or "unknown", 0) + 1
    secs = [s for s in (_num(r["stage_seconds"].get("total")) for r in done) if s is not None]
    starts = [r.get("started_at") or r.get("finished_at") for r in rows if r.get("finished_at")]
    ends = [r["finished_at"] for r in rows if r.get("finished_at")]
    span = (max(ends) - min(starts)).total_seconds() if ends and starts else 0.0
    rate = len(rows) / span if span > 0 else None
    cards = [("items", str(len(rows)), ""), ("done", str(len(done)), "ok"),
             ("failed", str(len(failed)), "bad" if failed else "")]
    if skipped:
        cards.append(("skipped", str(len(skipped)), ""))
    cards += [("mean s / item", _fmt_seconds(statistics.fmean(secs)) if secs else "–", ""),
              ("median s / item", _fmt_seconds(statistics.median(secs)) if secs else "–", ""),
              ("throughput", _fmt_rate(rate), ""),
              ("wall span", _fmt_seconds(span) if span > 0 else "–", "")]
    card_html = "".join(f'<div class="card {c}"><div class="v">{e(v)}</div><div class="k">{e(k)}</div></div>'
                        for k, v, c in cards)
    status_rows = [('<span class="badge done">done</span>', "", str(len(done)))]
    status_rows += [('<span class="badge failed">failed</span>', f"<code>{e(k)}</code>", str(v))
                    for k, v in sorted(by_class.items(), key=lambda kv: (-kv[1], kv[0]))]
    status_rows += [(f'<span class="badge skipped">{e(r["status"])}</span>', "", "1") for r in skipped[:20]]
    stage_keys = sorted({k for r in done for k in r["stage_seconds"] if k != "total"})
    stage_rows = []
    for k in stage_keys:
        vals = [v for v in (_num(r["stage_seconds"].get(k)) for r in done) if v is not None]
        if vals:
            stage_rows.append((e(k), _fmt(statistics.fmean(vals), 2), _fmt(statistics.median(vals), 2)))
    if secs:
        stage_rows.append(("<b>total</b>", _fmt(statistics.fmean(secs), 2), _fmt(statistics.median(secs), 2)))
    body.append('<section id="summary"><h2>Summary</h2>'
                f'<div class="cards">{card_html}</div><div class="cols" style="margin-top:14px">'
                f'<div class="panel"><h3>status</h3>{_table(["status", "error class", "items"], status_rows, (2,))}</div>'
                f'<div class="panel"><h3>seconds per done item, by stage</h3>'
                f'{_table(["stage", "mean", "median"], stage_rows, (1, 2)) if stage_rows else "<p class=empty>no timings</p>"}'
                "</div></div></section>")

    # metrics + histograms
    names = sorted({k for r in done for k in r["metrics"]},
                   key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else 99, k))
    mrows = []
    for k in names:
        vals = [v for v in (_num(r["metrics"].get(k)) for r in done) if v is not None]
        if vals:
            s = _stats(vals)
            mrows.append((e(METRIC_LABELS.get(k, k)), str(s["n"]), *(_fmt(s[q]) for q in
                                                                     ("mean", "median", "p05", "p95", "min", "max"))))
    hists = []
    for key, label, color in (("psnr", "PSNR at the input view (dB)", "#3b7dd8"),
                              ("lpips_alex", "LPIPS (AlexNet) at the input view", "#8a5bd6"),
                              ("seconds", "seconds per item", "#d8823b")):
        vals = secs if key == "seconds" else [v for v in (_num(r["metrics"].get(key)) for r in done) if v is not None]
        if vals:
            src = b.assets.add(_histogram(vals, label, color))
            hists.append(f'<figure><img src="{e(src)}" alt="histogram of {e(label)}" width="400" height="260">'
                         "</figure>")
    body.append('<section id="metrics"><h2>Metrics</h2>'
                + (_table(["metric", "n", "mean", "median", "p05", "p95", "min", "max"], mrows, (1, 2, 3, 4, 5, 6, 7))
                   if mrows else '<p class="empty">no metrics (no done items)</p>')
                + (f'<div class="hists" style="margin-top:14px">{"".join(hists)}</div>' if hists else "")
                + "</section>")

    # items
    order = sorted(done, key=lambda r: (_num(r["metrics"].get("psnr")) is None,
                                        _num(r["metrics"].get("psnr")) or 0.0, str(r.get("source_uri"))))
    shown = order[:max_items]
    note = (f"{len(shown)} of {len(done)} done items, lowest PSNR first. Reconstruction = the render at the input "
            "camera (render-input.png; in older stores the stored view nearest it); the strip after the bar holds "
            "the other (novel) views.")
    body.append('<section id="items"><h2>Items</h2>' + f'<p class="note">{e(note)}</p>'
                + ("".join(_item_row(b, r) for r in shown) or '<p class="empty">no done items</p>') + "</section>")

    # edits
    refs = find_edits(store) if edits is None else list(edits)
    ids = {r["id"] for r in rows}
    names_by_id = {r["id"]: _name(r.get("source_uri"), r["id"]) for r in rows}
    edit_html = []
    for ref in refs:
        try:
            fs, folder = _open_edit(store, ref, storage_options)
        except (ValueError, ImportError, ConfigError) as exc:
            b.warnings.append(f"edit folder {ref}: {exc}")
            continue
        edit_html.append(_edit_section(b, ref, fs, folder, ids, names_by_id))
    if refs:
        body.append('<section id="edits"><h2>Latent edits</h2>' + "".join(edit_html) + "</section>")

    # failures
    frows = [(f'<span class="mono">{e(r["id"])}</span>', e(_name(r.get("source_uri"), "–")),
              f'<span class="badge failed">{e(r.get("error_class") or "unknown")}</span>',
              f'<div class="msg">{e(r.get("error_message") or "")}</div>', e(r.get("attempt")), e(r.get("worker") or ""))
             for r in sorted(failed, key=lambda r: (str(r.get("error_class")), str(r.get("source_uri"))))]
    body.append('<section id="failures"><h2>Failures</h2>'
                + (_table(["id", "source", "error class", "reason", "attempt", "worker"], frows)
                   if frows else '<p class="empty">no failed items</p>') + "</section>")

    # config
    body.append(f'<section id="config"><h2>Configuration</h2>{_config_sections(b, rows)}</section>')

    if b.warnings:
        body.append('<section id="warnings"><h2>Warnings</h2><ul>'
                    + "".join(f"<li>{e(w)}</li>" for w in b.warnings[:50]) + "</ul></section>")

    runs = sorted({str(r.get("run_id")) for r in rows if r.get("run_id")})
    title = f"sym3dinv run {run_id}" if run_id else "sym3dinv run store report"
    sub = (f"store <code>{e(store.url)}</code> · "
           + (f"run <code>{e(run_id)}</code>" if run_id else f"{len(runs)} run(s)")
           + f" · {len(rows)} items")
    nav = "".join(f'<a href="#{k}">{v}</a>' for k, v in
                  (("summary", "Summary"), ("metrics", "Metrics"), ("items", "Items"),
                   *((("edits", "Edits"),) if refs else ()), ("failures", "Failures"), ("config", "Configuration")))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"generated by sym3dinv {e(__version__)} on {e(now)} · `sym3dinv report`"
    page = PAGE.format(title=e(title), subtitle=sub, nav=nav, body="\n".join(body), footer=footer, css=CSS)

    for rel, data in b.assets.files.items():
        sink.write(rel, data)
    sink.write("index.html", page.encode("utf-8"))
    index = sink.url("index.html")
    log.info("report: %s (%d items, %d assets)", index, len(rows), len(b.assets.files))
    return ReportResult(index=index, items=len(rows), shown=len(shown), failed=len(failed),
                        assets=tuple(sorted(b.assets.files)), warnings=tuple(b.warnings))
