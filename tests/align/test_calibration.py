"""Yaw calibration: odd and monotone (the mirror test stays exact), the fit recovers a known response, the
real-face-mesh asset loads from the offline landmarker file, and the calibrated aligner stays mirror
consistent on real offline photos."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sym3dinv.align.calibration import bucket_table, calibrate_yaw, fit_pitch_gain, fit_yaw
from sym3dinv.config.align import AlignConfig

KNOTS = (0.0, 15.0, 30.0, 45.0, 60.0)


def test_calibration_is_odd_monotone_and_extends_linearly() -> None:
    values = (0.0, 15.5, 31.5, 48.0, 65.0)
    for raw in np.linspace(-80, 80, 33):
        r = math.radians(raw)
        assert calibrate_yaw(-r, KNOTS, values) == -calibrate_yaw(r, KNOTS, values)  # exact mirror
    out = [calibrate_yaw(math.radians(a), KNOTS, values) for a in np.linspace(0, 80, 81)]
    assert all(b >= a for a, b in zip(out, out[1:], strict=False))
    assert math.degrees(calibrate_yaw(math.radians(70.0), KNOTS, values)) == pytest.approx(65 + 10 * 17 / 15)
    assert calibrate_yaw(0.3, (), ()) == 0.3


def test_fit_recovers_an_underestimating_response() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(-62, 62, 400)
    raw = true * (1 - 0.08 * (np.abs(true) / 60) ** 2) + rng.normal(0, 0.3, true.size)  # short at large |yaw|
    values = fit_yaw(raw, true, KNOTS)
    cal = np.array([math.degrees(calibrate_yaw(math.radians(r), KNOTS, values)) for r in raw])
    assert np.abs(cal - true).mean() < 0.5 < np.abs(raw - true).mean()
    assert values[0] == 0.0 and all(b > a for a, b in zip(values, values[1:], strict=False))
    assert fit_pitch_gain(2 * true + 3, true) == pytest.approx(0.5)
    rows = bucket_table(true, cal - true, np.zeros_like(true))
    assert [r.bucket for r in rows] == ["0-15", "15-30", "30-45", "45-60", "all"] and rows[-1].n == 400


def test_config_checks_the_knots() -> None:
    from sym3dinv.errors import ConfigError

    with pytest.raises(ConfigError, match="same length"):
        AlignConfig(yaw_knots_deg=(0.0, 15.0), yaw_values_deg=(0.0,))


def test_canonical_face_mesh_renders_with_known_angles() -> None:
    from sym3dinv.align.face_mesh_renders import canonical_face_mesh, render_face

    mesh = canonical_face_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.triangles.shape == (898, 3) and mesh.uv.shape == (468, 2)
    assert mesh.triangles.max() == 467 and 14 < np.ptp(mesh.vertices[:, 0]) < 17  # centimetres
    r = render_face(math.radians(30), math.radians(-10), seed=3, size=128, mesh=mesh)
    assert r.image.shape == (128, 128, 3) and r.image.dtype == np.uint8
    assert r.yaw == pytest.approx(math.radians(30))
    assert np.array_equal(r.image, render_face(math.radians(30), math.radians(-10), 3, 128, mesh).image)


def test_calibrated_aligner_is_mirror_consistent_on_real_photos() -> None:
    """The calibration is odd, so the offline real portraits keep their mirror consistency (<= 1 deg)."""
    from sym3dinv.align import FaceAligner
    from sym3dinv.align.calibration import FACE_MESH_KNOTS_DEG, FACE_MESH_VALUES_DEG
    from sym3dinv.align.evaluate import mirror_consistency, offline_portraits

    cfg = AlignConfig(min_confidence=0.0, min_face_size=16, yaw_knots_deg=FACE_MESH_KNOTS_DEG,
                      yaw_values_deg=FACE_MESH_VALUES_DEG)
    with FaceAligner(cfg) as a:
        r = mirror_consistency(a, offline_portraits().values())
    assert r.detected == r.images == 2
    assert r.yaw_max_deg <= 1.0 and r.pitch_max_deg <= 1.0, r
