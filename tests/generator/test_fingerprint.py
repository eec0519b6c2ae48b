"""Generator fingerprints: stable over load paths and dtypes that keep the values, different for other weights
or other constructor kwargs."""

from __future__ import annotations

import copy

import pytest
import torch

from sym3dinv.generator import TriPlaneGenerator, load_generator, save_generator
from sym3dinv.generator.checkpoint import default_generator_paths
from sym3dinv.generator.fingerprint import FINGERPRINT_PREFIX, fingerprint_state, generator_fingerprint
from tests.plugin import TINY, make_tiny


def test_golden_value_of_the_canonical_form() -> None:
    # frozen: a change here changes every stored fingerprint (bump FINGERPRINT_PREFIX instead)
    state = {"b": torch.tensor([1, 2], dtype=torch.int32), "a": torch.arange(3, dtype=torch.float16)}
    fp = fingerprint_state(state, {"z": [1, 2], "a": {"y": 1.5, "x": None}})
    assert fp == "g1-aac5968054c83b175a2c089d"
    assert fp == fingerprint_state(dict(reversed(list(state.items()))), {"a": {"x": None, "y": 1.5}, "z": (1, 2)})


def test_same_weights_same_fingerprint_across_load_paths(tmp_path) -> None:
    G = make_tiny(0)
    fp = generator_fingerprint(G)
    assert fp.startswith(FINGERPRINT_PREFIX) and len(fp) == len(FINGERPRINT_PREFIX) + 24
    assert generator_fingerprint(make_tiny(0)) == fp  # rebuilt from the same seed
    loaded = load_generator(str(save_generator(G, tmp_path / "g.safetensors")))
    assert generator_fingerprint(loaded) == fp  # saved and loaded back


def test_dtype_independent_where_the_values_are_kept(tmp_path) -> None:
    G = make_tiny(0)
    half = copy.deepcopy(G).half()
    fp_half = generator_fingerprint(half)
    assert generator_fingerprint(copy.deepcopy(half).float()) == fp_half  # fp16 values are exact in fp32
    loaded = load_generator(str(save_generator(G, tmp_path / "g16.safetensors", dtype=torch.float16)))
    assert generator_fingerprint(loaded) == fp_half  # an fp16 file, whatever dtype it loads as
    assert fp_half != generator_fingerprint(G)  # casting down changed the weights: another generator


def test_same_config_other_weights_differ() -> None:
    a, b = make_tiny(0), make_tiny(1)
    assert a.init_kwargs == b.init_kwargs
    assert generator_fingerprint(a) != generator_fingerprint(b)
    c = make_tiny(0)
    with torch.no_grad():
        next(iter(c.parameters())).view(-1)[0] += 1e-3  # one value of one tensor
    assert generator_fingerprint(c) != generator_fingerprint(a)


def test_other_kwargs_same_weights_differ() -> None:
    a = make_tiny(0)
    kw = copy.deepcopy(TINY)
    kw["rendering_kwargs"] = {**kw["rendering_kwargs"], "depth_resolution": 12}  # same tensors, other renders
    b = TriPlaneGenerator(**kw)
    b.load_state_dict(a.state_dict())
    assert generator_fingerprint(b) != generator_fingerprint(a)


def test_embedded_generators_are_told_apart() -> None:
    names = [n for n in ("synthheads-v1", "synthheads-v2") if default_generator_paths(n)[0].exists()]
    if len(names) < 2:
        pytest.skip(f"only {names} embedded here")
    fps = {n: generator_fingerprint(load_generator(n)) for n in names}
    assert len(set(fps.values())) == 2, fps
