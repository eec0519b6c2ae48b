"""Static HTML reports of run stores (``sym3dinv report STORE``); see :mod:`sym3dinv.report.html`."""

from sym3dinv.report.html import ReportResult, build_report, find_edits, parse_view, thumbnail

__all__ = ["ReportResult", "build_report", "find_edits", "parse_view", "thumbnail"]
