"""The HTML run report: contents, escaping, both asset modes, local and memory:// stores, the CLI, and a
real browser (headless Chromium) loading every image without console errors."""

from __future__ import annotations

import base64
import html.parser
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from report_helpers import HOSTILE, RUN, make_edit, make_store

from sym3dinv.errors import ConfigError
from sym3dinv.report import build_report
from sym3dinv.store import RunStore


class _Tags(html.parser.HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(page)
    return p.tags


def _img_srcs(page: str) -> list[str]:
    return [str(a["src"]) for t, a in _tags(page) if t == "img"]


@pytest.fixture()
def local_store(tmp_path: Path) -> tuple[RunStore, dict[str, list[str]]]:
    store = RunStore(str(tmp_path / "store"))
    ids = make_store(store)
    make_edit(store, ids["done"][:2])
    return store, ids


def test_relative_assets_all_exist_and_sections_present(local_store) -> None:  # noqa: ANN001
    store, ids = local_store
    res = build_report(store)
    index = Path(res.index)
    assert index == Path(store.root) / "reports" / "all" / "index.html"
    page = index.read_text()
    srcs = _img_srcs(page)
    # 3 items x (input + 3 views) + 3 histograms + edit 2 items x 3 strengths x 2 views
    assert len(srcs) == 3 * 4 + 3 + 2 * 3 * 2
    for src in srcs:  # every referenced asset exists next to index.html and is a PNG
        assert src.startswith("assets/") and not src.startswith("/")
        assert (index.parent / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
    assert sorted(res.assets) == sorted(set(srcs))
    assert res.items == 5 and res.shown == 3 and res.failed == 2 and not res.warnings
    for item_id in ids["done"]:
        assert f'id="item-{item_id}"' in page
    for item_id in ids["failed"]:
        assert item_id in page
    for section in ("summary", "metrics", "items", "edits", "failures", "config"):
        assert f'<section id="{section}">' in page
    assert "internal_error" in page and "out_of_memory" in page  # failure classes with reasons
    assert "cannot decode" in page
    assert "PSNR (dB)" in page and "LPIPS (AlexNet)" in page
    assert 'alt="reconstruction yaw+0.00_pitch+0.00"' in page  # the view nearest the input camera
    assert "hair_lightness" in page and "original" in page  # edit strips


def test_every_store_string_is_escaped(local_store) -> None:  # noqa: ANN001
    store, _ = local_store
    page = Path(build_report(store).index).read_text()
    tags = _tags(page)
    assert not [t for t, _ in tags if t == "script"], "no script tag may reach the page"
    handlers = [(t, k) for t, a in tags for k in a if k.lower().startswith("on")]
    assert not handlers, handlers
    assert "<script>" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert html.escape(HOSTILE, quote=True) in page  # shown as text, escaped, in names/messages/config
    srcs = [a.get("src") for t, a in tags if t == "img"]
    assert all(s and re.fullmatch(r"assets/[0-9a-f]{20}\.png", s) for s in srcs)


def test_memory_store_self_contained() -> None:
    store = RunStore(f"memory://report-{uuid.uuid4().hex}")
    ids = make_store(store)
    make_edit(store, ids["done"][:1], name="one")
    res = build_report(store, self_contained=True)
    assert res.index.startswith("memory://") and res.assets == ()
    page = store.fs.cat_file(store.abspath("reports/all/index.html")).decode()
    srcs = _img_srcs(page)
    assert len(srcs) == 3 * 4 + 3 + 1 * 3 * 2
    for src in srcs:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:4] == b"\x89PNG"
    assert not store.fs.exists(store.abspath("reports/all/assets"))


def test_run_filter_and_unknown_run(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "s"))
    make_store(store, n_done=2, run_id="run-a", hostile=False)
    make_store(store, n_done=1, run_id="run-b", hostile=False)  # different payloads: new ids
    res = build_report(store, run_id="run-b", out=str(tmp_path / "rb"))
    assert res.items == 3 and res.shown == 1 and res.failed == 2
    assert "run-b" in Path(res.index).read_text()
    assert build_report(store).items == 7  # 2 + 2 failed (run-a), 1 + 2 failed (run-b)
    with pytest.raises(ConfigError, match="run-zzz"):
        build_report(store, run_id="run-zzz")


def test_missing_render_becomes_placeholder_and_warning(local_store) -> None:  # noqa: ANN001
    store, ids = local_store
    row = next(r for r in store.latest().to_pylist() if r["id"] == ids["done"][1])
    store.fs.rm_file(store.abspath(dict(row["outputs"])["render/yaw-0.50_pitch+0.00"]))
    res = build_report(store, edits=[])
    page = Path(res.index).read_text()
    assert 'class="missing"' in page and any("missing or unreadable" in w for w in res.warnings)
    assert '<section id="edits">' not in page  # edits=[]: none shown


def test_empty_store(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "empty"))
    res = build_report(store)
    page = Path(res.index).read_text()
    assert res.items == 0 and "no done items" in page and "no failed items" in page


def test_cli_report(local_store, tmp_path: Path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from sym3dinv.cli import app

    store, _ = local_store
    out = tmp_path / "cli-report"
    r = CliRunner().invoke(app, ["report", store.url, "--out", str(out), "--run", RUN, "--self-contained"])
    assert r.exit_code == 0, r.output
    assert (out / "index.html").is_file() and not (out / "assets").exists()
    r = CliRunner().invoke(app, ["report", store.url, "--run", "nope"])
    assert r.exit_code == 2 and "nope" in r.output


# --- a real browser -----------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (ev) {
  var t = ev.target || {};
  window.__errors.push('error ' + (t.tagName || '') + ' ' + (t.src || ev.message || ''));
}, true);
var _ce = console.error;
console.error = function () { window.__errors.push('console.error ' + Array.prototype.join.call(arguments, ' ')); _ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var out = [];
  document.querySelectorAll('img').forEach(function (im) { out.push([im.complete, im.naturalWidth, im.getAttribute('src').slice(0, 40)]); });
  var pre = document.createElement('pre'); pre.id = '__probe';
  pre.textContent = JSON.stringify({images: out, errors: window.__errors});
  document.body.appendChild(pre);
});
</script>"""


def _open_in_chromium(index: Path) -> tuple[dict, str]:
    probe_copy = index.with_name("probe.html")
    probe_copy.write_text(index.read_text().replace("<head>", "<head>" + PROBE, 1))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom", probe_copy.as_uri()],
        capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="__probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"probe missing from the dumped DOM; stderr:\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1))), proc.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless Chromium (Debian: apt-get install chromium)")
@pytest.mark.parametrize("self_contained", [False, True])
def test_report_loads_in_headless_chromium(local_store, tmp_path: Path, self_contained: bool) -> None:  # noqa: ANN001
    store, _ = local_store
    res = build_report(store, out=str(tmp_path / f"r{int(self_contained)}"), self_contained=self_contained)
    probe, stderr = _open_in_chromium(Path(res.index))
    images = probe["images"]
    assert len(images) == 3 * 4 + 3 + 2 * 3 * 2
    broken = [src for complete, width, src in images if not complete or width <= 0]
    assert not broken, broken
    assert probe["errors"] == []
    console = [ln for ln in stderr.splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if "error" in ln.lower() or "uncaught" in ln.lower()], console
