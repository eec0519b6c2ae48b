"""Every error sym3dinv raises on purpose, each with a stable ``code``.

Batch jobs turn an :class:`ItemError` into an index row (``error_class`` = ``code``) and go on; a
:class:`ConfigError` stops a job before any work starts. Messages are written for a person.
"""

from __future__ import annotations


class Sym3dInvError(Exception):
    """Base class; ``code`` is the stable machine-readable class stored in the run index."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- configuration errors: fail fast, before any work --------------------------------------------------
class ConfigError(Sym3dInvError, ValueError):
    code = "config_error"


class ModelNotFoundError(ConfigError, FileNotFoundError):
    code = "model_not_found"


class EncoderMismatchError(ConfigError):
    """An encoder file trained for another generator than the one it is used with (fingerprints differ)."""

    code = "encoder_mismatch"


class GeneratorMismatchError(ConfigError):
    """Results in a store were made by another generator (fingerprints differ) than the one in use: resuming,
    building a dataset or applying edits would mix two generators (``sym3dinv.store.fingerprints``)."""

    code = "generator_mismatch"


class CheckpointError(ConfigError):
    """A generator checkpoint that cannot be read: unknown format, truncated, wrong shapes."""

    code = "checkpoint_error"


class UnsafePickleError(CheckpointError):
    """A pickle asked for a global outside the allow-list; nothing from it was executed."""

    code = "unsafe_pickle"


class StoreError(Sym3dInvError):
    code = "store_error"


class SchemaVersionError(StoreError):
    code = "schema_version"


class StoreNotFoundError(StoreError, ConfigError):
    """A command that reads a run store was given a URL with no run store there (nothing there at all,
    or no ``index/`` folder). A configuration error: the command stops before writing anything."""

    code = "store_not_found"


class StoreWriteError(StoreError):
    """Writing to the run store failed for good (disk full, permission denied, endpoint down after
    retries). Not an item problem: it stops the shard instead of becoming a row for every item."""

    code = "store_write_failed"


# --- per-item errors: one index row each, the job goes on ------------------------------------------
class ItemError(Sym3dInvError):
    """Something wrong with one input; recorded against the item, never fatal to the job.

    ``final``: the failure is a property of the input's bytes under the config (undecodable, too small,
    no face...), so a rerun of the same store settles the item instead of redoing it
    (:data:`FINAL_ERROR_CODES`); failures of the run (out of memory, a lost worker) are redone."""

    code = "item_error"
    final = False


class DecodeError(ItemError):
    code = "decode_error"
    final = True


class BadCameraError(DecodeError):
    """A known camera label that cannot be used: wrong length, NaN, not a rigid transform, or a format
    that does not convert (sym3dinv.camera_check names the problem)."""

    code = "bad_camera"


class UnsupportedModeError(ItemError):
    code = "unsupported_mode"


class ImageTooLargeError(ItemError):
    code = "too_large"
    final = True


class ImageTooSmallError(ItemError):
    code = "too_small"
    final = True


class UnreadableInputError(ItemError):
    code = "unreadable"


class AlignError(ItemError):
    code = "align_error"
    final = True


class NoFaceError(AlignError):
    code = "no_face"


class FaceTooSmallError(AlignError):
    code = "face_too_small"


class LowConfidenceError(AlignError):
    code = "low_confidence"


class ExtremePoseError(AlignError):
    code = "extreme_pose"


class EmptyGroupError(ItemError):
    """A group of photos of one person none of whose members could be used (undecodable, no face, ...): each
    member has a failure row of its own saying why. Final: the same photos fail the same way, and a
    changed photo has another content id, so its group is another item anyway."""

    code = "empty_group"
    final = True


class OutOfMemoryItemError(ItemError):
    code = "out_of_memory"


class WorkerLostError(ItemError):
    code = "worker_lost"


class InversionError(ItemError):
    code = "inversion_error"


def _final_codes(cls: type[ItemError]) -> set[str]:
    out = {cls.code} if cls.final else set()
    for sub in cls.__subclasses__():
        out |= _final_codes(sub)
    return out


FINAL_ERROR_CODES: frozenset[str] = frozenset(_final_codes(ItemError))
"""Error classes a rerun settles rather than redoes (``ItemError.final``): decode_error, too_large,
too_small, empty_group and the alignment failures (no_face, face_too_small, low_confidence, extreme_pose,
align_error)."""


def error_code(exc: BaseException) -> str:
    """Stable class of any exception for the index (unexpected ones become ``internal_error``)."""
    if isinstance(exc, Sym3dInvError):
        return exc.code
    if isinstance(exc, MemoryError) or is_oom_message(str(exc)):
        return OutOfMemoryItemError.code
    return "internal_error"


OOM_PHRASES = ("out of memory", "can't allocate memory", "cannot allocate memory")
"""How allocators word it: CUDA/MPS ("out of memory"), torch's CPU allocator ("DefaultCPUAllocator: can't
allocate memory"), glibc/ENOMEM ("Cannot allocate memory")."""


def is_oom_message(message: str) -> bool:
    low = message.lower()
    return any(p in low for p in OOM_PHRASES)
