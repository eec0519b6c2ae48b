"""benchmarks/novel_view.py at toy size: the tiny generator, cheap losses, one identity, two inputs.

Checks what the lead's long run relies on: the modes' switches, fixed input yaws on alternating sides,
the head variants and their symmetry class, the row structure (per-camera metrics, novel views without
the camera at the input), the buckets and paired differences of the summary, the markdown, and
``--resume`` (kept rows are not run again; other settings are refused).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.plugin import cheap_perceptual, make_cheap_losses, make_tiny

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import novel_view as nv  # noqa: E402  (a script folder, not a package)

TOY = ["--preset", "smoke", "--set", "stage1.steps=1", "--set", "stage1.w_avg_samples=64", "--set",
       "stage2.steps=1", "--identities", "1", "--input-yaws", "0,60", "--heads", "symmetric,strong",
       "--resamples", "200", "--no-identity", "--threads", "1"]


@pytest.fixture(scope="module")
def bench() -> nv.Bench:
    return nv.Bench(make_tiny(0), make_cheap_losses(), cheap_perceptual, identity=False)


def test_mode_switches_and_stage2_multiplier() -> None:
    w = nv.mode_config("spi-warps-only", "cpu", 0, {})
    assert w.mode == "spi" and w.stage2.warp and not (w.stage2.mirror or w.stage2.depth_reg or w.stage1.mirror)
    m = nv.mode_config("spi-mirror-only", "cpu", 0, {"stage1.steps": "7"})
    assert m.stage1.mirror and m.stage2.mirror and not (m.stage2.warp or m.stage2.depth_reg) and m.stage1.steps == 7
    assert nv.mode_config("spi-gt-depth", "cpu", 0, {}).stage2.warp_depth == "given"
    assert nv.mode_config("pti-s2x3", "cpu", 0, {}).stage2.steps == 3 * nv.mode_config("pti", "cpu", 0, {}).stage2.steps
    with pytest.raises(SystemExit):
        nv.mode_config("spi-everything", "cpu", 0, {})


def test_fixed_input_yaws_alternate_sides() -> None:
    from sym3dinv.cameras import yaw_pitch_roll

    args = nv.parse_args(["--input-yaws", "0,30,60", "--input-pitch", "5"])
    yaws = [yaw_pitch_roll(nv.input_cameras(k, nv.eval_identity(k, 3), args)).rad2deg() for k in (0, 1)]
    assert yaws[0][:, 0].tolist() == pytest.approx([0, 30, 60], abs=1e-3)
    assert yaws[1][:, 0].tolist() == pytest.approx([0, -30, -60], abs=1e-3)
    assert (yaws[0][:, 1].abs() <= 5 + 1e-4).all() and yaws[0][:, 1].abs().max() > 0
    strat = nv.parse_args(["--input-yaws", "stratified", "--inputs", "4"])
    assert nv.input_cameras(0, nv.eval_identity(0, 4), strat).shape == (4, 25)


def test_head_variants_keep_identity() -> None:
    e = nv.eval_identity(0, 1)  # k = 0: the split forces it strongly asymmetric
    split, sym, mild = (nv.head_params(e, v) for v in ("split", "symmetric", "mild"))
    assert nv.symmetry_class(split) == "strong" and nv.symmetry_class(sym) == "symmetric"
    assert nv.symmetry_class(mild) in ("mild", "symmetric") and mild.parting_side == 0 and mild.hair_uneven == 0
    assert sym.face_width == split.face_width == mild.face_width


def test_toy_run_rows_summary_markdown_resume(bench, tmp_path) -> None:
    js, md = tmp_path / "nv.json", tmp_path / "nv.md"
    out = nv.main([*TOY, "--modes", "pti,spi-gt-depth", "--json", str(js), "--markdown", str(md)], bench)
    rows = out["rows"]
    assert len(rows) == 8 and {nv.row_key(r) for r in rows} == {
        (0, h, i, m) for h in ("symmetric", "strong") for i in (0, 1) for m in ("pti", "spi-gt-depth")}
    r60 = next(r for r in rows if r["input"] == 1 and r["heads"] == "strong" and r["mode"] == "spi-gt-depth")
    assert r60["yaw"] == pytest.approx(60, abs=1e-3) and r60["yaw_bucket"] == "60" and r60["symmetry"] == "strong"
    assert r60["novel_views"] == ["gt-60", "gt-30", "gt+30"]  # gt+60 is the input camera: not a novel view
    assert r60["stage2_steps"] == 1 and r60["seconds"] > 0 and r60["input_lpips"] is not None
    for key in ("lpips_gt-60", "psnr_gt+30", "ssim_mirror", "depth_input", "novel_lpips", "novel_depth",
                "mirror_lpips", "input_depth", "input_psnr"):
        assert isinstance(r60[key], float), key
    assert r60["novel_lpips"] == pytest.approx((r60["lpips_gt-60"] + r60["lpips_gt-30"] + r60["lpips_gt+30"]) / 3)
    r0 = next(r for r in rows if r["input"] == 0 and r["heads"] == "symmetric")
    assert r0["yaw_bucket"] == "0" and r0["symmetry"] == "symmetric" and len(r0["novel_views"]) == 4

    s = out["summary"]
    assert {"all", "|yaw| 0", "|yaw| 60", "symmetric", "strong", "strong, |yaw| 60"} <= s.keys()
    d = s["all"]["vs_pti"]["spi-gt-depth"]["novel_lpips"]
    assert d["n"] == 4 and d["lo"] <= d["diff"] <= d["hi"] and d["verdict"] in (
        "no difference", "spi-gt-depth better", "pti better")
    assert s["|yaw| 60"]["means"]["pti"]["n"] == 2 and s["strong, |yaw| 60"]["vs_pti"]["spi-gt-depth"]["novel_lpips"]["n"] == 1
    text = md.read_text()
    assert "## spi-gt-depth − pti (paired)" in text and r"| strong, \|yaw\| 60 | pti | 1 |" in text
    assert "Real photos resemble the `mild` bucket" in text and "benchmarks/novel_view.py --preset smoke" in text
    assert json.loads(js.read_text())["summary"]["all"]["means"]["pti"]["n"] == 4

    again = nv.main([*TOY, "--modes", "pti,spi-gt-depth,w+", "--json", str(js), "--resume"], bench)
    assert len(again["rows"]) == 12 and again["rows"][:8] == rows  # kept as they were, only w+ ran
    assert {r["mode"] for r in again["rows"][8:]} == {"w+"}
    with pytest.raises(SystemExit, match="other settings"):
        nv.main([*TOY, "--preset", "cpu", "--modes", "pti", "--json", str(js), "--resume"], bench)
