"""Load and save generator checkpoints: EG3D network pickles (read safely), our format, the default.

Sources :func:`load_generator` accepts (local path or any fsspec URL; the format is detected from the
first bytes, never from the file name):

- EG3D network pickle (``.pkl``): read by :mod:`sym3dinv.generator.safe_pickle`; nothing in it runs.
- Our format: ``NAME.safetensors`` whose header ``__metadata__`` holds ``format = "sym3dinv-generator"``,
  ``version = "1"``, ``init_kwargs`` (JSON) and any user metadata (strings). The file is self-contained;
  :func:`save_generator` also writes ``NAME.json`` next to it (same config, human-readable, plus the
  weights' sha256), which the loader does not need.
- A plain state-dict ``.safetensors`` (e.g. the EG3D fixture ``tiny_G.safetensors``): its constructor
  kwargs come from ``config=`` (a path/URL of a JSON with ``init_kwargs``, or a mapping) or else from the
  ``NAME.json`` sidecar.
- ``None`` / ``"synthheads"``: the embedded default (:data:`DEFAULT_EMBEDDED`); ``"synthheads-v1"`` /
  ``"synthheads-v2"`` name one embedded generator (``sym3dinv/synthheads/weights/<stem>.safetensors``
  + ``.json``, :data:`EMBEDDED_FILES`); missing -> :class:`ModelNotFoundError`. No weights are ever downloaded:
  fsspec reads exactly the URL the caller gave.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem

from sym3dinv.errors import CheckpointError, ConfigError, ModelNotFoundError
from sym3dinv.generator.safe_pickle import read_eg3d_pickle

if TYPE_CHECKING:  # imported lazily at run time: sym3dinv.generator/__init__ re-exports this module
    from sym3dinv.generator.triplane_generator import TriPlaneGenerator

log = logging.getLogger(__name__)

FORMAT = "sym3dinv-generator"
FORMAT_VERSION = "1"
RESERVED_METADATA = ("format", "version", "init_kwargs")
MAX_SAFETENSORS_HEADER = 100 << 20  # bytes; real headers are a few kB
EMBEDDED_FILES = {"synthheads-v1": "default_G", "synthheads-v2": "synthheads_v2"}
"""Embedded generators by name -> file stem under ``sym3dinv/synthheads/weights/``."""
DEFAULT_EMBEDDED = "synthheads-v2"
"""What ``None`` / ``"synthheads"`` / ``"default"`` load."""
DEFAULT_NAMES = ("synthheads", "default")
Format = Literal["eg3d-pickle", "safetensors", "torch-zip", "unknown"]

# recognisable non-checkpoint contents, for a message that says what the file actually is
_KNOWN_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"), (b"version https://git-lfs", "a Git LFS pointer (run `git lfs pull`)"),
    (b"<!DOCTYPE", "an HTML page"), (b"<html", "an HTML page"), (b"<?xml", "an XML document"),
)


def embedded_name(source: object) -> str | None:
    """The embedded generator ``source`` names (``None`` and the default aliases included), else None."""
    if source is None:
        return DEFAULT_EMBEDDED
    if isinstance(source, str):
        key = source.lower()
        if key in DEFAULT_NAMES:
            return DEFAULT_EMBEDDED
        if key in EMBEDDED_FILES:
            return key
    return None


def default_generator_paths(name: str | None = None) -> tuple[Path, Path]:
    """Weights and sidecar of an embedded SynthHeads generator (inside the package); default: the default."""
    stem = EMBEDDED_FILES[embedded_name(name) or DEFAULT_EMBEDDED]
    weights = Path(__file__).resolve().parents[1] / "synthheads" / "weights" / f"{stem}.safetensors"
    return weights, weights.with_suffix(".json")


def sniff_format(head: bytes) -> Format:
    """Checkpoint format from its first bytes: pickle protocol 2-5, safetensors header, zip archive."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "eg3d-pickle"
    if len(head) >= 10:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= MAX_SAFETENSORS_HEADER and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    return "unknown"


