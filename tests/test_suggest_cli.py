"""`rfcalc suggest` on the command line: golden outputs, exit codes, the JSON contract, bad input as for `check`,
the same rule sources as `check`, and no torch.

Regenerate the golden files after an intended change with ``RFCALC_UPDATE_GOLDEN=1 python -m pytest
tests/test_suggest_cli.py tests/test_suggest_yaml.py``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from rfcalc.analysis.checker import check_spec
from rfcalc.analysis.load import load_spec
from rfcalc.cli.app import app

GOLDEN = Path(__file__).resolve().parent / "golden" / "suggest"
UPDATE = os.environ.get("RFCALC_UPDATE_GOLDEN") == "1"
TWO_BRANCH = ROOT / "arch_specs" / "two_branch_dilated.yaml"
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with RFCALC_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path.relative_to(ROOT)}"


def _run(runner, *args: str, columns: int = 80):
    return runner.invoke(app, ["suggest", *args], env={"COLUMNS": str(columns)})


# -- output: golden files -------------------------------------------------------------------------------------

def test_rich_output_golden_and_fits_80_columns(runner) -> None:
    result = _run(runner, "arch_specs/two_branch_dilated.yaml")
    assert result.exit_code == 0, result.output
    golden("two_branch_dilated.rich.txt", result.stdout)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "…" not in result.stdout
    assert "layers[3] (conv5_red2):" in result.stdout and "dilation 1 → 2" in result.stdout


def test_markdown_output_golden(runner) -> None:
    result = _run(runner, "arch_specs/two_branch_dilated.yaml", "--format", "markdown", "--top", "3")
    assert result.exit_code == 0
    golden("two_branch_dilated.md", result.stdout)


def test_json_output_golden(runner) -> None:
    result = _run(runner, "arch_specs/two_branch_dilated.yaml", "--format", "json", "--top", "3")
    assert result.exit_code == 0
    golden("two_branch_dilated.json", result.stdout)


@pytest.mark.slow
def test_multi_edit_rich_output_golden(runner) -> None:
    result = _run(runner, "arch_specs/c1c2c3c4_cifar10.yaml", "--rf", ">120", "--params", "<170k", "--top", "2")
    assert result.exit_code == 0, result.output
    golden("c1c2c3c4_rf_and_params.rich.txt", result.stdout)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_nothing_found_says_what_was_tried_and_exits_1(runner) -> None:
    result = _run(runner, "examples/quickstart.yaml", "--rf", ">80", "--params", "<50k", "--forbid",
                  "strided_conv", "--budget", "300")
    assert result.exit_code == 1, result.output
    golden("quickstart_not_found.txt", result.stdout)
    assert "no fix of up to 3 edits found: the search budget ran out" in result.stdout
    assert "300 of 300 evaluations" in result.stdout


def test_already_passing_spec_exits_0_and_says_so(runner) -> None:
    result = _run(runner, "examples/quickstart.yaml")
    assert result.exit_code == 0
    assert result.stdout.startswith("examples/quickstart.yaml (quickstart): ok, every rule already passes")


# -- the JSON contract ----------------------------------------------------------------------------------------

def _json_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """A minimal RFC 6902 applier (add, remove, replace) on JSON pointers, written here for the test."""
    import copy

    document = copy.deepcopy(document)
    for operation in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["pointer"].split("/")[1:]]
        parent = document
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last: Any = int(parts[-1]) if isinstance(parent, list) else parts[-1]
        if operation["op"] == "remove":
            del parent[last]
        elif operation["op"] == "add" and isinstance(parent, list):
            parent.insert(last, operation["value"])
        else:
            parent[last] = operation["value"]
    return document


@pytest.mark.slow
def test_json_edits_are_json_patch_operations_that_fix_the_spec(runner) -> None:
    result = _run(runner, "arch_specs/c1c2c3c4_cifar10.yaml", "--rf", ">120", "--params", "<170k", "-f", "json")
    data = json.loads(result.stdout)
    assert (data["schema_version"], data["status"], data["exit_code"]) == (1, "fixed", 0)
    assert [r["rule"] for r in data["before"]["rules"] if not r["ok"]] == ["RF > 120", "params < 170,000"]
    original = yaml.safe_load((ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml").read_text(encoding="utf-8"))
    for suggestion in data["suggestions"]:
        operations = [c for edit in suggestion["edits"] for c in edit["changes"]]
        fixed = load_spec(_json_patch(original, operations))
        check = check_spec(fixed, overrides={"rf": {"gt": 120}, "params": {"lt": 170_000}}, use_pyproject=False)
        assert check.ok and suggestion["ok"]
        assert suggestion["params"] == fixed.report.params
        assert suggestion["delta_params"] == fixed.report.params - data["before"]["params"]
        assert suggestion["rf"] == list(fixed.report.rf)
        assert all(r["ok"] for r in suggestion["rules"])
        for edit in suggestion["edits"]:
            assert set(edit) == {"kind", "site", "layer", "changes"}
            for change in edit["changes"]:
                assert change["path"].startswith(edit["site"])
    assert data["search"]["evaluations"] <= data["search"]["budget"]


# -- -o ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_output_file_passes_check_and_keeps_comments(runner, tmp_path) -> None:
    out = tmp_path / "fixed.yaml"
    result = _run(runner, str(QUICKSTART), "--rf", ">60", "--params", "<55k", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (suggestion #1 applied)" in result.stderr
    text = out.read_text(encoding="utf-8")
    original = QUICKSTART.read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if "#" in line and line.lstrip().startswith("#")] == \
        [line for line in original.splitlines() if "#" in line and line.lstrip().startswith("#")]
    check = runner.invoke(app, ["check", str(out), "--rf", ">60", "--params", "<55k"])
    assert check.exit_code == 0, check.stdout


def test_output_in_place_rewrites_the_spec(runner, tmp_path) -> None:
    spec = tmp_path / "spec.yaml"
    shutil.copy(TWO_BRANCH, spec)
    result = _run(runner, str(spec), "-o", str(spec))
    assert result.exit_code == 0
    assert runner.invoke(app, ["check", str(spec)]).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]     # no temporary file left behind


def test_the_layout_warning_of_output_fits_the_terminal(runner, tmp_path, monkeypatch) -> None:
    from rfcalc.suggest import yaml_patch

    real = yaml_patch.write_fix
    monkeypatch.setattr(yaml_patch, "write_fix", lambda *args: (real(*args)[0], False))  # a layout it cannot keep
    spec = tmp_path / "a-spec-with-a-rather-long-name-for-the-warning.yaml"
    shutil.copy(TWO_BRANCH, spec)
    result = _run(runner, str(spec), "-o", str(spec), columns=60)
    assert result.exit_code == 0
    warning = result.stderr.split("warning:", 1)[1].splitlines()
    assert len(warning) > 1 and "the content is exact" in warning[-1]            # broken between words ...
    assert all(len(line) <= 60 or " " not in line.strip() for line in warning), warning  # ... a long path alone


def test_output_not_written_when_nothing_to_fix(runner, tmp_path) -> None:
    out = tmp_path / "fixed.yaml"
    result = _run(runner, str(QUICKSTART), "-o", str(out))
    assert result.exit_code == 0 and not out.exists()
    assert result.stderr == f"{out}: not written (the spec already passes)\n"


# -- bad input: one line, exit 2 ---------------------------------------------------------------------------------

def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_invalid_spec_is_reported_exactly_as_check_reports_it(runner, write_spec) -> None:
    path = write_spec("version: 1\nname: bad\ninput: {channels: 3, size: 16}\n"
                      "layers:\n  - {op: conv, out: 8}\n  - {op: conv, out: 8, dilation: 0}\n")
    line = _one_line_error(_run(runner, str(path)))
    assert LINE.match(line) and line.endswith("layers[1].dilation: must be >= 1, got 0")
    check = runner.invoke(app, ["check", str(path)])
    assert check.stderr.strip() == line


def test_json_format_reports_bad_input_as_json(runner, write_spec) -> None:
    path = write_spec("version: 1\nname: bad\ninput: {channels: 3, size: 16}\nlayers:\n  - {op: cnov}\n")
    result = _run(runner, str(path), "--format", "json")
    assert result.exit_code == 2 and result.stderr == ""
    data = json.loads(result.stdout)
    assert (data["status"], data["exit_code"]) == ("error", 2)
    assert [(e["line"], e["column"], e["path"]) for e in data["errors"]] == [(5, 10, "layers[0].op")]


@pytest.mark.parametrize("args,message", [
    (["--rf", "abc"], "--rf: expected a comparison like '>44', '>=45', '<200k' or '==51', got 'abc'"),
    (["--top", "0"], "--top: must be >= 1, got 0"),
    (["--budget", "0"], "--budget: must be >= 1, got 0"),
    (["--max-edits", "0"], "--max-edits: must be >= 1, got 0"),
])
def test_bad_flags(runner, args, message) -> None:
    assert _one_line_error(_run(runner, str(QUICKSTART), *args)) == message


def test_unknown_feature_in_a_flag_is_reported_as_check_reports_it(runner) -> None:
    line = _one_line_error(_run(runner, str(QUICKSTART), "--require", "dilatd_conv"))
    assert line.startswith("--require: must be one of 'dilated_conv'") and "(did you mean 'dilated_conv'?)" in line
    assert runner.invoke(app, ["check", str(QUICKSTART), "--require", "dilatd_conv"]).stderr.strip() == line


def test_missing_file_and_code_target(runner, tmp_path) -> None:
    """(Bad -o paths: tests/test_output_paths.py, with every command that writes a file.)"""
    assert _one_line_error(_run(runner, str(tmp_path / "nope.yaml"))) == f"{tmp_path / 'nope.yaml'}:1:1: file not found"
    line = _one_line_error(_run(runner, "model.py:Net"))
    assert line.startswith("model.py:Net: suggest edits YAML specs")


# -- the same rule sources as check; torch-free ---------------------------------------------------------------

def test_pyproject_constraints_and_flags_apply_as_for_check(runner, tmp_path, monkeypatch) -> None:
    shutil.copy(QUICKSTART, tmp_path / "spec.yaml")
    (tmp_path / "pyproject.toml").write_text('[tool.rfcalc.constraints]\nrf = { gt = 60 }\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    data = json.loads(_run(runner, "spec.yaml", "-f", "json").stdout)
    assert data["sources"]["rf"] == str((tmp_path / "pyproject.toml").resolve())
    assert [r["rule"] for r in data["before"]["rules"] if not r["ok"]] == ["RF > 60"]
    data = json.loads(_run(runner, "spec.yaml", "-f", "json", "--rf", ">50").stdout)
    assert data["sources"]["rf"] == "command line" and data["status"] == "passes"


def test_suggest_runs_with_torch_unimportable(tmp_path) -> None:
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch imported by suggest')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}
    out = tmp_path / "fixed.yaml"
    proc = subprocess.run([sys.executable, "-m", "rfcalc", "suggest", str(TWO_BRANCH), "-o", str(out)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported" not in proc.stderr and out.is_file()


# -- docs/suggest.md shows real output ---------------------------------------------------------------------------

def test_docs_suggest_output_is_what_rfcalc_prints(runner) -> None:
    shown = (ROOT / "docs" / "suggest.md").read_text(encoding="utf-8")
    result = _run(runner, "arch_specs/two_branch_dilated.yaml", "--top", "3")
    assert result.exit_code == 0
    assert f"```\n$ rfcalc suggest arch_specs/two_branch_dilated.yaml --top 3\n{result.stdout}```" in shown


@pytest.mark.slow
def test_an_inserted_layer_wraps_inside_its_cell_at_80_columns(runner) -> None:
    result = _run(runner, str(QUICKSTART), "--rf", ">60", "--params", "<50k")
    lines = result.stdout.splitlines()
    start = lines.index("    insert at layers[2]:")   # after the first conv, never on the raw input
    assert [line.rstrip() for line in lines[start + 1:start + 4]] == ["      {op: conv, name: dilated_dw,",
                                                                     "       groups: depthwise, k: 3,",
                                                                     "       padding: 4, dilation: 4}"]
    assert all(len(line) <= 80 for line in lines)
