"""Read EG3D network pickles without executing anything from the file.

EG3D's ``torch_utils.persistence`` pickles each network class together with the full source of its
module and rebuilds it on load by ``exec``-ing that source; ``pickle.load`` of such a file (or of any
pickle) runs whatever callables the file names. We never do either:

- :class:`RestrictedUnpickler` resolves only the globals in :data:`ALLOWED_GLOBALS` (what EG3D pickles
  reference, plus older spellings). Every other global -- ``os.system``, ``builtins.eval``,
  ``subprocess.Popen`` ... -- raises :class:`UnsafePickleError` naming ``module.qualname`` *before* the
  pickle can call it. Persistent ids are refused.
- Network objects (EG3D's persistent classes and the few ``torch.nn`` classes inside them) become inert
  :class:`PickledObject` records: class name + the ``__dict__`` the pickle gave them. The embedded
  ``module_src`` is dropped unread.
- Embedded storages (``torch.storage._load_from_bytes``: a legacy ``torch.save`` archive per storage)
  are decoded by :func:`decode_legacy_storage`, our own bounds-checked reader, not by ``torch.load``.
- Tensors are rebuilt from those storages with explicit bounds checks; backward hooks are refused.

:func:`read_eg3d_pickle` then walks the rebuilt ``G_ema`` record the way ``nn.Module.state_dict`` walks
a module and returns an :class:`Eg3dCheckpoint` (constructor kwargs, state dict, rendering kwargs).
"""

from __future__ import annotations

import io
import logging
import pickle
import pickletools
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import torch

from sym3dinv.errors import CheckpointError, UnsafePickleError

log = logging.getLogger(__name__)

# ``torch.save`` legacy format constants (torch/serialization.py); checked, never trusted blindly.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes that can appear inside an embedded legacy archive -> element dtype.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}
STORAGE_GLOBALS: dict[str, torch.dtype] = {
    f"{mod}.{name}": dt for name, dt in _STORAGE_DTYPES.items() for mod in ("torch", "torch.cuda")
}

# numpy scalar kinds a network pickle legitimately holds (gains, counters); never object/structured.
_NUMPY_SCALAR_CODES = {"b1", "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"}

# torch.nn classes that EG3D modules hold as children: rebuilt as inert records like EG3D's own classes.
INERT_GLOBALS = (
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.container.Sequential",
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
)


class PickledObject:
    """Inert stand-in for any pickled class instance: its class name and the state the pickle gave it.

    EG3D modules arrive here with their ``nn.Module.__dict__`` as ``state`` (``_parameters``,
    ``_buffers``, ``_modules``, ``_init_kwargs``, ``rendering_kwargs`` ...). Nothing else is kept.
    """

    # class-level defaults: the NEWOBJ opcode creates instances without calling __init__
    class_name: str = "?"
    state: Any = None
    persistent: bool = False  # True when it came through EG3D's persistence hook

    def __init__(self, class_name: str | None = None, state: Any = None) -> None:
        if class_name is not None:
            self.class_name = class_name
        self.state = state if state is not None else {}

    def __setstate__(self, state: Any) -> None:  # BUILD opcode: just remember the state
        self.state = state

    def __repr__(self) -> str:
        return f"PickledObject({self.class_name})"


def _inert_class(qualname: str) -> type[PickledObject]:
    """A PickledObject subclass standing for ``qualname`` (the NEWOBJ opcode instantiates classes)."""
    return type(qualname.rsplit(".", 1)[-1], (PickledObject,), {"class_name": qualname, "__module__": __name__})


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict with attribute read access, nothing more."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass(frozen=True)
class StorageRecord:
    """A decoded embedded storage: a flat CPU tensor of its elements that tensor records view into."""

    data: torch.Tensor  # [numel], contiguous, owns its memory

    def __setstate__(self, state: Any) -> None:  # a BUILD opcode aimed at a storage is never legitimate
        raise UnsafePickleError("refused BUILD on an embedded storage (not something torch writes)")


