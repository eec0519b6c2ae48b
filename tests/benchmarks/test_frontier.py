"""benchmarks/frontier.py on the committed v2 benchmark rows: labels, side buckets, pairing, the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import frontier as fr  # noqa: E402  (a script folder, not a package)

CPU = ROOT / "docs" / "benchmarks" / "novel_view_v2_cpu_mild.json"
FAST = ROOT / "docs" / "benchmarks" / "novel_view_v2_fast_mild.json"


def test_frontier_of_two_runs(tmp_path: Path) -> None:
    out = fr.main([str(CPU), str(FAST), "--reference", "spi@cpu", "--resamples", "200",
                   "--markdown", str(tmp_path / "f.md")])
    p = out["presets"]
    assert set(p) == {"pti@cpu", "spi@cpu", "pti@fast", "spi@fast"}
    assert p["spi@cpu"]["n"] == 36 and p["spi@fast"]["n"] == 12  # 12 x (0, 30, 60) and 6 x (30, 60)
    d = p["spi@fast"]["vs_spi@cpu_novel_lpips"]
    assert d["n"] == 12 and d["lo"] <= d["diff"] <= d["hi"]  # paired on the 12 inputs both runs have
    assert p["spi@cpu"]["seconds"] > p["pti@cpu"]["seconds"] > 0
    row = {"novel_views": ["gt-60", "gt+30"], "lpips_gt-60": 0.2, "lpips_gt+60": 9.0, "lpips_gt+30": 0.1,
           "lpips_gt-30": 9.0}
    assert fr.side_lpips(row, 60) == pytest.approx(0.2) and fr.side_lpips(row, 30) == pytest.approx(0.1)
    table = (tmp_path / "f.md").read_text()
    assert "| spi@cpu | 36 |" in table and "reference" in table and table.index("pti@cpu") < table.index("spi@fast")
