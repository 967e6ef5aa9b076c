"""The house rules of docs/architecture.md, held by a test: modules of at most 400 lines,
no import circle, and the entry points on top (nothing imports cli/, ci/ or plugin.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_condamatrix

PACKAGE = Path(pytest_condamatrix.__file__).parent
MAX_LINES = 400
TOP = ("pytest_condamatrix.cli", "pytest_condamatrix.ci", "pytest_condamatrix.plugin")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, lazily (in a function) or not; imports
    for type checking only are left out (they never run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        out.update(c for c in candidates if c in known and c != name)
    return out


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(p.read_text().splitlines()) for name, p in _modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_no_import_circle_and_nothing_imports_the_entry_points() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    upward = {
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if target.startswith(TOP) and not name.startswith(TOP)
    }
    assert upward == set()
    # Package __init__ modules are left out: importing a.b imports a first, which is no
    # dependency of a on a.b.
    graph = {n: {t for t in ts if not _is_parent(t, n)} for n, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _is_parent(target: str, name: str) -> bool:
    return name.startswith(target + ".")
