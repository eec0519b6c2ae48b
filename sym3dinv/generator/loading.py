"""Load and save generators: EG3D network pickles (safely), our safetensors format, the embedded default.

Our format is one ``.safetensors`` file whose header metadata holds ``{"format": "sym3dinv-generator",
"version": "1", "init_kwargs": <json>, ...}``; ``save_generator`` also writes a readable ``.json``
sidecar with the same config. A raw state-dict ``.safetensors`` without that metadata loads when a
sidecar config (``<name>.json`` or an explicit ``config=``) gives ``init_kwargs``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
from importlib import resources
from pathlib import Path
from typing import Any

import fsspec
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from sym3dinv.errors import CheckpointError, ModelNotFoundError
from sym3dinv.generator.safe_unpickle import read_eg3d_pickle
from sym3dinv.generator.triplane_generator import TriPlaneGenerator

log = logging.getLogger(__name__)

FORMAT = "sym3dinv-generator"
FORMAT_VERSION = "1"
DEFAULT_NAMES = (None, "synthheads", "default")


def default_weights_path() -> Path:
    """Where the embedded SynthHeads generator ships inside the package."""
    return Path(str(resources.files("sym3dinv.synthheads") / "weights" / "default_G.safetensors"))


def _read_bytes(source: str | os.PathLike[str], storage_options: dict[str, Any] | None) -> bytes:
    try:
        with fsspec.open(str(source), "rb", **(storage_options or {})) as f:
            return f.read()
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint not found: {source}") from exc
    except PermissionError as exc:
        raise CheckpointError(f"checkpoint not readable (permission denied): {source}") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {source}: {exc}") from exc


def sniff_format(data: bytes) -> str:
    """'pickle', 'safetensors', 'torch-zip' or 'unknown', from the first bytes (not the file name)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    if len(data) >= 9:
        (n,) = struct.unpack("<Q", data[:8])
        if 0 < n <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    if data[:4] == b"PK\x03\x04":
        return "torch-zip"
    return "unknown"


def build_from_state(init_kwargs: dict[str, Any], state_dict: dict[str, torch.Tensor], source: str,
                     neural_rendering_resolution: int | None = None) -> TriPlaneGenerator:
    """Construct from constructor kwargs and load the weights, with messages that list offenders."""
    kwargs = dict(init_kwargs)
    if neural_rendering_resolution is not None and kwargs.get("neural_rendering_resolution") is None:
        kwargs["neural_rendering_resolution"] = int(neural_rendering_resolution)
    try:
        G = TriPlaneGenerator(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot build a generator from its config: {exc}") from exc
    own = G.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(state_dict[k].shape)}"
             for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches (e.g. {wrong[:3]})")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the configured generator: " + "; ".join(problems))
    G.load_state_dict(state_dict, strict=True)
    return G.eval().requires_grad_(False)


def _config_from_sidecar(source: str, config: str | os.PathLike[str] | None,
                         storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    candidates = [str(config)] if config is not None else [str(source).rsplit(".", 1)[0] + ".json"]
    for c in candidates:
        try:
            return json.loads(_read_bytes(c, storage_options))
        except CheckpointError:
            if config is not None:
                raise
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"config {c} is not valid JSON: {exc}") from exc
    return None


def load_generator(
    source: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device = "cpu",
    config: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> TriPlaneGenerator:
    """Load a generator in eval mode with frozen weights.

    ``source``: None / ``"synthheads"`` (the embedded default), or a path / fsspec URL of an EG3D network
    pickle (``.pkl``, read without executing code) or of our ``.safetensors`` format.
    """
    if source in DEFAULT_NAMES or (isinstance(source, str) and source.lower() in ("synthheads", "default")):
        path = default_weights_path()
        if not path.is_file():
            raise ModelNotFoundError(
                f"the embedded SynthHeads generator is missing: {path} (and its .json sidecar) should ship inside "
                "the package. Reinstall sym3dinv, train one with `sym3dinv synthheads train`, or pass an EG3D "
                "checkpoint path/URL.")
        source = path
    src = str(source)
    data = _read_bytes(src, storage_options)
    fmt = sniff_format(data)
    if fmt == "pickle":
        ck = read_eg3d_pickle(io.BytesIO(data))
        G = build_from_state(ck.init_kwargs, ck.state_dict, src, ck.neural_rendering_resolution)
    elif fmt == "safetensors":
        try:
            tensors = st_load(data)
            (n,) = struct.unpack("<Q", data[:8])
            meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"{src}: corrupt or truncated safetensors file ({exc})") from exc
        if meta.get("format") == FORMAT:
            if meta.get("version") != FORMAT_VERSION:
                raise CheckpointError(f"{src}: unknown {FORMAT} version {meta.get('version')!r} (this code reads "
                                      f"{FORMAT_VERSION})")
            cfg = json.loads(meta["init_kwargs"])
        else:
            side = _config_from_sidecar(src, config, storage_options)
            if side is None:
                raise CheckpointError(f"{src}: a plain safetensors state dict needs its config; put init_kwargs in "
                                      f"{src.rsplit('.', 1)[0]}.json or pass config=")
            cfg = side.get("init_kwargs", side)
        G = build_from_state(cfg, tensors, src)
    elif fmt == "torch-zip":
        raise CheckpointError(f"{src}: a torch.save archive is not a supported generator format; convert it to "
                              "safetensors with init_kwargs (see `sym3dinv generator convert`)")
    else:
        raise CheckpointError(f"{src}: unknown checkpoint format ({len(data)} bytes, starts with {data[:8]!r}); "
                              "expected an EG3D network pickle or a sym3dinv .safetensors file")
    log.info("loaded generator from %s (%s, %d parameters)", src, fmt, sum(p.numel() for p in G.parameters()))
    return G.to(device)


def save_generator(G: TriPlaneGenerator, path: str | os.PathLike[str], *, dtype: torch.dtype | None = None,
                   metadata: dict[str, str] | None = None, storage_options: dict[str, Any] | None = None) -> str:
    """Write our format (weights + config in one file, plus a readable .json sidecar); atomic on local disk."""
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in G.state_dict().items()}
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "init_kwargs": json.dumps(G.init_kwargs, sort_keys=True),
            **(metadata or {})}
    blob = st_save(sd, metadata=meta)
    sidecar = json.dumps({"init_kwargs": G.init_kwargs, "metadata": metadata or {}}, indent=1, sort_keys=True)
    dest = str(path)
    fs, fs_path = fsspec.core.url_to_fs(dest, **(storage_options or {}))
    side_path = fs_path.rsplit(".", 1)[0] + ".json"
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols or "local" in protocols:
        Path(fs_path).parent.mkdir(parents=True, exist_ok=True)
        for p, content in ((fs_path, blob), (side_path, sidecar.encode())):
            tmp = f"{p}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(content)
            os.replace(tmp, p)
    else:
        fs.pipe_file(fs_path, blob)
        fs.pipe_file(side_path, sidecar.encode())
    return dest
