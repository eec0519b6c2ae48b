"""House rule 1: the library never imports the orchestration layer."""

from __future__ import annotations

import ast
from pathlib import Path

import sym3dinv

FORBIDDEN = {"prefect", "prefect_ray", "ray", "tasks", "flows"}


def test_library_never_imports_prefect_or_ray() -> None:
    root = Path(sym3dinv.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders, offenders


def test_config_modules_do_not_import_torch() -> None:
    root = Path(sym3dinv.__file__).parent / "config"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        mods += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(m.split(".")[0] == "torch" for m in mods), path