class NumpyDtypeRecord:
    """Inert ``numpy.dtype`` stand-in: only simple numeric codes; byte order taken from the BUILD state."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or code not in _NUMPY_SCALAR_CODES:
            raise UnsafePickleError(f"refused numpy dtype {code!r}: only plain numeric scalar dtypes are allowed")
        self.code, self.order = code, "="

    def __setstate__(self, state: Any) -> None:
        # numpy writes (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise CheckpointError(f"malformed numpy dtype state {state!r:.80}")
        self.order = state[1]

    def to_numpy(self) -> np.dtype:
        dt = np.dtype(self.code)
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


def _numpy_scalar(dtype: Any, data: Any = None) -> bool | int | float | complex:
    """``numpy.core.multiarray.scalar`` replacement: returns the plain Python value."""
    if not isinstance(dtype, NumpyDtypeRecord) or not isinstance(data, bytes):
        raise CheckpointError("malformed numpy scalar in the pickle")
    dt = dtype.to_numpy()
    if len(data) != dt.itemsize:
        raise CheckpointError(f"numpy scalar of {dt} carries {len(data)} bytes, expected {dt.itemsize}")
    return np.frombuffer(data, dtype=dt, count=1)[0].item()


def decode_legacy_storage(data: Any) -> StorageRecord:
    """Decode the legacy ``torch.save`` archive that ``torch.storage._load_from_bytes`` would load.

    Layout: pickles of (magic, protocol version, sys_info), then the storage as a persistent id
    ``('storage', <torch.XStorage>, key, location, numel, view_metadata)``, then the key list, then per
    key an int64 element count and the raw little-endian bytes. Sizes are checked before allocating.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("embedded storage is not a bytes object")
    f = io.BytesIO(data)
    if _load_small(f) != LEGACY_MAGIC:
        raise CheckpointError("embedded storage: bad magic number (not a torch.save legacy archive)")
    if _load_small(f) != LEGACY_PROTOCOL:
        raise CheckpointError("embedded storage: unsupported legacy protocol version")
    sys_info = _load_small(f)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CheckpointError("embedded storage was written on a big-endian machine; not supported")
    pid = _load_small(f)
    if not isinstance(pid, _StorageId):
        raise CheckpointError("embedded storage archive does not hold a single storage")
    keys = _load_small(f)
    if keys != [pid.key]:
        raise CheckpointError("embedded storage archive has an unexpected key list")
    head = f.read(8)
    if len(head) != 8:
        raise CheckpointError("embedded storage is truncated")
    (numel,) = struct.unpack("<q", head)
    itemsize = torch.empty((), dtype=pid.dtype).element_size()
    rest = len(data) - f.tell()
    if numel != pid.numel or numel < 0 or numel * itemsize != rest:
        raise CheckpointError(f"embedded storage size mismatch: {numel} x {itemsize} bytes declared, {rest} present")
    if numel == 0:
        return StorageRecord(torch.empty(0, dtype=pid.dtype))
    flat = torch.frombuffer(bytearray(data[f.tell():]), dtype=pid.dtype)  # a private copy of the bytes
    return StorageRecord(flat)


@dataclass(frozen=True)
class _StorageId:
    dtype: torch.dtype
    key: str
    numel: int


class _StorageUnpickler(pickle.Unpickler):
    """Unpickler for the small pickles inside an embedded storage: storage classes only."""

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        if qual in STORAGE_GLOBALS:
            return STORAGE_GLOBALS[qual]
        raise UnsafePickleError(f"refused to load global {qual} inside an embedded storage; nothing was run")

    def persistent_load(self, pid: Any) -> _StorageId:
        ok = (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)
              and isinstance(pid[2], str) and isinstance(pid[3], str) and type(pid[4]) is int and pid[5] is None)
        if not ok:
            raise CheckpointError(f"embedded storage: unsupported record {str(pid)[:80]!r}")
        return _StorageId(dtype=pid[1], key=pid[2], numel=pid[4])  # location ignored: always decoded on CPU


def _load_small(f: io.BytesIO) -> Any:
    """One of the small pickles inside an embedded storage, prescanned like the outer file."""
    start = f.tell()
    prescan(f)
    f.seek(start)
    try:
        return _StorageUnpickler(f).load()
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt bytes inside the storage archive
        raise CheckpointError(f"embedded storage is corrupt ({type(exc).__name__}: {str(exc)[:120]})") from exc


def _int_tuple(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list, torch.Size)) or not all(type(v) is int and v >= 0 for v in x):
        raise CheckpointError(f"tensor record has a malformed {what}: {str(x)[:60]}")
    return tuple(x)


def _no_hooks(hooks: Any) -> None:
    # torch always writes an empty OrderedDict here; anything else would be callables run at backward time
    if hooks is not None and not (isinstance(hooks, dict) and not hooks):
        raise UnsafePickleError("refused tensor backward hooks in the pickle (torch never saves hooks)")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """Safe ``torch._utils._rebuild_tensor(_v2)``: a bounds-checked strided view of a decoded storage."""
    if not isinstance(storage, StorageRecord):
        raise CheckpointError("tensor record does not point at an embedded storage")
    _no_hooks(backward_hooks)
    if metadata:  # only conj/neg view bits exist; a real-valued network never has them
        raise CheckpointError("tensor record carries conj/neg metadata; not supported")
    size_t, stride_t = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if type(offset) is not int or offset < 0 or len(size_t) != len(stride_t):
        raise CheckpointError("tensor record has a malformed offset or stride")
    numel = storage.data.numel()
    if all(s > 0 for s in size_t):
        last = offset + sum((s - 1) * st for s, st in zip(size_t, stride_t, strict=True))
        if last >= numel:
            raise CheckpointError(f"tensor record of size {size_t} reaches element {last} of a {numel}-element storage")
    return storage.data.as_strided(size_t, stride_t, offset)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> torch.Tensor:
    """Safe ``_rebuild_parameter(_with_state)``: parameters come back as plain tensors (state dropped)."""
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("parameter record does not hold a tensor")
    _no_hooks(backward_hooks)
    return data


