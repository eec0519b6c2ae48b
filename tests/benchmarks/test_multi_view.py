"""benchmarks/multi_view.py at toy size (issue 19): the tiny generator, cheap losses, one identity.

Checks what the long run relies on: one evaluation set per identity, shared by its 1, 2 and 3 photo rows
and free of views near any photo; the ``photos`` table with the best single photo; the paired
differences; the markdown; ``--resume``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.plugin import cheap_perceptual, make_cheap_losses, make_tiny

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import multi_view as mv  # noqa: E402  (a script folder, not a package)
import novel_view as nv  # noqa: E402

TOY = ["--preset", "smoke", "--set", "stage1.steps=1", "--set", "stage1.w_avg_samples=64", "--set",
       "stage2.steps=2", "--identities", "1", "--resamples", "200", "--threads", "1"]


def test_eval_cameras_leave_out_views_near_any_photo() -> None:
    from sym3dinv.cameras import yaw_pitch_roll

    args = mv.parse_args(["--photo-yaws", "0,30,60"])
    c = mv.photo_cameras(0, args)
    e = nv.eval_identity(0, 3)
    cams, names = mv.eval_cameras(c, e.gt_labels, 15.0)
    assert names == ["gt-60", "gt-30"]  # +30 / +60 are photos; the mirrors repeat -30 / -60; mirror of 0 is a photo
    assert torch.rad2deg(yaw_pitch_roll(cams)[:, 0]).tolist() == pytest.approx([-60, -30], abs=1e-3)
    other = mv.photo_cameras(1, args)  # the side alternates with the identity
    assert torch.rad2deg(yaw_pitch_roll(other)[:, 0]).tolist() == pytest.approx([0, -30, -60], abs=1e-3)
    _, names2 = mv.eval_cameras(mv.photo_cameras(0, mv.parse_args(["--photo-yaws", "10,40,-20"])), e.gt_labels, 15.0)
    assert names2 == ["gt-60", "gt+60", "mirror1"]  # mirror1 (-40) is 20 deg from the nearest photo


def test_toy_run_summary_markdown_and_resume(tmp_path: Path, capsys) -> None:
    bench = nv.Bench(make_tiny(0), make_cheap_losses(), cheap_perceptual, identity=False)
    out = tmp_path / "mv.json"
    res = mv.main([*TOY, "--json", str(out), "--markdown", str(tmp_path / "mv.md")], bench=bench)
    rows = res["rows"]
    assert sorted(r["condition"] for r in rows) == sorted(mv.CONDITIONS) and {r["k"] for r in rows} == {0}
    assert len({tuple(r["eval_views"]) for r in rows}) == 1  # the 1, 2 and 3 photo rows share the views
    three = next(r for r in rows if r["k"] == 0 and r["photos"] == 3)
    assert len(three["member_input_lpips"]) == 3 and three["stage2_steps"] == 2
    text = capsys.readouterr().out  # one line per row, then the indented result object
    printed = json.loads(text[text.index('{\n "benchmark"'):])
    photos = printed["photos"]
    assert set(photos) == {"1", "2", "3"}
    for n in ("1", "2", "3"):
        assert {"nv_lpips", "nv_psnr", "input_lpips", "seconds"} <= set(photos[n])
    singles = [r["nv_lpips"] for r in rows if r["photos"] == 1]
    assert photos["1"]["best_nv_lpips"] <= photos["1"]["nv_lpips"]
    assert photos["1"]["nv_lpips"] == pytest.approx(sum(singles) / len(singles))
    paired = printed["paired"]
    assert paired["2_vs_best1"]["nv_lpips"]["n"] == 1 and "3_vs_2" in paired
    assert "seconds_per_photo" in printed["summary"]
    md = (tmp_path / "mv.md").read_text()
    assert "| all | 1 | 1 |" in md and "2_vs_best1" in md and "best single" in md
    again = mv.main([*TOY, "--json", str(out), "--resume"], bench=bench)  # nothing left to run
    assert [r["seconds"] for r in again["rows"]] == [r["seconds"] for r in rows]
    with pytest.raises(SystemExit, match="other settings"):
        mv.main([*TOY, "--json", str(out), "--resume", "--photo-yaws", "0,20,40"], bench=bench)
