"""The package layout holds: no import cycles (imports inside functions included), the pure core never imports
the torch side nor the CLI, and no module is named like a standard-library module."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rfcalc"
# The pure core: `table` and `check` run on these alone, torch-free (tests/test_torch_free.py runs them).
CORE = ("rfcalc.errors", "rfcalc.quantities", "rfcalc.table", "rfcalc.ops", "rfcalc.spec", "rfcalc.analysis",
        "rfcalc.suggest")
TORCH_SIDE = ("rfcalc.model.builder", "rfcalc.model.modules", "rfcalc.model.weights", "rfcalc.model.erf",
              "rfcalc.model.oracle", "rfcalc.inspection.api", "rfcalc.inspection.lookup", "rfcalc.inspection.walk",
              "rfcalc.inspection.follow", "rfcalc.inspection.merges", "rfcalc.inspection.record",
              "rfcalc.inspection.tracing")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """Every rfcalc module ``name`` imports, at the top or inside a function (``from pkg import mod`` counts as
    importing ``pkg.mod``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: up node.level - 1 packages from this one
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in GRAPH[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_core_never_imports_the_cli_nor_the_torch_side() -> None:
    core = [m for m in MODULES if m.startswith(CORE)]
    assert len(core) > 20
    for name in core:
        bad = {m for m in _reachable(name) if m.startswith(("rfcalc.cli", *TORCH_SIDE))}
        assert not bad, f"{name} reaches {sorted(bad)}"


def test_nothing_but_the_cli_imports_the_cli() -> None:
    for name, targets in GRAPH.items():
        if not name.startswith("rfcalc.cli") and name != "rfcalc.__main__":
            assert not {t for t in targets if t.startswith("rfcalc.cli")}, name


def test_no_module_is_named_like_a_standard_library_module() -> None:
    clashes = {name for name in MODULES if name.rpartition(".")[2] in sys.stdlib_module_names}
    assert clashes == set()


def test_the_graph_is_read() -> None:
    """The checks above see real edges (a broken parser would pass them vacuously)."""
    assert "rfcalc.ops.registry" in GRAPH["rfcalc.analysis.calculator"]
    assert "rfcalc.ops.conv" in GRAPH["rfcalc.ops.registry"]
    assert "rfcalc.inspection.target" in GRAPH["rfcalc.cli.spec_commands"]
    assert "rfcalc.model.weights" in GRAPH["rfcalc.trainer.loop"]
