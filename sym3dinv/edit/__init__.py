"""Latent editing: directions in W (user ``.npy`` files or learned from latents and labels) applied to pivots.

- :mod:`~sym3dinv.edit.directions`: :class:`Edit`, :func:`load_direction`, :func:`check_direction`, :func:`apply_edit`.
- :mod:`~sym3dinv.edit.learn`: ridge-regression directions (conditional), the shipped SynthHeads attribute set.
- :mod:`~sym3dinv.edit.attributes`: SynthHeads ground-truth attributes and meters that read them from renders.
- :mod:`~sym3dinv.edit.build`: build an attribute set; :mod:`~sym3dinv.edit.apply`: render edits of a run store.
See docs/editing.md.
"""

from sym3dinv.edit.directions import Edit, apply_edit, check_direction, load_direction
from sym3dinv.edit.learn import LearnedDirection, learn_directions, learn_from_set, load_attribute_set

__all__ = ["Edit", "LearnedDirection", "apply_edit", "check_direction", "learn_directions", "learn_from_set",
           "load_attribute_set", "load_direction"]
