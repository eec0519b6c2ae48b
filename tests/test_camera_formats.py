"""Camera conventions: every format round-trips to 1e-6 both ways, and each matches its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sym3dinv import camera_formats as F
from sym3dinv.cameras import camera_label, world_to_pixel, yaw_pitch_roll
from sym3dinv.dataset.exports import nerfstudio_frame

FORMATS = ("eg3d", "opencv", "opengl", "nerfstudio", "instant-ngp", "colmap", "deep3dface")
POSES = [(0.0, 0.0, 0.0), (0.6, -0.2, 0.0), (-1.1, 0.3, 0.15), (0.25, 0.05, -0.3)]


def _label(yaw: float, pitch: float, roll: float) -> np.ndarray:
    return camera_label(yaw, pitch, roll=roll, focal=3.9)[0].double().numpy()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("pose", POSES)
def test_label_round_trips(fmt: str, pose: tuple[float, float, float]) -> None:
    c = _label(*pose)
    v = F.from_label(c, fmt)
    assert v.shape == (F.POSE_LENGTH[F.canonical_format(fmt)] + 9,)
    assert np.allclose(F.to_label(v, fmt), c, atol=1e-6)
    assert np.allclose(F.from_label(F.to_label(v, fmt), fmt), v, atol=1e-6)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_format_values_round_trip_exactly() -> None:
    """From each format's own numbers (float64): back to the same numbers."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, t = _random_rotation(rng), rng.normal(size=3)
        K = [4.0, 0.0, 0.5, 0.0, 4.1, 0.48, 0.0, 0.0, 1.0]
        rt = np.concatenate([r, t[:, None]], 1).reshape(-1)
        assert np.allclose(F.from_label(F.to_label([*rt, *K], "opencv"), "opencv"), [*rt, *K], atol=1e-12)
        q = F.quaternion_from_matrix(r)
        assert q[0] >= 0 and np.allclose(F.matrix_from_quaternion(q), r, atol=1e-12)
        assert np.allclose(F.from_label(F.to_label([*q, *t], "colmap"), "colmap")[:7], [*q, *t], atol=1e-12)
        gl = np.eye(4)
        gl[:3, :3], gl[:3, 3] = r, t
        assert np.allclose(F.from_label(F.to_label(gl.reshape(-1), "opengl"), "opengl")[:16], gl.reshape(-1))
        # deep3dface: the label keeps only the direction of the camera centre; trans comes back at |c| = 2.7
        ang = rng.uniform(-0.6, 0.6, size=3)
        R = F.rotation_xyz(ang).T
        c = rng.normal(size=3)
        c = 2.7 * c / np.linalg.norm(c)
        trans = -R.T @ ((c - np.array([0, 0.006, 0.161])) / 0.27) + np.array([0, 0, 10.0])
        back = F.from_label(F.to_label([*ang, *trans], "deep3dface"), "deep3dface")
        assert np.allclose(back[:6], [*ang, *trans], atol=1e-9)


def test_opencv_extrinsics_project_like_the_label() -> None:
    """x_cam = R x + t of the OpenCV numbers projects the pivot where the label's own projection does."""
    c = _label(0.5, -0.15, 0.1)
    rt = F.from_label(c, "opencv")[:12].reshape(3, 4)
    p = np.array([0.1, 0.05, 0.2])
    pc = rt[:, :3] @ p + rt[:, 3]
    K = c[16:].reshape(3, 3)
    uv = (K @ pc)[:2] / pc[2]
    uv_ref, _ = world_to_pixel(torch.tensor([[p.tolist()]], dtype=torch.float64), torch.tensor(c[None]))
    assert np.allclose(uv, uv_ref[0, 0].numpy(), atol=1e-9)


def test_opengl_matches_the_nerfstudio_export_and_pixel_intrinsics() -> None:
    c = _label(-0.4, 0.1, 0.0)
    frame = nerfstudio_frame(c, 512, 512, "a.png")
    v = F.from_label(c, "nerfstudio", size=(512, 512))
    assert np.allclose(v[:16], np.array(frame["transform_matrix"]).reshape(-1))
    assert v[16] == pytest.approx(frame["fl_x"]) and v[18] == pytest.approx(frame["cx"])
    assert np.allclose(F.to_label(v, "instant-ngp", size=(512, 512)), c)
    assert np.allclose(F.to_label(v[:16], "opengl")[16:], F.ffhq_intrinsics().reshape(-1))  # default: FFHQ's


def test_deep3dface_follows_eg3d_preprocessing() -> None:
    """Zero angles and translation: EG3D's script puts the camera at 0.27 * (0, 0, 10) + (0, 0.006, 0.161),
    rescaled to 2.7, looking down -z with image y down; a yaw of the head turns the camera the other way."""
    c = F.to_label([0, 0, 0, 0, 0, 0], "deep3dface")
    m = c[:16].reshape(4, 4)
    pos = np.array([0.0, 0.006, 2.7 + 0.161])
    assert np.allclose(m[:3, 3], pos / np.linalg.norm(pos) * 2.7)
    assert np.allclose(m[:3, :3], np.diag([1.0, -1.0, -1.0]))
    assert np.allclose(c[16:], [4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1])
    yaw = float(yaw_pitch_roll(torch.tensor(F.to_label([0, 0.3, 0, 0, 0, 0], "deep3dface")[None]))[0, 0])
    assert yaw == pytest.approx(-0.3, abs=0.02)  # R = Ry(0.3)^T moves the camera to world -x


def test_bad_inputs_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown camera format"):
        F.to_label([0] * 25, "blender2")
    with pytest.raises(ValueError, match="7 values"):
        F.to_label([1, 0, 0, 0, 0], "colmap")
    with pytest.raises(ValueError, match="25 values"):
        F.from_label([0] * 24, "opencv")
