"""The CLI through typer's CliRunner: formats, exit codes, constraint sources."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import ROOT

import rfcalc
from rfcalc.cli.app import app

SPEC = """
version: 1
name: small
input: {channels: 3, size: 32}
defaults:
  conv: {bias: false, norm: bn, act: relu}
layers:
  - {op: conv, name: c1, out: 16, padding: 1}
  - {op: conv, name: c2, out: 32, padding: 1, stride: 2}
  - {op: conv, name: c3, out: 32, padding: 2, dilation: 2}
  - {op: conv, name: dw, groups: depthwise, padding: 1, norm: none, act: none}
  - {op: gap}
  - {op: linear, out: 10}
constraints:
  rf: {gt: 20}
  params: {lt: 50k}
  require: [dilated_conv, depthwise_conv, gap]
  forbid: [maxpool]
"""


def test_table_json_is_the_reports_dict(runner, write_spec):
    path = write_spec(SPEC)
    result = runner.invoke(app, ["table", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(rfcalc.analyze(path).to_dict()))
    assert data["totals"]["params"] == 432 + 32 + 4608 + 64 + 9216 + 64 + 288 + 330
    assert data["layers"][0]["name"] == "c1" and data["layers"][-1]["name"] == "linear6"


def test_table_rf_totals_worked_by_hand(runner, write_spec):
    # c1: rf 3; c2 (s2): rf 5, jump 2, 16x16; c3 (k3 d2): rf 5 + 4*2 = 13; dw (k3): 13 + 2*2 = 17;
    # gap over 16: 17 + 15*2 = 47; start: c2 (1-1)=0, c3 (2-2)*2=0, dw 0, gap 0 + 7.5*2 = 15
    result = runner.invoke(app, ["table", str(write_spec(SPEC)), "--format", "json"])
    totals = json.loads(result.stdout)["totals"]
    assert totals["rf"] == [47, 47] and totals["jump"] == [2, 2] and totals["start"] == [15, 15]
    assert totals["output_shape"] == [10]


def test_table_markdown_folds_norm_and_act_into_the_conv_line(runner, write_spec):
    result = runner.invoke(app, ["table", str(write_spec(SPEC)), "--format", "markdown"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == ("| Operation | nin | in ch | out ch | padding | kernel | stride | dilation | nout | jin | jout "
                        "| rin | rout | params |")
    assert lines[2] == "| c1 (conv+bn+relu) | 32 | 3 | 16 | 1 | 3 | 1 | 1 | 32 | 1 | 1 | 1 | 3 | 464 |"
    assert lines[3] == "| c2 (conv+bn+relu) | 32 | 16 | 32 | 1 | 3 | 2 | 1 | 16 | 1 | 2 | 3 | 5 | 4,672 |"
    assert lines[5] == "| dw (conv) | 16 | 32 | 32 | 1 | 3 | 1 | 1 | 16 | 2 | 2 | 13 | 17 | 288 |"
    assert "**small: params 15,034, MACs" in result.stdout


def test_table_csv_has_one_row_per_primitive_op(runner, write_spec):
    result = runner.invoke(app, ["table", str(write_spec(SPEC)), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows][:4] == ["c1", "c1.bn", "c1.relu", "c2"]
    assert rows[0]["out_shape"] == "16x32x32" and rows[0]["params"] == "432" and rows[0]["inputs"] == "input"


def test_table_rich_shows_every_line(runner, write_spec):
    result = runner.invoke(app, ["table", str(write_spec(SPEC))])
    assert result.exit_code == 0
    assert "small: params 15,034" in result.stdout
    for name in ("c1", "c2", "c3", "dw", "gap5", "linear6"):
        assert f" {name} " in result.stdout


def test_check_passes_and_reports_every_rule(runner, write_spec):
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (res,) = data["results"]
    assert data["ok"] is True and res["ok"] is True
    assert [r["rule"] for r in res["rules"]] == ["RF > 20", "params < 50,000", "require dilated_conv",
                                                 "require depthwise_conv", "require gap", "forbid maxpool"]
    assert res["rules"][0]["value"] == [47, 47] and res["rules"][1]["value"] == 15034
    assert res["rules"][2]["value"] == ["c3"]


def test_check_failing_rule_exits_1_and_says_by_how_much(runner, write_spec):
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--rf", ">50", "--params", "<10k"])
    assert result.exit_code == 1
    assert "RF 47 > 50 ✗ (add at least 4)" in result.stdout
    assert "params 15,034 < 10,000 ✗ (remove at least 5,035)" in result.stdout
    assert "FAIL" in result.stdout


def test_check_require_and_forbid_flags(runner, write_spec):
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--require", "residual,concat",
                                 "--forbid", "dropout,bn", "--format", "json"])
    assert result.exit_code == 1
    rules = {r["rule"]: r for r in json.loads(result.stdout)["results"][0]["rules"]}
    assert rules["require residual"]["ok"] is False and rules["require concat"]["ok"] is False
    assert rules["forbid dropout"]["ok"] is True
    assert rules["forbid bn"]["ok"] is False and rules["forbid bn"]["value"][0] == "c1.bn"
    assert "require dilated_conv" not in rules  # the flag's list replaced the spec's


def test_check_many_files_one_failing(runner, write_spec):
    good = write_spec(SPEC, "good.yaml")
    bad = write_spec(SPEC.replace("gt: 20", "gt: 100"), "bad.yaml")
    result = runner.invoke(app, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"{good} (small): ok" in result.stdout and f"{bad} (small): FAIL" in result.stdout


def test_check_constraint_sources_spec_then_pyproject_then_flags(runner, write_spec, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rfcalc.constraints]\nrf = {gt = 30}\nparams = {lt = "10k"}\n')
    path = write_spec(SPEC)
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    res = json.loads(result.stdout)["results"][0]
    assert result.exit_code == 1
    rules = {r["kind"]: r for r in res["rules"]}
    assert rules["rf"]["limit"] == 30 and rules["params"]["limit"] == 10000 and rules["params"]["ok"] is False
    assert res["sources"]["rf"].endswith("pyproject.toml") and res["sources"]["require"] == str(path)
    result = runner.invoke(app, ["check", str(path), "--params", "<=20k", "--format", "json"])
    res = json.loads(result.stdout)["results"][0]
    assert result.exit_code == 0 and res["sources"]["params"] == "command line"


def test_check_without_any_constraint_passes_and_says_so(runner, write_spec):
    path = write_spec(SPEC.split("constraints:")[0])
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 0 and "no constraints" in result.stdout


@pytest.mark.parametrize("bound, message", [
    (">>44", "--rf: expected a comparison like '>44', '>=45', '<200k' or '==51', got '>>44' (one comparison sign)"),
    ("=>44", "--rf: expected a comparison like '>44', '>=45', '<200k' or '==51', got '=>44' (did you mean '>='?)"),
    ("> -3", "--rf: the bound must be >= 0, got '> -3'"),
])
def test_check_bad_bounds_say_what_is_wrong(runner, write_spec, bound, message):
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--rf", bound])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


def test_check_names_a_python_target_once_and_gives_it_no_line(runner):
    result = runner.invoke(app, ["check", "nothere.py:Net", "--input", "3x32x32"])
    assert (result.exit_code, result.stderr) == (2, "nothere.py:Net: no such file\n")
    result = runner.invoke(app, ["check", "nothere.py:Net", "--input", "3x32x32", "--format", "json"])
    error = json.loads(result.stdout)["errors"][0]
    assert (error["file"], error["line"], error["column"], error["message"]) == ("nothere.py:Net", None, None,
                                                                                 "no such file")


def test_check_bad_flag_is_one_line_exit_2(runner, write_spec):
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--rf", "about 44"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("--rf: expected a comparison like '>44', '>=45', '<200k' or '==51', "
                                     "got 'about 44'")
    result = runner.invoke(app, ["check", str(write_spec(SPEC)), "--require", "gap,dilatedconv"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("--require: must be one of 'dilated_conv', 'depthwise_conv', 'separable_conv', "
                             "'strided_conv', 'maxpool', 'avgpool', 'gap', 'residual', 'concat', 'linear', 'bn', 'gn', "
                             "'ln', 'dropout', 'ultimus' or 'channel_shuffle', got 'dilatedconv' "
                             "(did you mean 'dilated_conv'?)\n")


def test_flag_and_spec_file_get_the_same_words(runner, write_spec, tmp_path):
    flag = runner.invoke(app, ["check", str(write_spec(SPEC)), "--forbid", "maxpoll"]).stderr
    spec = runner.invoke(app, ["check", str(write_spec(SPEC.replace("forbid: [maxpool]", "forbid: [maxpoll]")))])
    assert flag.removeprefix("--forbid: ") == spec.stderr.split("constraints.forbid[0]: ")[1]
    assert flag.endswith("got 'maxpoll' (did you mean 'maxpool'?)\n")
    (tmp_path / "pyproject.toml").write_text('[tool.rfcalc.constraints]\nrf = {gt = 30}\nforbid = ["maxpoll"]\n')
    result = runner.invoke(app, ["check", str(write_spec(SPEC))])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path / 'pyproject.toml'}:3:1: tool.rfcalc.constraints.forbid[0]: must be "
                                    "one of 'dilated_conv'")
    assert result.stderr.endswith("got 'maxpoll' (did you mean 'maxpool'?)\n")


def test_bad_constraint_in_spec_is_located(runner, write_spec):
    path = write_spec(SPEC.replace("forbid: [maxpool]", "forbid: [maxpoll]"))
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:17:12: constraints.forbid[0]: must be one of")


def test_version_and_module_entry(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"rfcalc {rfcalc.__version__}"
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rfcalc", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"rfcalc {rfcalc.__version__}"


def test_schema_is_json_schema_of_the_spec(runner, tmp_path):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"version", "name", "input", "layers"}
    assert schema["properties"]["layers"]["items"] == {"$ref": "#/$defs/Layer"}
    conv = schema["$defs"]["ConvLayer"]["properties"]
    assert {"out", "k", "stride", "padding", "dilation", "groups", "separable", "bias", "norm", "act"} <= set(conv)
    assert "train" in schema["properties"]
    out = tmp_path / "rfcalc.spec.schema.json"
    assert runner.invoke(app, ["schema", "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == schema


def test_schema_validates_the_contract_example(runner):
    import jsonschema
    import yaml
    from test_calculator import CONTRACT_EXAMPLE

    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    jsonschema.validate(yaml.safe_load(CONTRACT_EXAMPLE), schema)


def test_constraints_accept_the_command_lines_comparison_strings(runner, write_spec):
    spec = SPEC.replace("rf: {gt: 20}", "rf: '>=47'").replace("params: {lt: 50k}", "params: ['<50k', '>=15034']")
    spec = spec.replace("require: [dilated_conv, depthwise_conv, gap]", "require: 'dilated_conv, gap'")
    result = runner.invoke(app, ["check", str(write_spec(spec)), "--format", "json"])
    rules = json.loads(result.stdout)["results"][0]["rules"]
    assert result.exit_code == 0, result.output
    assert [r["rule"] for r in rules] == ["RF >= 47", "params >= 15,034", "params < 50,000", "require dilated_conv",
                                          "require gap", "forbid maxpool"]
    bad = runner.invoke(app, ["check", str(write_spec(SPEC.replace("rf: {gt: 20}", "rf: 'about 20'")))])
    assert bad.exit_code == 2
    assert "constraints.rf: expected a comparison like '>44'" in bad.stderr


def test_numbers_are_written_one_way_in_check_and_every_table(runner, write_spec):
    # conv k3 s2 on 2048 -> 1023 units, jump 2; gap over them: 3 + (1023 - 1) * 2 = 2047
    path = write_spec("""
        version: 1
        name: big
        input: {channels: 1, size: 2048}
        layers:
          - {op: conv, name: c1, out: 2, stride: 2}
          - {op: gap, name: gap}
    """)
    check = runner.invoke(app, ["check", str(path), "--rf", ">3000"])
    assert check.exit_code == 1 and "  RF 2,047 > 3,000 ✗ (add at least 954)\n" in check.stdout
    rich = runner.invoke(app, ["table", str(path)]).stdout
    assert rich.startswith("big: params 20, MACs 18,837,522, RF 2,047, jump 2, output 2\n")
    assert "  2  2,047  1,023  " in rich.splitlines()[-1]  # jump, RF, start
    markdown = runner.invoke(app, ["table", str(path), "--format", "markdown"]).stdout
    assert "| gap (gap) | 1,023 | 2 | 2 | 0 | 1,023 | 1 | 1 | 1 | 2 | 2 | 3 | 2,047 | 0 |" in markdown
    assert "**big: params 20, MACs 18,837,522, RF 2,047, jump 2, output 2**" in markdown
    csv_rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["table", str(path), "--format", "csv"]).stdout)))
    assert csv_rows[-1]["rf_out"] == "2047x2047"  # machine formats keep plain numbers


def test_check_says_what_it_takes_to_pass(runner, write_spec):
    path = write_spec(SPEC)  # RF 47, params 15,034
    cases = {("--params", "<10k"): "params 15,034 < 10,000 ✗ (remove at least 5,035)",
             ("--params", "<=10k"): "params 15,034 <= 10,000 ✗ (remove at least 5,034)",
             ("--rf", ">50"): "RF 47 > 50 ✗ (add at least 4)",
             ("--rf", ">=50"): "RF 47 >= 50 ✗ (add at least 3)",
             ("--rf", "==45"): "RF 47 == 45 ✗ (remove 2)",
             ("--rf", "==49"): "RF 47 == 49 ✗ (add 2)",
             ("--rf", ">46.5"): "RF 47 > 46.5 ✓",
             ("--rf", ">47.5"): "RF 47 > 47.5 ✗ (add at least 1)"}
    for (flag, bound), line in cases.items():
        result = runner.invoke(app, ["check", str(path), flag, bound])
        assert f"  {line}\n" in result.stdout, (flag, bound, result.stdout)


@pytest.mark.parametrize("argv, line", [
    (["check", "examples/quickstart.yaml", "--format", "xml"],
     "rfcalc check: Invalid value for '--format' / '-f': 'xml' is not one of 'text', 'json' (see rfcalc check --help)"),
    (["table"], "rfcalc table: Missing argument 'SPEC' (see rfcalc table --help)"),
    (["tabel", "x"], "rfcalc: No such command 'tabel'. Did you mean 'table'? (see rfcalc --help)"),
    (["table", "examples/quickstart.yaml", "--colour"],
     "rfcalc table: No such option: --colour (see rfcalc table --help)"),
])
def test_a_command_line_click_cannot_parse_is_one_line(argv, line):
    """In a real process (typer's test runner would not go through the group's own error handling)."""
    import subprocess
    import sys

    rfcalc = str(Path(sys.executable).with_name("rfcalc"))  # the installed entry point
    result = subprocess.run([rfcalc, *argv], capture_output=True, text=True, cwd=ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n")


def test_table_of_python_code_points_to_the_module_form(runner):
    """`table` on a .py file (issue 25): a PyTorch module is FILE.py:NAME with --input, as for `check`; never 'file
    not found' (it exists) nor 'invalid YAML'."""
    result = runner.invoke(app, ["table", "examples/se_net.py"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("examples/se_net.py:1:1: is Python source, expected a YAML spec file; for a PyTorch "
                             "module name it as FILE.py:NAME, e.g. `rfcalc inspect examples/se_net.py:Net --input "
                             "3x32x32`\n")
    result = runner.invoke(app, ["table", "examples/se_net.py:SENet"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("examples/se_net.py:SENet: the table of a PyTorch module needs --input, e.g. "
                                    "`rfcalc table examples/se_net.py:SENet --input 3x32x32`")
    result = runner.invoke(app, ["table", "examples/quickstart.yaml", "--input", "3x32x32"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("--input: applies to a FILE.py:NAME target only")


def test_table_of_a_module_with_input_is_inspects_table(runner):
    pytest.importorskip("torch")
    for fmt in ("json", "csv"):
        table = runner.invoke(app, ["table", "examples/se_net.py:SENet", "--input", "3x32x32", "-f", fmt])
        inspect = runner.invoke(app, ["inspect", "examples/se_net.py:SENet", "--input", "3x32x32", "-f", fmt])
        assert (table.exit_code, inspect.exit_code) == (0, 0), table.output
        assert table.stdout == inspect.stdout and "excite" in table.stdout
