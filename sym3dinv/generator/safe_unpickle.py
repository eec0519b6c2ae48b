"""Read EG3D network pickles without executing anything from them.

EG3D pickles embed the Python source of their classes (``torch_utils.persistence``) and rebuild
objects by running it. We never do: a restricted unpickler resolves only an allow-list of globals,
turns every EG3D/torch module class into an inert :class:`Inert` record (class name + state), rebuilds
tensors with torch's own safe rebuild functions, and loads embedded storages with
``torch.load(weights_only=True)``. Any other global raises :class:`UnsafePickleError` naming it, before
it could be called.
"""

from __future__ import annotations

import collections
import io
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import torch

from sym3dinv.errors import CheckpointError, UnsafePickleError

# globals rebuilt as inert records (their code is never imported or run)
INERT_CLASSES = {
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.container.Sequential",
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
}


class Inert:
    """A placeholder for a pickled object: its class name and the state the pickle gave it."""

    class_name: str = "?"

    def __init__(self, class_name: str = "?", state: Any = None) -> None:
        self.class_name = class_name
        self.state = state if state is not None else {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Inert({self.class_name})"


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict with attribute access, nothing else."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _inert_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (Inert,), {"class_name": qualname})


def _reconstruct_persistent_obj(meta: Any) -> Inert:
    """Replacement for EG3D's persistence hook: keep class name and state, drop ``module_src`` unread."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or "class_name" not in meta:
        raise CheckpointError("malformed persistent-object record in the pickle")
    obj = Inert(str(meta["class_name"]), meta.get("state"))
    return obj


def _load_storage_bytes(data: bytes) -> Any:
    """Embedded storages are tiny legacy ``torch.save`` archives: load them with weights_only."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("embedded storage is not a bytes object")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any) -> torch.nn.Parameter:
    return torch.nn.Parameter(data, requires_grad=requires_grad)  # hooks are dropped, never called


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("numpy scalar of object dtype refused")
    return np.frombuffer(data or b"", dtype=dtype, count=1)[0]


SAFE_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "dnnlib.util.EasyDict": EasyDict,
    "numpy.dtype": np.dtype,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_storage_bytes,
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "_codecs.encode": lambda s, enc="latin1": s.encode(enc) if enc in ("latin1", "latin-1") else _refuse("_codecs.encode", enc),
    **{name: _inert_class(name) for name in INERT_CLASSES},
}


def _refuse(name: str, detail: str = "") -> Any:
    raise UnsafePickleError(f"refused to load global {name}{' (' + detail + ')' if detail else ''}: "
                            "not on the allow-list of EG3D checkpoint contents; nothing from the file was run")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`SAFE_GLOBALS`; persistent ids are refused."""

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        if qual in SAFE_GLOBALS:
            return SAFE_GLOBALS[qual]
        return _refuse(qual)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refused persistent id {str(pid)[:60]!r}: EG3D pickles use none")


def safe_load(f: IO[bytes]) -> Any:
    """Unpickle with the restricted unpickler; truncation and corruption become CheckpointError."""
    try:
        return RestrictedUnpickler(f).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"the pickle is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class Eg3dCheckpoint:
    """What an EG3D network pickle holds for the generator, extracted without running its code."""

    init_kwargs: dict[str, Any]
    state_dict: OrderedDict[str, torch.Tensor]
    rendering_kwargs: dict[str, Any]
    neural_rendering_resolution: int | None
    class_name: str
    top_level_keys: tuple[str, ...] = field(default=())


def _plain(x: Any) -> Any:
    """EasyDicts/OrderedDicts/numpy scalars -> plain JSON-able Python values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def module_state_dict(obj: Inert, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """Walk an inert nn.Module record the way ``Module.state_dict`` does (params, persistent buffers,
    then children, each in insertion order)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    st = obj.state if isinstance(obj, Inert) else None
    if not isinstance(st, dict) or "_parameters" not in st:
        raise CheckpointError(f"{prefix or 'root'}: not a torch module record ({getattr(obj, 'class_name', type(obj))})")
    non_persistent = st.get("_non_persistent_buffers_set") or set()
    for name, p in st["_parameters"].items():
        if p is not None:
            out[prefix + name] = p.detach() if isinstance(p, torch.Tensor) else p
    for name, b in st.get("_buffers", {}).items():
        if b is not None and name not in non_persistent:
            out[prefix + name] = b
    for name, child in st.get("_modules", {}).items():
        if child is not None:
            out.update(module_state_dict(child, prefix + name + "."))
    for k, v in out.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{k}: expected a tensor, found {type(v).__name__}")
    return out


def read_eg3d_pickle(f: IO[bytes], key: str = "G_ema") -> Eg3dCheckpoint:
    """Extract the generator's constructor kwargs and state dict from an EG3D network pickle."""
    data = safe_load(f)
    if not isinstance(data, dict) or key not in data:
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"not an EG3D network pickle: expected a dict with {key!r}, found {keys}")
    G = data[key]
    if not isinstance(G, Inert):
        raise CheckpointError(f"{key} is not a persistent EG3D module")
    st = G.state
    kwargs = st.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{key} carries no constructor kwargs (_init_kwargs)")
    nrr = st.get("neural_rendering_resolution")
    return Eg3dCheckpoint(
        init_kwargs=_plain(kwargs),
        state_dict=module_state_dict(G),
        rendering_kwargs=_plain(st.get("rendering_kwargs") or kwargs.get("rendering_kwargs") or {}),
        neural_rendering_resolution=int(nrr) if nrr is not None else None,
        class_name=G.class_name,
        top_level_keys=tuple(sorted(map(str, data))),
    )