def _describe_unknown(data: bytes) -> str:
    if not data:
        return "the file is empty"
    for magic, what in _KNOWN_MAGIC:
        if data.lstrip()[: len(magic)].lower() == magic.lower():
            return f"it looks like {what}"
    return f"{len(data)} bytes starting with {data[:8]!r}"


MAX_CHECKPOINT_BYTES = 16 << 30
"""Files above this are refused before reading (EG3D's FFHQ pickle is ~0.6 GB; a multi-GB file is a wrong
path or a hostile file, and reading it whole would exhaust memory)."""


def _read_bytes(source: str, storage_options: Mapping[str, Any] | None, what: str = "checkpoint") -> bytes:
    try:
        with fsspec.open(source, "rb", **dict(storage_options or {})) as f:
            size = f.fs.size(f.path) if hasattr(f, "fs") else None
            if size is not None and size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{what} {source} is {size / 2**30:.1f} GiB, above the limit of "
                                      f"{MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB; refusing to read it")
            return f.read()
    except FileNotFoundError as exc:
        raise CheckpointError(f"{what} not found: {source}") from exc
    except PermissionError as exc:
        raise CheckpointError(f"{what} not readable (permission denied): {source}") from exc
    except (OSError, ValueError) as exc:  # fsspec: unknown protocol, bad URL, remote errors
        raise CheckpointError(f"cannot read {what} {source}: {exc}") from exc


