"""Names of the store's layout, written once: folders, item output keys, render view names, edit folders.

Item outputs are keyed ``latents``, ``delta``, ``metrics``, ``render/<view>`` and ``depth/<view>``; a view
of the pipeline's renders is named ``yaw+0.50_pitch-0.10`` (radians, two decimals, always signed),
``input`` is the image the inversion saw and ``render/input`` the reconstruction at the input camera (older
stores kept the input itself there: :func:`input_outputs` reads both). A group (several photos of one
person inverted into one head) also keeps each used member ``k``: ``input-<k>`` and ``render/input-<k>``
(:func:`member_view`, :func:`member_outputs`); its ``input`` / ``render/input`` are member 0's. Edit folders (``sym3dinv edit apply``) live under
``edits/<name>/`` with an ``edit.json`` manifest of format :data:`EDIT_FORMAT`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ITEMS_DIR = "items"
INDEX_DIR = "index"
EDITS_DIR = "edits"
REPORTS_DIR = "reports"
LEASES_DIR = "leases"
"""``leases/<id>/g<generation>.json``: the per-item leases (``store/leases.py``)."""
MANIFEST = "_MANIFEST.json"
"""Written last into an attempt folder: its presence is the commit."""
RENDER_PREFIX = "render/"
DEPTH_PREFIX = "depth/"
INPUT_KEY = "input"
"""Output key of ``input.png``, the input as inverted (aligned, at the generator's resolution)."""
INPUT_VIEW = "input"
"""Render name of the reconstruction at the input camera (``render-input.png``, with ``depth/input``)."""
INPUT_RENDER = RENDER_PREFIX + INPUT_VIEW
"""Output key of ``render-input.png``; stores written before ``input.png`` existed kept the input here."""
INPUT_DEPTH = DEPTH_PREFIX + INPUT_VIEW
"""Output key of the depth at the input camera."""
MEMBER_RE = re.compile(r"^input-(\d+)$")
"""Name of a group member's input image key and of its reconstruction's render (``input-<k>``)."""
EDIT_MANIFEST = "edit.json"
EDIT_FORMAT = "sym3dinv-edit/1"
DEFAULT_VIEWS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (-0.5, 0.0), (0.5, 0.0))
"""(yaw, pitch) in radians of the default renders (pipeline and edits): frontal and +-0.5 rad."""
VIEW_RE = re.compile(r"^yaw([+-]?\d+(?:\.\d+)?)_pitch([+-]?\d+(?:\.\d+)?)$")


def view_name(yaw: float, pitch: float) -> str:
    """The render name of a camera (``yaw+0.50_pitch+0.00``)."""
    return f"yaw{yaw:+.2f}_pitch{pitch:+.2f}"


def member_view(k: int) -> str:
    """The name of group member ``k``'s input (key ``input-<k>``, ``input-<k>.png``) and of its reconstruction
    at its own camera (``render/input-<k>``, ``render-input-<k>.png``)."""
    return f"{INPUT_VIEW}-{int(k)}"


def member_outputs(outputs: Mapping[str, str] | None) -> list[tuple[int, str | None, str | None]]:
    """(k, input image, reconstruction at member k's camera) of a group item's members, sorted by k; [] for
    a single photo's outputs."""
    found: dict[int, list[str | None]] = {}
    for key, rel in (outputs or {}).items():
        m = MEMBER_RE.match(key[len(RENDER_PREFIX):] if key.startswith(RENDER_PREFIX) else key)
        if m:
            found.setdefault(int(m.group(1)), [None, None])[key.startswith(RENDER_PREFIX)] = rel
    return [(k, v[0], v[1]) for k, v in sorted(found.items())]


def parse_view(name: str) -> tuple[float, float] | None:
    """``yaw+0.50_pitch-0.10`` -> (0.5, -0.1); None for other render names (``input``)."""
    m = VIEW_RE.match(name)
    return (float(m.group(1)), float(m.group(2))) if m else None


def render_views(outputs: dict[str, str] | None) -> list[tuple[tuple[float, float], str, str]]:
    """((yaw, pitch), view name, path) of an item's stored view renders, sorted by (yaw, pitch)."""
    views = []
    for key, rel in (outputs or {}).items():
        if key.startswith(RENDER_PREFIX):
            yp = parse_view(key[len(RENDER_PREFIX):])
            if yp is not None:
                views.append((yp, key[len(RENDER_PREFIX):], rel))
    return sorted(views, key=lambda v: v[0])


def input_outputs(outputs: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(input image, reconstruction at the input camera) of an item's outputs, for any store.

    Stores from before ``input.png`` existed wrote the input itself as ``render-input.png`` and no render
    at the input camera: for them this is ``(outputs["render/input"], None)`` and readers fall back to the
    stored view nearest the input camera."""
    if INPUT_KEY in outputs:
        return outputs[INPUT_KEY], outputs.get(INPUT_RENDER)
    return outputs.get(INPUT_RENDER), None
