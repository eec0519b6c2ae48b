"""The house's layering, checked on the import graph of ``sym3dinv``, ``tasks`` and ``flows`` (read with
:mod:`ast`, nothing imported): every import counts, at module level, under ``TYPE_CHECKING`` or inside a
function, because a cycle of any of them is a knot a reader has to untie.

- the library never imports the orchestration layer (Prefect, Ray, ``tasks``, ``flows``);
- config modules never import torch (flows validate parameters before any model loads);
- no import cycles, not even type-only ones;
- ``store/`` imports nothing from ``generator/`` or ``invert/``; ``tasks/`` never imports ``flows/``;
- nothing under ``sym3dinv/`` or ``tasks/`` reads a test hook's environment variable (hooks live in tests/).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sym3dinv", "tasks", "flows")
ORCHESTRATION = {"prefect", "prefect_ray", "ray", "tasks", "flows"}
TEST_HOOK = re.compile(r"TEST|FAULT|HANG|FAKE|MOCK", re.IGNORECASE)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module ``name`` imports (absolute, relative resolved; ``from a import b`` names ``a.b`` when
    that is a module, and ``a`` only when ``b`` is not), anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                root = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(root + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in _modules()]
            if len(subs) < len(node.names):  # a name from the module itself, not only its submodules
                yield base
            yield from subs


@cache
def _graph() -> dict[str, frozenset[str]]:
    """Module -> the project modules it imports."""
    mods = _modules()
    return {m: frozenset(i for i in _imports(m, p) if i in mods and i != m) for m, p in mods.items()}


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _external(prefix: str) -> Iterator[tuple[str, str]]:
    """(module, imported top-level name) for every import of the modules under ``prefix``."""
    for m, p in _modules().items():
        if m == prefix or m.startswith(prefix + "."):
            yield from ((m, i) for i in _imports(m, p))


def test_library_never_imports_prefect_or_ray() -> None:
    offenders = [f"{m}: {i}" for m, i in _external("sym3dinv") if i.split(".")[0] in ORCHESTRATION]
    assert not offenders, offenders


def test_config_modules_do_not_import_torch() -> None:
    offenders = [f"{m}: {i}" for m, i in _external("sym3dinv.config") if i.split(".")[0] == "torch"]
    assert not offenders, offenders


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, cycles


def test_the_store_writes_through_its_root_layer() -> None:
    """Index parts and item folders need only the root layer, never the run store facade."""
    graph = _graph()
    for m in ("sym3dinv.store.index", "sym3dinv.store.items"):
        assert "sym3dinv.store.root" in graph[m] and "sym3dinv.store.store" not in graph[m], m


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _graph()["sym3dinv.pipeline.processor"] >= {"sym3dinv.batching", "sym3dinv.config.pipeline"}
    # type-only imports count: the processor names RunStore only under TYPE_CHECKING
    assert "sym3dinv.store" in _graph()["sym3dinv.pipeline.processor"]


@pytest.mark.parametrize(("prefix", "forbidden"), [
    ("sym3dinv.store", ("sym3dinv.generator", "sym3dinv.invert")),
    ("tasks", ("flows",)),
])
def test_lower_rooms_never_import_upper_ones(prefix: str, forbidden: tuple[str, ...]) -> None:
    offenders = [f"{m}: {i}" for m, i in _external(prefix) if any(i == f or i.startswith(f + ".") for f in forbidden)]
    assert not offenders, offenders


def _env_reads(path: Path) -> Iterator[str]:
    """Names of the environment variables a module reads (``os.environ[...]``, ``.get``, ``os.getenv``,
    ``... in os.environ``), module-level string constants resolved."""
    tree = ast.parse(path.read_text())
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              and isinstance(n.value.value, str) for t in n.targets if isinstance(t, ast.Name)}

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return consts.get(node.id, node.id) if isinstance(node, ast.Name) else None

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
                (node.func.attr in ("get", "pop", "setdefault") and is_environ(node.func.value))
                or node.func.attr == "getenv"):
            key = node.args[0]
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            key = node.left
        name = text(key) if key is not None else None
        if name is not None:
            yield name


def test_no_test_hooks_in_the_product() -> None:
    from tests import plugin

    hooks = {plugin.HANG_MARKER_ENV}
    reads = {(str(p.relative_to(REPO)), n) for pkg in ("sym3dinv", "tasks") for p in (REPO / pkg).rglob("*.py")
             for n in _env_reads(p)}
    assert ("sym3dinv/models.py", "SYM3DINV_MODEL_DIR") in reads  # the reader sees real reads
    offenders = sorted(r for r in reads if TEST_HOOK.search(r[1]) or r[1] in hooks)
    assert not offenders, offenders
    mentions = [str(p) for pkg in ("sym3dinv", "tasks") for p in (REPO / pkg).rglob("*.py")
                if any(h in p.read_text() for h in hooks)]
    assert not mentions, mentions


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
ONE_CONCERN = {"sym3dinv/generator/safe_pickle.py"}
"""Allowed over the module limit: the restricted unpickler is one concern a reader checks as a whole."""


def test_rooms_and_functions_stay_small() -> None:
    """Modules of ``sym3dinv``, ``tasks`` and ``flows`` up to 400 lines, functions (methods, nested ones) up
    to 80: a newcomer reads one room, and one function, at a time."""
    big_modules, big_functions = [], []
    for name, path in _modules().items():
        rel = str(path.relative_to(REPO))
        src = path.read_text()
        if src.count("\n") > MAX_MODULE_LINES and rel not in ONE_CONCERN:
            big_modules.append((rel, src.count("\n")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    big_functions.append((f"{name}.{node.name}", lines))
    assert not big_modules, big_modules
    assert not big_functions, big_functions
