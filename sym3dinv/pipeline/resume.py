"""Resume under the right generator: the check the bulk flow (and ``sym3dinv invert``) make at planning time,
before any inversion work (docs/reliability.md "Resume under another generator").

The config hash names the generator's *source* (``synthheads``, a path), not its weights; the fingerprint of
the loaded generator tells two generators apart. The generator is loaded here (on CPU) only when the store
has done rows of this config that carry a fingerprint, so a fresh store costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sym3dinv.store.fingerprints import check_resume, done_fingerprints

if TYPE_CHECKING:
    from sym3dinv.config.pipeline import ExecutionConfig, PipelineConfig
    from sym3dinv.store import RunStore


def current_fingerprint(config: PipelineConfig) -> str:
    """The fingerprint of the generator ``config`` names (loaded on CPU, then dropped)."""
    from sym3dinv.generator import load_generator
    from sym3dinv.generator.fingerprint import generator_fingerprint

    return generator_fingerprint(load_generator(config.generator, device="cpu"))


def resume_fingerprint(store: RunStore, config: PipelineConfig, execution: ExecutionConfig) -> str | None:
    """Check that resuming ``store`` with ``config``'s generator mixes nothing; return the fingerprint the done
    set must be restricted to (``RunStore.pending(generator_fingerprint=...)``), or None for no restriction.

    Raises :class:`~sym3dinv.errors.GeneratorMismatchError` when done rows of this config were made by
    another generator and ``execution.new_generator`` is off; with it on, only this generator's done rows
    count as done (the others are inverted again; their rows stay)."""
    if not execution.resume:
        return None
    found = done_fingerprints(store, config.config_hash)
    if not found or (not execution.new_generator and set(found) == {None}):
        return None  # nothing done, or only rows from before fingerprints (accepted, see check_resume)
    current = current_fingerprint(config)
    if execution.new_generator:
        return current
    check_resume(store, config.config_hash, current, config.generator)
    return None
