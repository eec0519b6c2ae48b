"""Camera labels against EG3D's own sampler outputs (stored in the fixtures) and closed-form checks."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from sym3dinv import cameras as C


@pytest.fixture(scope="module")
def ref(eg3d_fixtures):
    return load_file(eg3d_fixtures / "tiny_reference.safetensors")


def test_labels_equal_eg3d_sampler(ref) -> None:
    K = C.intrinsics(C.focal_from_fov())
    assert torch.equal(C.encode_label(C.cam2world_from_angles(0.0, 0.0), K), ref["c_front"])
    assert torch.allclose(C.encode_label(C.cam2world_from_angles(0.4, -0.1), K), ref["c_yaw"], atol=1e-6)
    assert C.focal_from_fov() == pytest.approx(4.263391, abs=1e-6)


def test_mirror_label_matches_fixture_and_is_involution(ref) -> None:
    m = C.mirror_label(ref["c_yaw"])
    assert torch.allclose(m, ref["c_yaw_mirror"], atol=1e-7)
    assert torch.allclose(C.mirror_label(m), ref["c_yaw"], atol=1e-7)
    # the mirror of yaw +0.4 is the sampler's yaw -0.4 camera (README: within 6e-7)
    K = C.intrinsics(C.focal_from_fov())
    assert torch.allclose(m, C.encode_label(C.cam2world_from_angles(-0.4, -0.1), K), atol=1e-6)


@pytest.mark.parametrize("yaw,pitch,roll", [(0.0, 0.0, 0.0), (0.7, -0.3, 0.0), (-1.2, 0.25, 0.1), (0.3, 0.1, -0.2)])
def test_angles_round_trip(yaw: float, pitch: float, roll: float) -> None:
    ypr = C.yaw_pitch_roll(C.camera_label(yaw, pitch, roll=roll))
    assert torch.allclose(ypr, torch.tensor([[yaw, pitch, roll]]), atol=1e-5)
    # mirroring negates yaw and roll, keeps pitch
    ypr_m = C.yaw_pitch_roll(C.mirror_label(C.camera_label(yaw, pitch, roll=roll)))
    assert torch.allclose(ypr_m, torch.tensor([[-yaw, pitch, -roll]]), atol=1e-5)


def test_batched_labels() -> None:
    yaws = torch.linspace(-1, 1, 5)
    c = C.camera_label(yaws, 0.1)
    assert c.shape == (5, 25)
    assert torch.allclose(C.yaw_pitch_roll(c)[:, 0], yaws, atol=1e-5)
    m, K = C.decode_label(c)
    assert torch.allclose(m[:, :3, :3] @ m[:, :3, :3].transpose(1, 2), torch.eye(3).expand(5, 3, 3), atol=1e-5)
    assert torch.allclose(m[:, :3, 3].norm(dim=-1), torch.full((5,), 2.7))


def test_cameras_look_at_the_pivot_and_project_it_to_the_centre() -> None:
    c = C.camera_label(torch.tensor([0.0, 0.5, -0.8]), torch.tensor([0.0, 0.2, -0.1]))
    uv, z = C.world_to_pixel(torch.tensor([[list(C.PIVOT)]] * 3), c)
    assert torch.allclose(uv, torch.full_like(uv, 0.5), atol=1e-5)
    assert torch.all(z > 2.4)


def test_pixel_rays_hit_their_own_pixels() -> None:
    c = C.camera_label(0.3, -0.1)
    res = 8
    origins, dirs = C.pixel_rays(c, res)
    pts = origins + 2.5 * dirs
    uv, _ = C.world_to_pixel(pts, c)
    t = (torch.arange(res) + 0.5) / res
    v, u = torch.meshgrid(t, t, indexing="ij")
    assert torch.allclose(uv[0], torch.stack((u.reshape(-1), v.reshape(-1)), -1), atol=1e-5)


def test_ray_distance_to_z_on_a_plane() -> None:
    # a fronto-parallel plane at z-depth 2.5: every ray's distance is 2.5 / cos(angle to the axis)
    c = C.camera_label(0.0, 0.0)
    res = 16
    _, dirs = C.pixel_rays(c, res)
    m, _ = C.decode_label(c)
    cos = (dirs * m[:, None, :3, 2]).sum(-1)
    dist = (2.5 / cos).reshape(1, 1, res, res)
    z = C.ray_distance_to_z(dist, c)
    assert torch.allclose(z, torch.full_like(z, 2.5), atol=1e-5)
    assert float(cos.min()) < math.cos(0.1)  # the corners really are off-axis


def test_closed_form_inverses_match_linalg() -> None:
    c = torch.cat([C.camera_label(y, p, roll=r) for y, p, r in ((0.3, -0.1, 0.0), (-1.2, 0.4, 0.2), (0.0, 0.0, 0.0))])
    m, K = C.decode_label(c)
    torch.testing.assert_close(C.inverse_affine(m), torch.linalg.inv(m), rtol=0, atol=1e-6)
    torch.testing.assert_close(C.inverse_3x3(K), torch.linalg.inv(K), rtol=0, atol=1e-6)
    a = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(C.inverse_3x3(a) @ a, torch.eye(3, dtype=torch.float64).expand(5, 3, 3))
