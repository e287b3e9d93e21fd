"""`rfcalc export`: standalone source whose class builds the same module as build_model (state_dicts round-trip)."""
from __future__ import annotations

import ast
import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import bundled_specs

import rfcalc
from rfcalc.model.export import class_name_for, export_source
from rfcalc.spec.random_specs import valid_specs

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = bundled_specs()
_counter = itertools.count()


pytestmark = pytest.mark.usefixtures("one_thread")


def import_source(source: str, tmp_path: Path) -> ModuleType:
    path = tmp_path / f"exported_{next(_counter)}.py"
    path.write_text(source, encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def assert_round_trip(spec: rfcalc.Spec, tmp_path: Path) -> None:
    source = export_source(spec)
    exported = getattr(import_source(source, tmp_path), class_name_for(spec.name))()
    built = rfcalc.build_model(spec)
    assert list(exported.state_dict()) == list(built.state_dict())
    assert [name for name, _ in exported.named_modules()][1:] == [name for name, _ in built.named_modules()][1:]
    built.load_state_dict(exported.state_dict())          # the exported weights run in build_model's module
    exported.load_state_dict(built.state_dict())          # and back
    exported.eval()
    built.eval()
    x = torch.randn(2, *spec.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(exported(x), built(x), rtol=0, atol=0)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
def test_bundled_specs_round_trip(path: Path, tmp_path: Path) -> None:
    spec = rfcalc.load_spec(path)  # a bundled spec is valid: a SpecError fails the test
    assert_round_trip(spec, tmp_path)


def test_every_op_round_trips(tmp_path: Path) -> None:
    assert_round_trip(rfcalc.load_spec(ROOT / "tests" / "specs" / "every_op.yaml"), tmp_path)


@pytest.mark.slow
def test_random_specs_round_trip(tmp_path: Path) -> None:
    checked = 0
    for _, spec in valid_specs(25, first_seed=5000):
        assert_round_trip(spec, tmp_path)
        checked += 1
    assert checked == 25


@pytest.mark.slow
def test_the_source_is_standalone_and_runs(tmp_path: Path) -> None:
    spec = rfcalc.load_spec(ROOT / "arch_specs" / "two_branch_dilated.yaml")
    source = export_source(spec)
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert imports == {"__future__", "collections", "torch"}
    path = tmp_path / "model.py"
    path.write_text(source, encoding="utf-8")
    code = f"import sys; sys.modules['rfcalc'] = None; sys.argv = ['model.py']; exec(open({str(path)!r}).read())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"output (10,) parameters {spec.report.params}")
    assert "class TwoBranchDilated(nn.Module):" in source
    assert "nn.Conv2d(" in source and "# -> " in source


def test_awkward_names(tmp_path: Path) -> None:
    spec = rfcalc.load_spec({"version": 1, "name": "3 tiny/nets", "input": {"channels": 1, "size": 6},
                             "layers": [{"op": "conv", "name": "for", "out": 2, "act": "relu"},
                                        {"op": "relu", "name": "Parallel"}]})
    assert class_name_for(spec.name) == "Net3TinyNets"
    assert class_name_for("parallel") == "ParallelNet"
    assert_round_trip(spec, tmp_path)
    assert 'self.add_module("for", ' in export_source(spec)
    assert "class Small(nn.Module)" in export_source(spec, "Small")


def test_cli_export(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rfcalc.cli.app import app

    spec_path = ROOT / "examples" / "quickstart.yaml"
    out = tmp_path / "model.py"
    result = runner.invoke(app, ["export", str(spec_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == export_source(rfcalc.load_spec(spec_path))
    printed = runner.invoke(app, ["export", str(spec_path)])
    assert printed.exit_code == 0 and printed.stdout == out.read_text(encoding="utf-8")
    bad = runner.invoke(app, ["export", str(spec_path), "--class-name", "not a name"])
    assert bad.exit_code == 2 and "not a usable class name: 'not a name'" in bad.stderr
    shadow = runner.invoke(app, ["export", str(spec_path), "--class-name", "torch"])
    assert shadow.exit_code == 2 and shadow.stderr.count("\n") == 1
