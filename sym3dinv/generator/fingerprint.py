"""The generator fingerprint: a stable hash of a generator's weights and constructor kwargs.

Resume, the dataset builder and the edits key on it (``generator_fingerprint`` in every index row and item
manifest): the config hash only names the generator's *source* (``"synthheads"`` stays ``"synthheads"``
when the embedded default moves from v1 to v2, and a path stays a path when the file behind it is
retrained), so only the weights themselves tell two generators apart.

Canonical form, so the hash does not depend on how the generator was loaded:

- tensors in sorted state-dict order, each as ``name``, kind (``f`` floating, ``i`` integer, ``b`` bool),
  shape, then its values: floating tensors as little-endian float32 (an fp16 or bf16 checkpoint loaded
  as fp32, or kept in fp16, hashes the same, because the fp32 values are exact), other tensors as
  little-endian int64 / uint8;
- ``init_kwargs`` as JSON with sorted keys.

Casting fp32 weights *down* to fp16 changes the values, so it changes the fingerprint: that is a
different generator and resume must treat it as one. Device does not matter (values move to CPU).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import torch

FINGERPRINT_PREFIX = "g1-"
"""Version of the canonical form; a change to it must change the prefix (old fingerprints stay distinct)."""
FINGERPRINT_HEX = 24
"""96 bits of SHA-256: collisions between generators are out of the question, and the value stays readable."""
_CHUNK = 1 << 22  # elements per hashing step: bounds the float32 copy of a big tensor


def _update_tensor(h: Any, name: str, t: torch.Tensor) -> None:
    t = t.detach()
    if t.is_floating_point():
        kind, dtype, np_dtype = b"f", torch.float32, "<f4"
    elif t.dtype == torch.bool:
        kind, dtype, np_dtype = b"b", torch.uint8, "|u1"
    else:
        kind, dtype, np_dtype = b"i", torch.int64, "<i8"
    key = name.encode()
    h.update(struct.pack("<I", len(key)) + key + kind + struct.pack("<I", t.dim()))
    h.update(b"".join(struct.pack("<q", int(s)) for s in t.shape))
    flat = t.reshape(-1)
    for lo in range(0, flat.numel(), _CHUNK):
        part = flat[lo:lo + _CHUNK].to(device="cpu", dtype=dtype).contiguous()
        h.update(part.numpy().astype(np_dtype, copy=False).tobytes())


def canonical_kwargs(init_kwargs: Mapping[str, Any]) -> str:
    """``init_kwargs`` as canonical JSON (sorted keys, tuples as lists, no spaces)."""
    return json.dumps(init_kwargs, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint_state(state: Mapping[str, torch.Tensor], init_kwargs: Mapping[str, Any]) -> str:
    """Fingerprint of a state dict and constructor kwargs (see the module docstring for the canonical form)."""
    h = hashlib.sha256()
    h.update(b"sym3dinv-generator-fingerprint\x00")
    kw = canonical_kwargs(init_kwargs).encode()
    h.update(struct.pack("<Q", len(kw)) + kw)
    for name in sorted(state):
        _update_tensor(h, name, state[name])
    return FINGERPRINT_PREFIX + h.hexdigest()[:FINGERPRINT_HEX]


def generator_fingerprint(G: torch.nn.Module) -> str:
    """Fingerprint of a loaded generator (its state dict and ``init_kwargs``).

    Not cached on the module: a cast (``G.half()``) or an in-place edit would leave a cache stale, and one
    hash per worker start costs little (the EG3D FFHQ generator's ~31M values hash in well under a second)."""
    return fingerprint_state(G.state_dict(), dict(getattr(G, "init_kwargs", {}) or {}))


def short(fingerprint: str | None) -> str:
    """A fingerprint for messages: as stored, or ``unknown`` for rows written before fingerprints existed."""
    return fingerprint or "unknown (written before generator fingerprints were recorded)"
