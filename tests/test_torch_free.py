"""`table` and `check` are pre-commit hooks: they must work where importing torch fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
version: 1
name: tiny
input: {channels: 3, size: 16}
layers:
  - {op: conv, out: 8, padding: 1, norm: bn, act: relu}
  - {op: residual, body: [{op: conv, out: 8, padding: 1}]}
  - {op: gap}
  - {op: linear, out: 10}
constraints: {rf: {gt: 4}}
"""


@pytest.fixture
def poisoned_env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch imported by a torch-free command')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), str(ROOT)])
    return env


@pytest.mark.parametrize("command", [["table", "--format", "json"], ["table"], ["check"],
                                     ["check", "--format", "json"], ["table", "--format", "markdown"]])
def test_command_runs_with_torch_unimportable(command, poisoned_env, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    proc = subprocess.run([sys.executable, "-m", "rfcalc", command[0], str(spec), *command[1:]],
                          capture_output=True, text=True, env=poisoned_env)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported" not in proc.stderr and proc.stdout


def test_importing_the_core_and_cli_loads_no_torch_numpy_or_matplotlib(poisoned_env):
    code = ("import sys, rfcalc, rfcalc.cli.app; rfcalc.analyze({'version': 1, 'name': 'x', 'input': "
            "{'channels': 1, 'size': 4}, 'layers': [{'op': 'gap'}]}); "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'albumentations') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=poisoned_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_check_of_a_spec_imports_only_what_it_needs(poisoned_env):
    """The pre-commit path (issue 22): `check` of a spec file imports neither inspect's modules (nor the ops'
    inspect actions), nor the renderers (rich's console), nor suggest's search, the model builder, the trainer or
    the sweep, nor the `train:` section's model of a spec without one, nor op families the spec does not use."""
    code = ("import sys, runpy; sys.argv = ['rfcalc', 'check', sys.argv[1]]\n"
            "try:\n    runpy.run_module('rfcalc', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = ('rfcalc.inspection', 'rfcalc.model', 'rfcalc.sweep', 'rfcalc.suggest.search', 'rich.console',"
            " 'rfcalc.trainer.run', 'rfcalc.trainer.loop', 'rfcalc.ops.actions', 'rfcalc.spec.train',"
            " 'rfcalc.ops.pool', 'rfcalc.ops.se', 'rfcalc.ops.lppool', 'rfcalc.ops.ultimus', 'rfcalc.ops.flatten')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "quickstart.yaml")],
                          capture_output=True, text=True, env=poisoned_env)
    assert proc.stdout.startswith(f"{ROOT / 'examples' / 'quickstart.yaml'} (quickstart): ok"), proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
