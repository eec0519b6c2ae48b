"""Identity codes of the training heads: an MLP of each head's known attributes plus a free residual.

A pure auto-decoder (one free z per identity) learns nothing about an identity until that identity is
drawn, and with 1,536 identities each one is drawn only a few times in a CPU budget. Predicting the code
from the head's ground-truth attributes (``HeadParams.attributes``: colours, proportions, asymmetry
flags) shares what is learnt across identities, so codes organise by attribute from the first steps; the
per-identity residual (initialised at zero) keeps whatever the attributes do not explain.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CODES_SUFFIX = "_codes.safetensors"
"""An embedded generator ``<stem>.safetensors`` ships its training identities' z as ``<stem>_codes.safetensors``."""
SKIP_ATTRIBUTES = ("seed",)
"""Attributes that do not describe the head's appearance."""


def attribute_matrix(identities: range | list[int]) -> Tensor:
    """[N, A] float attributes of SynthHeads seeds ``identities`` (fixed column order)."""
    from sym3dinv.synthheads.params import sample_head_params

    rows = []
    for i in identities:
        attrs = sample_head_params(i).attributes()
        rows.append([float(v) for k, v in sorted(attrs.items()) if k not in SKIP_ATTRIBUTES])
    return torch.tensor(rows, dtype=torch.float32)


def moment_prior(w_codes: Tensor, w_rand: Tensor) -> Tensor:
    """Match the mean and spread of mapped identity codes and mapped random z (so G(z ~ N) lands among them)."""
    return (w_codes.mean(0) - w_rand.mean(0)).pow(2).mean() + (w_codes.std(0) - w_rand.std(0)).pow(2).mean()


class IdentityCodes(nn.Module):
    """z of identity i = MLP(standardised attributes_i) + residual_i."""

    def __init__(self, attributes: Tensor, z_dim: int, hidden: int = 128, seed: int = 0) -> None:
        super().__init__()
        mean, std = attributes.mean(0), attributes.std(0).clamp_min(1e-6)
        self.register_buffer("attributes", (attributes - mean) / std)
        g = torch.Generator().manual_seed(seed)
        self.mlp = nn.Sequential(nn.Linear(attributes.shape[1], hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, z_dim))
        with torch.no_grad():
            for m in self.mlp:
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0, 1 / m.in_features ** 0.5, generator=g)
                    m.bias.zero_()
        self.residual = nn.Parameter(torch.zeros(attributes.shape[0], z_dim))

    def forward(self, ids: Tensor | None = None) -> Tensor:
        """Codes of identities ``ids`` ([B] long), or of all identities."""
        a = self.attributes if ids is None else self.attributes[ids]
        r = self.residual if ids is None else self.residual[ids]
        return self.mlp(a) + r


def embedded_codes(generator: str) -> Tensor:
    """z [N, z_dim] of training seeds 0..N-1 of the embedded generator ``generator`` (e.g. ``synthheads-v2``).

    Only generators trained with :class:`IdentityCodes` ship them; for others this is a
    :class:`ModelNotFoundError` naming the file that is missing.
    """
    from safetensors.torch import load_file

    from sym3dinv.errors import ModelNotFoundError
    from sym3dinv.generator.checkpoint import default_generator_paths, embedded_name

    name = embedded_name(generator)
    if name is None:
        raise ModelNotFoundError(f"{generator!r} is not an embedded generator; identity codes exist only for those")
    weights, _ = default_generator_paths(name)
    path = weights.with_name(weights.stem + CODES_SUFFIX)
    if not path.is_file():
        raise ModelNotFoundError(f"{name} ships no identity codes: {path} is missing (only generators trained "
                                 "with attribute-predicted codes have them)")
    return load_file(str(path))["z"]


def codes_beside(source: str) -> Tensor:
    """Identity codes of ``source``: an embedded generator name, or ``<stem>_codes.safetensors`` beside a path
    (``identity_codes.safetensors``, the trainer's name for its final export's codes, in the same folder)."""
    from pathlib import Path

    from safetensors.torch import load_file

    from sym3dinv.errors import ModelNotFoundError
    from sym3dinv.generator.checkpoint import embedded_name

    if embedded_name(source) is not None:
        return embedded_codes(source)
    weights = Path(source)
    path = weights.with_name(weights.name.removesuffix(".safetensors") + CODES_SUFFIX)
    if not path.is_file() and weights.with_name("identity_codes.safetensors").is_file():
        path = weights.with_name("identity_codes.safetensors")
    if not path.is_file():
        raise ModelNotFoundError(f"no identity codes for {source}: {path} is missing (the trainer writes it "
                                 "next to every export)")
    return load_file(str(path))["z"]


@torch.no_grad()
def set_codes(codes: IdentityCodes, z: Tensor) -> None:
    """Make ``codes()`` return ``z`` exactly (the residual absorbs what the MLP does not predict)."""
    if z.shape != codes.residual.shape:
        raise ValueError(f"identity codes of shape {tuple(z.shape)} do not fit {tuple(codes.residual.shape)} "
                         "(same identities and z_dim needed)")
    codes.residual.copy_(z - codes.mlp(codes.attributes))
