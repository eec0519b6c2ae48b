"""A trained encoder bound to its generator: load/save (safetensors + JSON) and the W+ prediction.

The file records the fingerprint of the generator it was trained against
(:func:`sym3dinv.generator.fingerprint.generator_fingerprint`); using it with another generator is an
:class:`EncoderMismatchError` naming both, since its offsets only mean something around that
generator's mean w.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from sym3dinv.config.core import to_dict
from sym3dinv.config.encoder import EncoderConfig
from sym3dinv.encoder.network import Encoder, EncoderOutput
from sym3dinv.errors import CheckpointError, EncoderMismatchError
from sym3dinv.generator.fingerprint import generator_fingerprint, short
from sym3dinv.generator.latents import mean_w

FORMAT = "sym3dinv-encoder"
FORMAT_VERSION = "1"


@dataclass
class TrainedEncoder:
    """The network and the generator it belongs to."""

    net: Encoder
    generator_fingerprint: str
    generator: str  # the source it was trained from (informational: the fingerprint decides)
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def config(self) -> EncoderConfig:
        return self.net.config

    def check(self, G: torch.nn.Module) -> None:
        """:class:`EncoderMismatchError` unless ``G`` is the generator this encoder was trained for."""
        got = generator_fingerprint(G)
        if got != self.generator_fingerprint:
            raise EncoderMismatchError(
                f"encoder {self.source or '(in memory)'} was trained for generator {self.generator!r} (fingerprint "
                f"{short(self.generator_fingerprint)}), but the generator in use has fingerprint {short(got)}; "
                "train an encoder for it with `sym3dinv encoder train OUT --generator G`")

    def to(self, device: torch.device | str) -> TrainedEncoder:
        self.net.to(device)
        return self


def mean_w_plus(G: torch.nn.Module, cameras: Float[Tensor, "n 25"], config: EncoderConfig) -> Float[Tensor, "n k w"]:
    """The camera-conditioned mean w (the encoder's origin), repeated over G's W+ layers."""
    gen = torch.Generator(device="cpu").manual_seed(config.w_avg_seed)
    w_avg, _ = mean_w(G, cameras, config.w_avg_samples, gen)
    return w_avg.expand(-1, G.num_ws, -1)


def encode(net: Encoder, G: torch.nn.Module, images: Float[Tensor, "n 3 h w"],
           cameras: Float[Tensor, "n 25"]) -> tuple[Float[Tensor, "n k w"], EncoderOutput]:
    """ws = camera-conditioned mean w + the encoder's offsets (gradients flow to ``net`` when enabled)."""
    out = net(images, cameras if net.config.use_camera else None)
    return mean_w_plus(G, cameras, net.config) + out.offsets, out


def save_encoder(enc: TrainedEncoder, path: str | os.PathLike[str], *, train_config: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``NAME.safetensors`` (weights; config and fingerprint in its header) and ``NAME.json``."""
    from safetensors.torch import save as st_save

    from sym3dinv.generator.checkpoint import _write_local_atomic

    dest = Path(path)
    if dest.suffix != ".safetensors":
        raise CheckpointError(f"save_encoder writes NAME.safetensors (+ NAME.json); got {dest}")
    head = {"format": FORMAT, "version": FORMAT_VERSION, "encoder_config": json.dumps(to_dict(enc.config), sort_keys=True),
            "num_ws": str(enc.net.num_ws), "w_dim": str(enc.net.w_dim),
            "generator_fingerprint": enc.generator_fingerprint, "generator": enc.generator,
            "train_config": json.dumps(dict(train_config or {}), sort_keys=True), **dict(metadata or {})}
    # float16 on disk (half the size: the shipped encoder stays under 20 MB); loaded back as float32
    sd = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in enc.net.state_dict().items()}
    blob = st_save(sd, metadata=head)
    side = {**{k: v for k, v in head.items() if k not in ("encoder_config", "train_config")},
            "encoder_config": to_dict(enc.config), "train_config": dict(train_config or {}),
            "sha256": hashlib.sha256(blob).hexdigest(), "weights": dest.name,
            "parameters": sum(v.numel() for v in sd.values()), "bytes": len(blob)}
    _write_local_atomic(dest, blob)
    _write_local_atomic(dest.with_suffix(".json"), json.dumps(side, indent=1, sort_keys=True).encode())
    return dest


def _config(d: Mapping[str, Any]) -> EncoderConfig:
    return EncoderConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_encoder(path: str | os.PathLike[str], G: torch.nn.Module | None = None,
                 device: torch.device | str = "cpu") -> TrainedEncoder:
    """Read an encoder file; with ``G``, check it was trained for ``G`` (:class:`EncoderMismatchError`)."""
    from safetensors.torch import load as st_load

    p = Path(path)
    try:
        data = p.read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
        tensors = st_load(data)
    except FileNotFoundError as exc:
        raise CheckpointError(f"encoder file not found: {p}") from exc
    except Exception as exc:  # safetensors' own error types, struct, JSON
        raise CheckpointError(f"{p}: not a readable safetensors encoder file ({str(exc)[:200]})") from exc
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{p} is not a {FORMAT} v{FORMAT_VERSION} file (format={meta.get('format')!r}, "
                              f"version={meta.get('version')!r})")
    net = Encoder(_config(json.loads(meta["encoder_config"])), int(meta["num_ws"]), int(meta["w_dim"]))
    try:
        net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{p}: weights do not fit the encoder its config describes ({str(exc)[:300]})") from exc
    reserved = {"format", "version", "encoder_config", "num_ws", "w_dim", "generator_fingerprint", "generator"}
    enc = TrainedEncoder(net.eval().requires_grad_(False), meta["generator_fingerprint"], meta.get("generator", ""),
                         {k: v for k, v in meta.items() if k not in reserved}, str(p))
    if G is not None:
        enc.check(G)
    return enc.to(device)


def load_encoder_for(generator: str | None, G: torch.nn.Module, explicit: str | os.PathLike[str] | None = None,
                     device: torch.device | str = "cpu") -> TrainedEncoder:
    """The encoder of ``generator`` (the PipelineConfig source string) checked against the built ``G``."""
    from sym3dinv.encoder.files import encoder_path

    return load_encoder(encoder_path(generator, explicit), G, device)