def _as_url(source: str | os.PathLike[str]) -> str:
    s = os.fspath(source)
    return s if "://" in s or "::" in s else os.path.expanduser(s)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Everything needed to build a generator, read from one source without building it."""

    source: str
    format: str  # "eg3d-pickle" | "sym3dinv-generator" | "safetensors-state-dict"
    init_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]  # CPU tensors
    neural_rendering_resolution: int | None
    metadata: dict[str, str]  # our format's user metadata; empty otherwise
    parameter_keys: tuple[str, ...] | None  # known for EG3D pickles only (no network built)


def _json_config(config: str | os.PathLike[str] | Mapping[str, Any], storage_options: Mapping[str, Any] | None
                 ) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    url = _as_url(config)
    try:
        cfg = json.loads(_read_bytes(url, storage_options, "generator config"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"generator config {url} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise CheckpointError(f"generator config {url} is not a JSON object")
    return cfg


def _parse_safetensors(data: bytes, src: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors.torch import load as st_load

    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n])
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own (Rust) error types for every malformed file
        raise CheckpointError(f"{src}: corrupt or truncated safetensors file ({str(exc)[:200]})") from exc
    meta = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    return tensors, meta


def read_checkpoint(source: str | os.PathLike[str], *, config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                    storage_options: Mapping[str, Any] | None = None) -> LoadedCheckpoint:
    """Read any supported checkpoint into kwargs + state dict (format detected from magic bytes)."""
    src = _as_url(source)
    data = _read_bytes(src, storage_options)
    fmt = sniff_format(data[:16])
    if fmt == "eg3d-pickle":
        ck = read_eg3d_pickle(io.BytesIO(data))
        kwargs = dict(ck.init_kwargs)
        if ck.rendering_kwargs and ck.rendering_kwargs != kwargs.get("rendering_kwargs"):
            log.warning("%s: the generator's rendering_kwargs differ from its constructor kwargs; using the "
                        "attribute (what the pickled model rendered with)", src)
            kwargs["rendering_kwargs"] = ck.rendering_kwargs
        return LoadedCheckpoint(src, fmt, kwargs, dict(ck.state_dict), ck.neural_rendering_resolution, {},
                                ck.parameter_keys)
    if fmt == "safetensors":
        tensors, meta = _parse_safetensors(data, src)
        if meta.get("format") == FORMAT:
            if meta.get("version") != FORMAT_VERSION:
                raise CheckpointError(f"{src}: {FORMAT} version {meta.get('version')!r}; this sym3dinv reads "
                                      f"version {FORMAT_VERSION}")
            try:
                kwargs = json.loads(meta["init_kwargs"])
            except (KeyError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{src}: its init_kwargs metadata is missing or not JSON") from exc
            if config is not None:
                log.warning("%s carries its own init_kwargs; the config= given is ignored", src)
            user = {k: v for k, v in meta.items() if k not in RESERVED_METADATA}
            return LoadedCheckpoint(src, FORMAT, kwargs, tensors, None, user, None)
        side = config if config is not None else src.rsplit(".", 1)[0] + ".json"
        try:
            cfg = _json_config(side, storage_options)
        except CheckpointError as exc:
            raise CheckpointError(f"{src} is a plain state dict without sym3dinv metadata; its constructor "
                                  f"kwargs must come from config= or the sidecar {side} ({exc})") from exc
        if not isinstance(cfg.get("init_kwargs"), dict):
            raise CheckpointError(f"generator config {side if isinstance(side, str) else '(mapping)'} has no "
                                  "'init_kwargs' object")
        nrr = cfg.get("neural_rendering_resolution")
        return LoadedCheckpoint(src, "safetensors-state-dict", cfg["init_kwargs"], tensors,
                                int(nrr) if isinstance(nrr, int) else None, {}, None)
    if fmt == "torch-zip":
        raise CheckpointError(f"{src} is a torch.save zip archive; it is not loaded (torch.save files can run "
                              "code). Save the state dict with safetensors plus an init_kwargs JSON, or use "
                              "`sym3dinv generator convert` on an EG3D pickle.")
    raise CheckpointError(f"{src}: unknown checkpoint format ({_describe_unknown(data)}); expected an EG3D "
                          "network pickle or a safetensors file")


def _mismatch_report(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k} (expected {list(expected[k].shape)}, got {list(got[k].shape)})"
             for k in expected if k in got and expected[k].shape != got[k].shape]
    not_float = [f"{k} ({got[k].dtype})" for k in expected
                 if k in got and expected[k].is_floating_point() and not got[k].is_floating_point()]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", wrong), ("non-float tensors", not_float)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
    return problems


def build_generator(ck: LoadedCheckpoint) -> TriPlaneGenerator:
    """Construct ``TriPlaneGenerator(**init_kwargs)`` on CPU and load the weights strictly."""
    from sym3dinv.generator.triplane_generator import TriPlaneGenerator

    kwargs = dict(ck.init_kwargs)
    if ck.neural_rendering_resolution is not None and kwargs.get("neural_rendering_resolution") is None:
        kwargs["neural_rendering_resolution"] = ck.neural_rendering_resolution
    try:
        G = TriPlaneGenerator(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{ck.source}: cannot build a generator from its init_kwargs: {exc}") from exc
    problems = _mismatch_report(G.state_dict(), ck.state_dict)
    if problems:
        raise CheckpointError(f"{ck.source}: the weights do not fit the generator its config describes: "
                              + "; ".join(problems))
    G.load_state_dict(ck.state_dict, strict=True)  # copies (and casts, e.g. fp16 files) into G's tensors
    return G.eval().requires_grad_(False)


def _resolve_source(source: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    name = embedded_name(source)
    if name is not None:
        weights, sidecar = default_generator_paths(name)
        if not weights.is_file():
            raise ModelNotFoundError(
                f"the embedded SynthHeads generator {name!r} is missing: expected {weights} and {sidecar} inside "
                "the installed package. Reinstall sym3dinv, train one with `sym3dinv synthheads train`, or pass "
                "an EG3D network pickle / sym3dinv checkpoint path or URL.")
        return weights
    return source


def load_generator(
    source: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device = "cpu",
    map_location: str | torch.device | None = None,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> TriPlaneGenerator:
    """Load a generator (eval mode, weights frozen) from any supported source; see the module doc.

    ``map_location`` is accepted for ``torch.load`` familiarity and means the same as ``device``
    (tensors are always decoded on CPU, then moved). ``config`` gives init kwargs for a plain
    state-dict safetensors file. ``storage_options`` go to fsspec (e.g. S3 credentials/endpoint).
    """
    if map_location is not None:
        if str(device) != "cpu" and torch.device(map_location) != torch.device(device):
            raise ConfigError(f"device={device!r} and map_location={map_location!r} disagree; pass one of them")
        device = map_location
    ck = read_checkpoint(_resolve_source(source), config=config, storage_options=storage_options)
    G = build_generator(ck)
    log.info("loaded generator from %s (%s, %d parameters)", ck.source, ck.format,
             sum(p.numel() for p in G.parameters()))
    return G.to(device)


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or k in RESERVED_METADATA:
            raise ConfigError(f"metadata key {k!r} is reserved or not a string")
        out[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return out


def _write_local_atomic(path: Path, blob: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_generator(G: TriPlaneGenerator, path_or_url: str | os.PathLike[str], *, dtype: torch.dtype | None = None,
                   metadata: Mapping[str, Any] | None = None, storage_options: Mapping[str, Any] | None = None) -> str:
    """Write ``G`` in our format (``NAME.safetensors`` + ``NAME.json``); returns the weights' path/URL.

    ``dtype`` casts floating tensors (e.g. ``torch.float16`` halves the file; loading casts back to the
    generator's dtype). Local files are written atomically (temporary name, then rename); object stores
    write each object in one request.
    """
    from safetensors.torch import save as st_save

    dest = _as_url(path_or_url)
    if not dest.endswith(".safetensors"):
        raise ConfigError(f"save_generator writes NAME.safetensors (+ NAME.json); got {dest!r}")
    user = _check_metadata(metadata)
    try:
        kwargs_json = json.dumps(G.init_kwargs, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the generator's init_kwargs are not JSON-serialisable: {exc}") from exc
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in G.state_dict().items()}
    blob = st_save(sd, metadata={"format": FORMAT, "version": FORMAT_VERSION, "init_kwargs": kwargs_json, **user})
    sidecar = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "weights": dest.rsplit("/", 1)[-1],
                          "sha256": hashlib.sha256(blob).hexdigest(), "init_kwargs": G.init_kwargs,
                          "metadata": user}, indent=1, sort_keys=True).encode()
    fs, fs_path = fsspec.core.url_to_fs(dest, **dict(storage_options or {}))
    side_path = fs_path.rsplit(".", 1)[0] + ".json"
    if isinstance(fs, LocalFileSystem):
        _write_local_atomic(Path(fs_path), blob)
        _write_local_atomic(Path(side_path), sidecar)
    else:
        fs.pipe_file(fs_path, blob)
        fs.pipe_file(side_path, sidecar)
    log.info("saved generator to %s (%d tensors, %.1f MB)", dest, len(sd), len(blob) / 1e6)
    return dest


@dataclass(frozen=True)
class GeneratorSummary:
    """What ``sym3dinv generator info`` prints: enough to tell checkpoints apart at a glance."""

    source: str
    format: str
    init_kwargs: dict[str, Any]
    num_parameters: int
    num_state_dict_entries: int
    num_ws: int
    img_resolution: int
    neural_rendering_resolution: int
    triplane_resolution: int
    dtypes: tuple[str, ...]  # dtypes stored in the file
    metadata: dict[str, str]


def describe_generator(source: str | os.PathLike[str] | None, *,
                       config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                       storage_options: Mapping[str, Any] | None = None) -> GeneratorSummary:
    """Read and build (on CPU) the generator at ``source`` and summarise it."""
    ck = read_checkpoint(_resolve_source(source), config=config, storage_options=storage_options)
    G = build_generator(ck)
    return GeneratorSummary(
        source=ck.source, format=ck.format, init_kwargs=dict(ck.init_kwargs),
        num_parameters=sum(p.numel() for p in G.parameters()), num_state_dict_entries=len(ck.state_dict),
        num_ws=int(G.num_ws), img_resolution=int(G.img_resolution),
        neural_rendering_resolution=int(G.neural_rendering_resolution),
        triplane_resolution=int(G.init_kwargs.get("triplane_resolution") or 256),
        dtypes=tuple(sorted({str(t.dtype).removeprefix("torch.") for t in ck.state_dict.values()})),
        metadata=dict(ck.metadata))
