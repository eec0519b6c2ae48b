"""Camera sets hold exactly the requested poses: labels decoded back with ``yaw_pitch_roll``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sym3dinv.cameras import decode_label, yaw_pitch_roll
from sym3dinv.dataset.camera_sets import FFHQ_PITCH_STD, FFHQ_YAW_STD, CameraSpec, camera_set
from sym3dinv.errors import ConfigError


def decoded(labels: np.ndarray) -> np.ndarray:
    return yaw_pitch_roll(torch.from_numpy(labels).double()).numpy()


def test_grid_decodes_to_the_requested_yaw_pitch_grid() -> None:
    spec = CameraSpec(kind="grid", yaw_range=(-0.8, 0.6), pitch_range=(-0.3, 0.2), n_yaw=4, n_pitch=3)
    cs = camera_set(spec)
    assert len(cs) == 12 and cs.names[0] == "v000" and cs.labels.shape == (12, 25) and cs.labels.dtype == np.float32
    want = [(y, p) for p in np.linspace(-0.3, 0.2, 3) for y in np.linspace(-0.8, 0.6, 4)]  # pitch rows, yaw columns
    ypr = decoded(cs.labels)
    np.testing.assert_allclose(ypr[:, :2], np.asarray(want), atol=2e-6)
    np.testing.assert_allclose(ypr[:, 2], 0.0, atol=2e-6)
    np.testing.assert_allclose(np.c_[cs.yaw, cs.pitch], np.asarray(want), atol=1e-12)
    m, K = decode_label(torch.from_numpy(cs.labels))
    np.testing.assert_allclose(m[:, :3, 3].norm(dim=-1).numpy(), 2.7, atol=1e-5)  # on the FFHQ orbit
    np.testing.assert_allclose(K[:, 0, 0].numpy(), 4.2647, atol=1e-6)
    fwd = m[:, :3, 2].numpy()  # every camera looks at the pivot (0, 0, 0.2)
    to_pivot = np.array([0, 0, 0.2]) - m[:, :3, 3].numpy()
    cos = (fwd * to_pivot).sum(1) / np.linalg.norm(to_pivot, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)


def test_orbit_follows_eg3d_gen_videos_path() -> None:
    cs = camera_set(CameraSpec(kind="orbit", yaw_range=(-0.35, 0.35), pitch_range=(-0.25, 0.25), n_views=8))
    t = np.arange(8) / 8
    ypr = decoded(cs.labels)
    np.testing.assert_allclose(ypr[:, 0], 0.35 * np.sin(2 * np.pi * t), atol=2e-6)
    np.testing.assert_allclose(ypr[:, 1], 0.25 * np.cos(2 * np.pi * t), atol=2e-6)


def test_ffhq_samples_are_seeded_truncated_and_have_the_documented_spread() -> None:
    spec = CameraSpec(kind="ffhq", n_views=400, seed=3, yaw_range=(-1.0, 1.0), pitch_range=(-0.5, 0.5))
    a, b = camera_set(spec), camera_set(spec)
    np.testing.assert_array_equal(a.labels, b.labels)  # fixed seed -> same cameras
    assert not np.array_equal(a.labels, camera_set(CameraSpec(kind="ffhq", n_views=400, seed=4)).labels)
    ypr = decoded(a.labels)
    np.testing.assert_allclose(ypr[:, 0], a.yaw, atol=2e-6)
    np.testing.assert_allclose(ypr[:, 1], a.pitch, atol=2e-6)
    assert abs(a.yaw.std() - FFHQ_YAW_STD) < 0.04 and abs(a.pitch.std() - FFHQ_PITCH_STD) < 0.02
    narrow = camera_set(CameraSpec(kind="ffhq", n_views=50, yaw_range=(-0.2, 0.1), pitch_range=(0.0, 0.1)))
    assert narrow.yaw.min() >= -0.2 and narrow.yaw.max() <= 0.1 and narrow.pitch.min() >= 0 and narrow.pitch.max() <= 0.1


def test_labels_set_reuses_cameras_of_a_dataset_json(tmp_path) -> None:
    from sym3dinv.cameras import camera_label

    pool = camera_label(torch.tensor([-0.4, 0.0, 0.3]), torch.tensor([0.1, -0.1, 0.0]), focal=5.0)
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": [[f"img{i}.png", pool[i].tolist()] for i in range(3)]}))
    cs = camera_set(CameraSpec(kind="labels", labels_path=str(path), n_views=6, seed=1))
    assert len(cs) == 6
    for lab in cs.labels:  # every sampled camera is one of the file's, bit for bit (float32)
        assert any(np.array_equal(lab, p) for p in pool.float().numpy())
    np.testing.assert_allclose(decoded(cs.labels)[:, :2], np.c_[cs.yaw, cs.pitch], atol=1e-6)


@pytest.mark.parametrize("kw", [{"kind": "spiral"}, {"yaw_range": (0.5, -0.5)}, {"pitch_range": (-2.0, 0.0)},
                                {"kind": "grid", "n_yaw": 0}, {"kind": "orbit", "n_views": 0},
                                {"kind": "labels"}, {"radius": -1.0}, {"yaw_range": (math.nan, 1.0)}])
def test_bad_specs_are_config_errors(kw: dict) -> None:
    with pytest.raises(ConfigError):
        CameraSpec(**kw)
