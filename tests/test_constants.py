"""EG3D's FFHQ camera and ray numbers are written once, in ``sym3dinv/eg3d_constants.py``: the package
(read with :mod:`ast`, so docstrings and comments may still name them) holds no other literal of them."""

from __future__ import annotations

import ast
from pathlib import Path

from sym3dinv import cameras, eg3d_constants
from sym3dinv.config import AlignConfig, CameraSpec
from sym3dinv.generator.triplane_generator import RENDERING_DEFAULTS

REPO = Path(__file__).resolve().parents[1]
HOME = "sym3dinv/eg3d_constants.py"
CONSTANTS = {eg3d_constants.RAY_START, eg3d_constants.RAY_END, eg3d_constants.FFHQ_FOCAL, eg3d_constants.FOV_DEG,
             eg3d_constants.RADIUS}
# 2.7 is also the authors' divisor of the mirror weight's Gaussian (METHOD.md), a method number, not a camera
ALLOWED = {("sym3dinv/config/invert.py", eg3d_constants.RADIUS)}


def _literals(path: Path) -> list[tuple[int, object]]:
    """(line, value) of every float literal in CONSTANTS and every (0, 0, 0.2) tuple or list."""
    out: list[tuple[int, object]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and type(node.value) is float and node.value in CONSTANTS:
            out.append((node.lineno, node.value))
        elif (isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 3
              and all(isinstance(x, ast.Constant) and isinstance(x.value, int | float) for x in node.elts)
              and tuple(float(x.value) for x in node.elts) == eg3d_constants.PIVOT):  # type: ignore[attr-defined]
            out.append((node.lineno, "pivot"))
    return out


def test_ffhq_constants_are_defined_once() -> None:
    found = [(rel, line, v) for pkg in ("sym3dinv", "tasks", "flows") for p in sorted((REPO / pkg).rglob("*.py"))
             if (rel := str(p.relative_to(REPO))) != HOME for line, v in _literals(p) if (rel, v) not in ALLOWED]
    assert not found, f"write these as sym3dinv.eg3d_constants names: {found}"
    assert len(_literals(REPO / HOME)) == 6  # the finder sees the definitions themselves


def test_users_take_the_one_definition() -> None:
    assert cameras.RADIUS is eg3d_constants.RADIUS and cameras.PIVOT is eg3d_constants.PIVOT
    assert CameraSpec().radius == eg3d_constants.RADIUS and CameraSpec().focal == AlignConfig().focal == 4.2647
    assert (RENDERING_DEFAULTS["ray_start"], RENDERING_DEFAULTS["ray_end"]) == (2.25, 3.3)
    assert RENDERING_DEFAULTS["avg_camera_pivot"] == [0.0, 0.0, 0.2]
