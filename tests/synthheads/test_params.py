from __future__ import annotations

import torch

from sym3dinv import cameras
from sym3dinv.synthheads.eval_split import eval_identity, strong_fraction
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.sdf import EllipsoidSet, rotation, smooth_union


def test_same_seed_same_head_and_asymmetry_is_separate() -> None:
    a, b = sample_head_params(7), sample_head_params(7)
    assert a == b
    assert sample_head_params(8) != a
    sym = sample_head_params(7, strong=False)
    assert not sym.is_asymmetric
    strong = sample_head_params(7, strong=True)
    assert strong.strongly_asymmetric and strong.asymmetry_count >= 2
    # switching asymmetry never changes the rest of the identity
    assert strong.symmetric() == sym == a.symmetric()
    assert a.attributes()["face_width"] == a.face_width


def test_asymmetry_rate_controls_frequency() -> None:
    none = [sample_head_params(s, asymmetry_rate=0.0).is_asymmetric for s in range(40)]
    most = [sample_head_params(s, asymmetry_rate=0.6).is_asymmetric for s in range(40)]
    assert not any(none)
    assert sum(most) >= 30


def test_eval_split_is_disjoint_and_strong_enough() -> None:
    e = eval_identity(3, inputs=5)
    assert e.seed >= 1_000_000
    assert strong_fraction(20) >= 0.3
    yaw = torch.rad2deg(cameras.yaw_pitch_roll(e.input_labels)[:, 0])
    assert yaw.abs().max() <= 60.0 + 1e-3 and yaw.min() < -20 and yaw.max() > 20


def test_ellipsoid_set_is_exact_for_spheres_and_union_is_below_min() -> None:
    c = torch.tensor([[0.1, 0.0, 0.0], [-0.2, 0.1, 0.0]])
    r = torch.tensor([[0.05] * 3, [0.1] * 3])
    ell = EllipsoidSet(c, torch.stack([rotation(0.3, 0.2, 0.1), rotation()]), r)
    x = torch.rand(100, 3) - 0.5
    exact = (x[:, None] - c[None]).norm(dim=-1) - r[:, 0]
    torch.testing.assert_close(ell(x), exact, atol=2e-5, rtol=1e-4)
    u = smooth_union(exact, 0.01)
    assert torch.all(u <= exact.min(-1).values + 1e-7)
    assert torch.all(u >= exact.min(-1).values - 0.01 * torch.log(torch.tensor(2.0)) - 1e-6)
