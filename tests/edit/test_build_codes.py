"""Attribute sets from the identity codes an embedded generator ships (method ``codes``): exact, no fitting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sym3dinv.edit.build import build_attribute_set
from sym3dinv.errors import ConfigError, ModelNotFoundError
from sym3dinv.generator import checkpoint, save_generator
from sym3dinv.synthheads.codes import embedded_codes
from tests.plugin import make_tiny


def test_codes_method_uses_the_learnt_w_of_each_seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    G = make_tiny()
    weights = tmp_path / "synthheads_v2.safetensors"
    monkeypatch.setattr(checkpoint, "default_generator_paths", lambda name=None: (weights, weights.with_suffix(".json")))
    save_generator(G, weights)
    with pytest.raises(ModelNotFoundError, match="synthheads_v2_codes.safetensors"):
        embedded_codes("synthheads-v2")
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(0))
    save_file({"z": z}, str(tmp_path / "synthheads_v2_codes.safetensors"))
    assert torch.equal(embedded_codes("synthheads-v2"), z)
    aset = build_attribute_set([1, 4], G=G, generator="synthheads-v2", method="codes", resolution=64)
    with torch.no_grad():
        want = G.mapping(z[[1, 4]], torch.zeros(2, 25))[:, 0].numpy()
    assert np.allclose(aset.latents, want) and aset.meta["method"] == "codes"
    assert aset.meters.shape == (2, len(aset.meter_names)) and np.isfinite(aset.meters).all()
    with pytest.raises(ConfigError, match="not training identities"):
        build_attribute_set([7], G=G, generator="synthheads-v2", method="codes")
    with pytest.raises(ModelNotFoundError, match="not an embedded generator"):
        embedded_codes("/some/path.pkl")
