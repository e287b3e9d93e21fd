"""The package layout holds: no import cycles (imports inside functions included), every package imports only from
its own layer and the layers below it, the torch-free packages never reach a module that imports torch, and no
module is named like a standard-library module. Layers are packages, so a new module is checked by where it lives,
and a new package must be given a layer here."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rfcalc"
# Bottom first. A module imports (at the top or inside a function) only modules of its own layer or of the layers
# below. `rfcalc` itself (rfcalc/__init__.py) is the public facade: it loads its names lazily from any layer.
LAYERS = [
    ("rfcalc.errors", "rfcalc.quantities", "rfcalc.lines", "rfcalc.extras", "rfcalc.targets", "rfcalc.signals"),
    ("rfcalc.table",),
    ("rfcalc.ops",),
    ("rfcalc.spec",),
    ("rfcalc.analysis",),
    ("rfcalc.render",),  # how a report is shown (rich, matplotlib): reads analysis, never read by it
    ("rfcalc.suggest", "rfcalc.model"),
    ("rfcalc.inspection",),
    ("rfcalc.trainer",),
    ("rfcalc.sweep",),
    ("rfcalc.cli", "rfcalc.__main__"),
]
FACADE = "rfcalc"
# The pure core and what runs on it alone, torch-free: `table`, `check` and `suggest` (tests/test_torch_free.py runs
# them where torch cannot be imported), and the sweep (which trains in child processes).
TORCH_FREE = (*(p for layer in LAYERS[:LAYERS.index(("rfcalc.suggest", "rfcalc.model"))] for p in layer),
              "rfcalc.suggest", "rfcalc.sweep")
# Known crossings, each with its way out; the test fails when one is gone, so that the list only shrinks.
KNOWN_CROSSINGS = {
    # the random-spec generator checks each spec with the calculator it is meant to test (belongs beside it)
    ("rfcalc.spec.random_specs", "rfcalc.analysis.load"),
}


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
    if name == "rfcalc.ops.registry":  # it imports each op family by name from its table, when first used
        from rfcalc.ops.registry import FAMILIES

        found |= {f"rfcalc.ops.{family}" for family in FAMILIES}
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


def layer(name: str) -> int:
    """The layer of module ``name``: the index in LAYERS of the package that holds it."""
    found = [i for i, packages in enumerate(LAYERS) for p in packages if name == p or name.startswith(p + ".")]
    assert found, f"{name}: in no layer; add its package to tests/test_layout.py's LAYERS"
    return found[0]


def test_every_module_is_in_a_layer() -> None:
    for name in MODULES:
        if name != FACADE:
            layer(name)


def test_every_module_imports_only_its_own_layer_and_below() -> None:
    crossings = {(name, target) for name, targets in GRAPH.items() if name != FACADE
                 for target in targets if target != FACADE and layer(target) > layer(name)}
    assert crossings - KNOWN_CROSSINGS == set(), "imports from a higher layer"
    assert KNOWN_CROSSINGS - crossings == set(), "a known crossing is gone: remove it from KNOWN_CROSSINGS"


def test_the_torch_free_packages_reach_neither_the_facade_nor_the_cli() -> None:
    """The facade loads the torch side lazily: a torch-free module that imported it would reach everything."""
    for name in MODULES:
        if name.startswith(TORCH_FREE):
            assert not {m for m in _reachable(name) if m == FACADE or m.startswith("rfcalc.cli")}, name


def test_no_module_is_named_like_a_standard_library_module() -> None:
    clashes = {name for name in MODULES if name.rpartition(".")[2] in sys.stdlib_module_names}
    assert clashes == set()


RENDERING_LIBRARIES = ("rich", "matplotlib")
# The computing layers (everything below `rfcalc.render`): pure computation, no terminal or figure code.
COMPUTING = tuple(p for packages in LAYERS[:LAYERS.index(("rfcalc.render",))] for p in packages)


def third_party_imports(name: str) -> set[str]:
    """The top-level names of every package module ``name`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_computing_layers_never_import_rich_or_matplotlib() -> None:
    """Rendering lives in `rfcalc.render` (and the shells above it); analysis and the layers below only compute,
    and reach no module that renders."""
    assert "rich" in third_party_imports("rfcalc.render.report")  # the check sees real imports
    assert "matplotlib" in third_party_imports("rfcalc.render.plot")  # (inside a function)
    for name in MODULES:
        if name.startswith(COMPUTING):
            assert not third_party_imports(name) & set(RENDERING_LIBRARIES), name
            assert not {m for m in _reachable(name) if m.startswith("rfcalc.render")}, name


def test_the_graph_is_read() -> None:
    """The checks above see real edges (a broken parser would pass them vacuously)."""
    assert "rfcalc.ops.registry" in GRAPH["rfcalc.analysis.calculator"]
    assert "rfcalc.ops.conv" in GRAPH["rfcalc.ops.registry"]
    assert "rfcalc.inspection.target" in GRAPH["rfcalc.cli.spec_commands"]  # inside a function
    assert {layer("rfcalc.errors"), layer("rfcalc.ops.conv"), layer("rfcalc.cli.app")} == {0, 2, len(LAYERS) - 1}
    assert "rfcalc.model.weights" in GRAPH["rfcalc.trainer.loop"]


def imports_torch_at_the_top(name: str) -> bool:
    """Whether loading module ``name`` imports torch (an import of torch outside any function or class)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in tree.body:
        for sub in ([node] if not isinstance(node, ast.Try) else node.body):
            if isinstance(sub, ast.Import) and any(a.name.split(".")[0] == "torch" for a in sub.names):
                return True
            if isinstance(sub, ast.ImportFrom) and (sub.module or "").split(".")[0] == "torch":
                return True
    return False


TORCH_AT_THE_TOP = {name for name in MODULES if imports_torch_at_the_top(name)}


def test_torch_free_packages_never_reach_a_module_that_imports_torch() -> None:
    """The core, suggest and sweep (which trains in child processes) run where torch cannot be imported; the
    command line loads none of it before a command runs."""
    assert "rfcalc.model.builder" in TORCH_AT_THE_TOP and "rfcalc.trainer.distributed" in TORCH_AT_THE_TOP
    free = [m for m in MODULES if m.startswith((*TORCH_FREE, "rfcalc.cli"))]
    for name in free:
        reached = _reachable(name) & TORCH_AT_THE_TOP
        if name.startswith("rfcalc.cli"):  # commands import the torch side inside their bodies only
            reached = {m for m in reached if m in _top_level_reachable(name)}
        assert not reached, f"{name} reaches {sorted(reached)}"


def _top_level_reachable(start: str) -> set[str]:
    """Modules reached through imports at the top of each module only (what loading ``start`` loads)."""
    def top(name: str) -> set[str]:
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        outer = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
        found: set[str] = set()
        for node in outer.body:
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        return {m for m in found if m in MODULES}

    seen, todo = set(), [start]
    while todo:
        for w in top(todo.pop()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen
