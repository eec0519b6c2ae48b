"""Where the encoder of a generator lives, and the error that says how to make it when it is missing.

No torch import: the bulk flow checks the file before any actor starts. The encoder of an embedded
generator ships next to it (``sym3dinv/synthheads/weights/<stem>_encoder.safetensors``); the encoder of a
local checkpoint ``X.safetensors`` / ``X.pkl`` is looked for as ``X_encoder.safetensors`` beside it;
anything else (a URL) needs an explicit path. Nothing is downloaded and there is no fallback.
"""

from __future__ import annotations

import os
from pathlib import Path

from sym3dinv.errors import ModelNotFoundError

ENCODER_SUFFIX = "_encoder.safetensors"
"""``<generator stem>_encoder.safetensors`` (+ ``.json``): the encoder trained for that generator."""


def _default_path(generator: str | None) -> Path | None:
    from sym3dinv.generator.checkpoint import default_generator_paths, embedded_name

    if embedded_name(generator) is not None:
        weights, _ = default_generator_paths(generator)
        return weights.with_name(weights.stem + ENCODER_SUFFIX)
    assert generator is not None
    if "://" in generator and not generator.startswith("file://"):
        return None
    p = Path(os.path.expanduser(generator.removeprefix("file://")))
    return p.with_name(p.stem + ENCODER_SUFFIX)


def train_command(generator: str | None) -> str:
    """The command that trains the encoder of ``generator``."""
    return f"sym3dinv encoder train OUT --generator {generator or 'synthheads'}"


def encoder_path(generator: str | None, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The encoder file for ``generator`` (or ``explicit``); :class:`ModelNotFoundError` when it is absent,
    naming the file and the training command."""
    if explicit is not None and str(explicit):
        p = Path(os.path.expanduser(os.fspath(explicit)))
        if not p.is_file():
            raise ModelNotFoundError(f"encoder file {p} does not exist (given explicitly); train one with "
                                     f"`{train_command(generator)}`")
        return p
    p = _default_path(generator)
    if p is None:
        raise ModelNotFoundError(f"no default encoder location for the generator {generator!r} (not a local "
                                 f"file); train one with `{train_command(generator)}` and pass its "
                                 "OUT/encoder.safetensors as the encoder")
    if not p.is_file():
        raise ModelNotFoundError(
            f"the encoder for generator {generator or 'synthheads'!r} is missing: expected {p}. Train it with "
            f"`{train_command(generator)}` and copy OUT/encoder.safetensors (+ .json) to {p}, or pass its path "
            "as the encoder (PipelineConfig.encoder / --encoder). Presets with stage1.init='encoder' "
            "('instant', 'quick') need it; other presets start from the mean w.")
    return p
