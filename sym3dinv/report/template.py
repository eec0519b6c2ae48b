"""The report's static parts: the page skeleton and its stylesheet (no scripts, no external fetches)."""

from __future__ import annotations

CSS = """
:root { --ink:#1d2330; --muted:#5d6678; --line:#e3e7ee; --bg:#f6f7fb; --card:#fff; --accent:#2f6fdb;
        --ok:#1f8a5b; --bad:#c2413b; --warn:#b7791f; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:linear-gradient(120deg,#1c2a48,#2f4f8f); color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:650; letter-spacing:.2px; }
header .sub { color:#c9d6f2; font-size:13px; }
header code { color:#fff; background:rgba(255,255,255,.12); padding:1px 6px; border-radius:4px; }
nav { display:flex; gap:18px; padding:8px 32px; background:#fff; border-bottom:1px solid var(--line);
      position:sticky; top:0; z-index:2; font-size:13px; }
nav a { color:var(--muted); text-decoration:none; }
nav a:hover { color:var(--accent); }
main { padding:22px 32px 48px; max-width:1400px; }
section { margin:0 0 30px; }
h2 { font-size:17px; margin:0 0 12px; font-weight:650; }
h3 { font-size:14px; margin:16px 0 8px; color:var(--muted); font-weight:600; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .v { font-size:24px; font-weight:650; line-height:1.2; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.5px; }
.card.ok .v { color:var(--ok); } .card.bad .v { color:var(--bad); }
.cols { display:grid; grid-template-columns:repeat(auto-fit,minmax(340px,1fr)); gap:16px; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.panel h3 { margin-top:0; }
#edits .panel { margin-bottom:12px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th,td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.4px;
     background:#fafbfd; }
tbody tr:nth-child(even) td { background:#fbfcfe; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.msg { max-width:560px; white-space:pre-wrap; word-break:break-word; color:#3a4252; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
         background:#eef2fa; color:#34405a; white-space:nowrap; }
.badge.done { background:#e3f4ec; color:var(--ok); } .badge.failed { background:#fbe7e6; color:var(--bad); }
.badge.skipped { background:#fdf3e1; color:var(--warn); }
.hists { display:flex; flex-wrap:wrap; gap:12px; }
.hists figure { margin:0; background:var(--card); border:1px solid var(--line); border-radius:10px; padding:8px; }
.hists img { display:block; width:320px; height:auto; }
.item { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px;
        margin-bottom:12px; display:grid; grid-template-columns:230px 1fr; gap:14px; }
.item .meta { font-size:12.5px; color:var(--muted); overflow-wrap:anywhere; }
.item .meta b { color:var(--ink); font-weight:600; }
.item .meta .name { font-size:14px; color:var(--ink); font-weight:600; margin-bottom:4px; }
.strip { display:flex; flex-wrap:wrap; align-items:flex-start; gap:6px; }
.strip .sep { width:1px; align-self:stretch; background:var(--line); margin:0 6px; }
.strip figure { margin:0; text-align:center; }
.strip img { display:block; width:128px; height:128px; object-fit:cover; border-radius:6px; background:#111;
             border:1px solid var(--line); }
.strip figcaption { font-size:11px; color:var(--muted); margin-top:2px; }
.strip figure.key figcaption { color:var(--ink); font-weight:600; }
.strip figure.key img { outline:2px solid var(--accent); outline-offset:1px; }
.strip .rowlabel { width:74px; font-size:11px; color:var(--muted); align-self:center; }
.edit-dir + .edit-dir { margin-top:10px; padding-top:10px; border-top:1px solid var(--line); }
.edit-dir .dname { font-weight:600; margin-bottom:6px; }
.edit-dir .views { display:flex; flex-wrap:wrap; gap:10px 26px; }
.edit-dir .strip { flex-wrap:nowrap; }
.edit-dir .strip img, .edit-dir .missing { width:104px; height:104px; }
.edit-dir .rowlabel { width:auto; min-width:64px; white-space:nowrap; }
.missing { width:128px; height:128px; border-radius:6px; border:1px dashed #c8cfdc; color:var(--muted);
           display:flex; align-items:center; justify-content:center; font-size:11px; }
.note { color:var(--muted); font-size:12.5px; margin:6px 0 0; }
.empty { color:var(--muted); font-style:italic; }
footer { color:var(--muted); font-size:12px; padding:0 32px 30px; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{title}</h1><div class="sub">{subtitle}</div></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<footer>{footer}</footer>
</body>
</html>
"""