def _reconstruct_persistent_obj(meta: Any) -> PickledObject:
    """Replacement for EG3D's persistence hook: keep class name and state; ``module_src`` is never read."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise CheckpointError("malformed EG3D persistent-object record in the pickle")
    obj = PickledObject(meta["class_name"], meta.get("state"))
    obj.persistent = True
    return obj


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # protocol-2 pickles spell ``bytes`` as _codecs.encode(str, 'latin1'); nothing else is accepted
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused _codecs.encode with a non-latin1 argument")
    return text.encode("latin1")


ALLOWED_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": OrderedDict,
    "dnnlib.util.EasyDict": EasyDict,
    "numpy.dtype": NumpyDtypeRecord,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.core.multiarray.scalar": _numpy_scalar,  # numpy < 2 spelling (released EG3D checkpoints)
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor": _rebuild_tensor,  # very old torch
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": decode_legacy_storage,
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "builtins.set": set,  # protocol < 4 spells sets this way
    "builtins.frozenset": frozenset,
    "_codecs.encode": _codecs_encode,
    **{name: _inert_class(name) for name in INERT_GLOBALS},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS` and refuses persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        if qual in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[qual]
        raise UnsafePickleError(f"refused to load global {qual}: it is not on the allow-list of EG3D checkpoint "
                                "contents, so the file was rejected and nothing from it was run")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refused persistent id {str(pid)[:60]!r}: EG3D network pickles use none")


_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


def prescan(data: bytes | IO[bytes]) -> int:
    """Check the opcode stream before unpickling; returns the number of opcodes.

    Catches truncation early and refuses out-of-sequence memo indices: CPython's unpickler grows its
    memo table to twice the largest index it sees, so one crafted ``LONG_BINPUT`` could make it
    allocate tens of GB. Picklers number memo entries consecutively, so real files always pass.
    """
    memo = count = 0
    try:
        for op, arg, _pos in pickletools.genops(data):
            count += 1
            if op.name == "MEMOIZE" or (op.name in _PUT_OPS and arg == memo):
                memo += 1
            elif op.name in _PUT_OPS and not 0 <= arg < memo:
                raise CheckpointError(f"the pickle stores memo entry {arg} out of sequence (corrupt or crafted)")
            elif op.name in _GET_OPS and not 0 <= arg < memo:
                raise CheckpointError(f"the pickle refers to memo entry {arg} that does not exist (corrupt)")
    except CheckpointError:
        raise
    except Exception as exc:  # pickletools raises ValueError on truncated or unknown opcodes
        raise CheckpointError(f"the pickle is truncated or corrupt ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return count


def safe_load(f: IO[bytes]) -> Any:
    """Unpickle with :class:`RestrictedUnpickler`; truncation/corruption becomes :class:`CheckpointError`."""
    data = f.read()
    prescan(data)
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except CheckpointError:  # includes UnsafePickleError: already says what is wrong
        raise
    except Exception as exc:  # any decoder failure on untrusted bytes means a corrupt file
        raise CheckpointError(f"the pickle is truncated or corrupt ({type(exc).__name__}: {str(exc)[:200]})") from exc


# ------------------------------------------------------------------ walking the rebuilt network records
_JSON_LEAVES = (type(None), bool, int, float, str)


def plain(x: Any, where: str) -> Any:
    """EasyDict/OrderedDict/tuple -> dict/list of JSON values; anything else is refused (says where)."""
    if isinstance(x, Mapping):
        return {str(k): plain(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, _JSON_LEAVES):
        return x
    raise CheckpointError(f"{where}: unexpected {type(x).__name__} in the generator's configuration")


def _module_state(obj: Any, where: str) -> dict[str, Any]:
    st = obj.state if isinstance(obj, PickledObject) else None
    if not isinstance(st, dict) or not all(isinstance(st.get(k), dict) for k in ("_parameters", "_buffers", "_modules")):
        raise CheckpointError(f"{where}: not a torch module record ({getattr(obj, 'class_name', type(obj).__name__)})")
    return st


def module_state_dict(obj: PickledObject, prefix: str = "", _path: tuple[int, ...] = ()
                      ) -> tuple[OrderedDict[str, torch.Tensor], list[str]]:
    """State dict of a module record exactly as ``nn.Module.state_dict`` orders it: own parameters,
    own persistent buffers, then each child recursively. Also returns the names that are parameters."""
    st = _module_state(obj, prefix.rstrip(".") or "generator")
    if id(obj) in _path:
        raise CheckpointError(f"{prefix.rstrip('.')}: the module tree contains a cycle")
    non_persistent = st.get("_non_persistent_buffers_set") or set()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    params: list[str] = []
    for kind, entries in (("parameter", st["_parameters"]), ("buffer", st["_buffers"])):
        for name, t in entries.items():
            if t is None or (kind == "buffer" and name in non_persistent):
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{prefix}{name}: {kind} is a {type(t).__name__}, not a tensor")
            out[prefix + name] = t.detach()  # detach: drops anything attached to the pickled tensor
            if kind == "parameter":
                params.append(prefix + name)
    for name, child in st["_modules"].items():
        if child is not None:
            sub, sub_params = module_state_dict(child, f"{prefix}{name}.", (*_path, id(obj)))
            out.update(sub)
            params += sub_params
    return out, params


# EG3D TriPlaneGenerator's positional parameters, for pickles that stored positional init args
EG3D_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "sr_num_fp16_res",
                   "mapping_kwargs", "rendering_kwargs", "sr_kwargs")


@dataclass(frozen=True)
class Eg3dCheckpoint:
    """The generator inside an EG3D network pickle, extracted without building or running anything."""

    init_kwargs: dict[str, Any]  # constructor kwargs, plain JSON values (positional args folded in)
    state_dict: OrderedDict[str, torch.Tensor]  # parameters + persistent buffers, Module.state_dict order, CPU
    rendering_kwargs: dict[str, Any]  # the generator's ``rendering_kwargs`` attribute at pickling time
    neural_rendering_resolution: int | None  # its ``neural_rendering_resolution`` attribute
    class_name: str  # EG3D class name of the record ("TriPlaneGenerator")
    top_level_keys: tuple[str, ...]  # every key of the snapshot dict, e.g. G, G_ema, D, augment_pipe, ...
    parameter_keys: tuple[str, ...]  # the state-dict keys that are parameters (the rest are buffers)

    @property
    def num_parameters(self) -> int:
        return sum(self.state_dict[k].numel() for k in self.parameter_keys)


def read_eg3d_pickle(f: IO[bytes], key: str = "G_ema") -> Eg3dCheckpoint:
    """Extract ``snapshot[key]`` (default ``G_ema``) from an EG3D network pickle, safely."""
    data = safe_load(f)
    try:
        return _extract(data, key)
    except CheckpointError:
        raise
    except (RecursionError, TypeError, ValueError, AttributeError) as exc:  # crafted/corrupt structure
        raise CheckpointError(f"{key}: malformed network record ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _extract(data: Any, key: str) -> Eg3dCheckpoint:
    if not isinstance(data, dict):
        raise CheckpointError(f"not an EG3D network pickle: expected a snapshot dict, found {type(data).__name__}")
    if key not in data:
        raise CheckpointError(f"not an EG3D network pickle: no {key!r} in its keys {sorted(map(str, data))}")
    G = data[key]
    if not isinstance(G, PickledObject) or not G.persistent:
        raise CheckpointError(f"{key} is not an EG3D persistent network ({type(G).__name__})")
    if G.class_name.rsplit(".", 1)[-1] != "TriPlaneGenerator":
        raise CheckpointError(f"{key} is a {G.class_name}, not an EG3D TriPlaneGenerator")
    st = _module_state(G, key)
    args, kwargs = st.get("_init_args", ()), st.get("_init_kwargs")
    if not isinstance(kwargs, dict) or not isinstance(args, (tuple, list)) or len(args) > len(EG3D_POSITIONAL):
        raise CheckpointError(f"{key} carries no usable constructor arguments (_init_args/_init_kwargs)")
    init_kwargs = plain({**dict(zip(EG3D_POSITIONAL, args, strict=False)), **kwargs}, "init_kwargs")
    rendering = plain(st.get("rendering_kwargs", init_kwargs.get("rendering_kwargs", {})), "rendering_kwargs")
    nrr = st.get("neural_rendering_resolution")
    if nrr is not None and (type(nrr) is not int or nrr <= 0):
        raise CheckpointError(f"{key}.neural_rendering_resolution is {nrr!r}, expected a positive int")
    state_dict, params = module_state_dict(G)
    log.debug("EG3D pickle: %s with %d state-dict entries", G.class_name, len(state_dict))
    return Eg3dCheckpoint(init_kwargs=init_kwargs, state_dict=state_dict, rendering_kwargs=rendering,
                          neural_rendering_resolution=nrr, class_name=G.class_name,
                          top_level_keys=tuple(map(str, data)), parameter_keys=tuple(params))
