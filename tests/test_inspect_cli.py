"""``rfcalc inspect FILE.py:NAME`` and ``rfcalc check FILE.py:NAME`` through the CLI, and ``load_target``."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rfcalc
from rfcalc.cli.app import app
from rfcalc.errors import RfcalcError
from rfcalc.inspection.api import inspect_module
from rfcalc.inspection.target import load_target, parse_input_shape

MODEL_PY = '''
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """RF 3 -> 5 -> 7 (stride 2) -> gap over 16x16: 37."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c4 = nn.Conv2d(8, 16, 1, stride=2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = self.c3(x) + self.c4(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_net():
    return Net()


net = Net()


class Up(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up(self.c(x))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.c(x) if x.mean() > 0 else x


class NeedsWidth(nn.Module):
    def __init__(self, width, depth=2):
        super().__init__()


def broken():
    raise ValueError("no weights here")


def not_a_module():
    return 42


WIDTH = 3
'''


@pytest.fixture
def model_py(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL_PY, encoding="utf-8")
    return path


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_inspect_json_is_the_report(cli: CliRunner, model_py: Path) -> None:
    result = cli.invoke(app, ["inspect", f"{model_py}:Net", "--input", "3x32x32", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = inspect_module(load_target(f"{model_py}:Net"), (3, 32, 32)).to_dict()
    for row in expected["layers"] + data["layers"]:
        row.pop("path")
    assert data == expected
    assert data["name"] == "Net"
    assert data["totals"]["rf"] == [37, 37] and data["totals"]["jump"] == [2, 2]
    assert [row["op"] for row in data["layers"]] == ["conv", "relu", "conv", "relu", "conv", "conv", "add", "gap",
                                                    "flatten", "linear"]


@pytest.mark.parametrize("name", ["Net", "make_net", "net"])
def test_class_function_or_instance(cli: CliRunner, model_py: Path, name: str) -> None:
    result = cli.invoke(app, ["inspect", f"{model_py}:{name}", "--input", "3x32x32", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("name,op,inputs,in_shape,out_shape")
    assert len(result.stdout.splitlines()) == 11


def test_rich_and_markdown(cli: CliRunner, model_py: Path) -> None:
    rich = cli.invoke(app, ["inspect", f"{model_py}:Net", "--input", "3x32x32"])
    assert rich.exit_code == 0, rich.output
    assert "Net: params" in rich.stdout and "c3" in rich.stdout
    markdown = cli.invoke(app, ["inspect", f"{model_py}:Net", "--input", "3x32x32", "--format", "markdown"])
    assert markdown.exit_code == 0 and markdown.stdout.startswith("| Operation |")


def test_unknown_node_prints_partial_table_and_exits_2(cli: CliRunner, model_py: Path) -> None:
    result = cli.invoke(app, ["inspect", f"{model_py}:Up", "--input", "3x16x16", "--format", "json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [row["name"] for row in data["layers"]] == ["c"]
    error = data["diagnostics"][-1]
    assert error["severity"] == "error" and "'up' (Upsample) resamples 16x16 to 32x32 at jump 1x1" in \
        error["message"]
    line = MODEL_PY.splitlines().index("        return self.up(self.c(x))") + 1
    assert error["path"].endswith(f"model.py:{line}")
    rich = cli.invoke(app, ["inspect", f"{model_py}:Up", "--input", "3x16x16"])
    assert rich.exit_code == 2 and "error: " in rich.stdout and "'up' (Upsample)" in rich.stdout


@pytest.mark.parametrize("target, args, message", [
    ("{py}:NeedsWidth", [], "{py}:NeedsWidth: NeedsWidth() needs arguments (width); point at a function"),
    ("{py}:Nope", [], "{py}: no 'Nope'; it defines Branchy, NeedsWidth, Net, Up, broken, make_net, net, "
                      "not_a_module"),
    ("{py}:broken", [], "{py}:broken: broken() failed: ValueError: no weights here"),
    ("{py}:not_a_module", [], "{py}:not_a_module: not_a_module() returned an int, not an nn.Module"),
    ("{py}:WIDTH", [], "{py}:WIDTH: 'WIDTH' is an int, not an nn.Module subclass or a function returning a module"),
    ("missing.py:Net", [], "missing.py: no such file"),
    ("{py}", [], "{py}: expected FILE.py:NAME, e.g. model.py:Net"),
    ("{py}:Net", ["--input", "3x32"], "--input must be CxHxW (channels x height x width), e.g. 3x32x32, got '3x32'"),
    ("{py}:Net", ["--input", "3x0x32"], "--input sizes must be >= 1, got '3x0x32'"),
])
def test_one_line_errors(cli: CliRunner, model_py: Path, target: str, args: list[str], message: str) -> None:
    target = target.format(py=model_py)
    argv = ["inspect", target, *(args or ["--input", "3x32x32"])]
    result = cli.invoke(app, argv)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(message.format(py=model_py))


def test_data_dependent_control_flow_is_located(cli: CliRunner, model_py: Path) -> None:
    line = MODEL_PY.splitlines().index("        return self.c(x) if x.mean() > 0 else x") + 1
    result = cli.invoke(app, ["inspect", f"{model_py}:Branchy", "--input", "3x32x32"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"{model_py}:{line}: cannot trace Branchy with torch.fx: `return self.c(x) if x.mean() > 0 else x` branches "
        f"on a value computed from the input's values (tests of its shape are evaluated with the input size "
        f"given); rfcalc inspects "
        f"forwards that run the same operations for every input: branch on module attributes or constants instead, "
        f"or inspect the branch's modules one by one")


def test_import_error_in_the_file(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nimport no_such_package_here\n", encoding="utf-8")
    result = cli.invoke(app, ["inspect", f"{bad}:Net", "--input", "3x32x32"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"{bad}: importing it failed: ModuleNotFoundError: No module named "
                                     f"'no_such_package_here'")


def test_sibling_imports_work(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "blocks_for_rfcalc_test.py").write_text(
        "from torch import nn\n\ndef block(c):\n    return nn.Conv2d(c, c, 3, padding=2, dilation=2)\n",
        encoding="utf-8")
    (tmp_path / "top.py").write_text(
        "from torch import nn\nfrom blocks_for_rfcalc_test import block\n\n"
        "def model():\n    return nn.Sequential(block(3), nn.ReLU(), block(3))\n", encoding="utf-8")
    result = cli.invoke(app, ["inspect", f"{tmp_path / 'top.py'}:model", "--input", "3x16x16", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["rf"] == [9, 9]


# -- check on code -------------------------------------------------------------------------------------------------
def test_check_code_like_a_spec(cli: CliRunner, model_py: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                ) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml with constraints here
    target = f"{model_py}:Net"
    ok = cli.invoke(app, ["check", target, "--input", "3x32x32", "--rf", ">20", "--params", "<10k",
                          "--require", "residual,gap", "--forbid", "maxpool", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["ok"] and [r["ok"] for r in data["results"][0]["rules"]] == [True] * 5
    bad = cli.invoke(app, ["check", target, "--input", "3x32x32", "--rf", ">44"])
    assert bad.exit_code == 1, bad.output
    assert "37" in bad.stdout


def test_check_code_and_spec_together(cli: CliRunner, model_py: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: s\ninput: {channels: 3, size: 32}\nlayers:\n"
                    "  - {op: conv, out: 8, k: 7}\n  - {op: gap}\n", encoding="utf-8")
    result = cli.invoke(app, ["check", str(spec), f"{model_py}:Net", "--input", "3x32x32", "--rf", ">20",
                              "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)["results"]] == ["s", "Net"]


def test_check_code_that_cannot_be_followed_exits_2(cli: CliRunner, model_py: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["check", f"{model_py}:Up", "--input", "3x16x16", "--rf", ">2"])
    assert result.exit_code == 2
    assert "'up' (Upsample) resamples 16x16 to 32x32" in result.stderr
    no_input = cli.invoke(app, ["check", f"{model_py}:Net", "--rf", ">2"])
    assert no_input.exit_code == 2 and "needs --input" in no_input.stderr


# -- --to-spec ------------------------------------------------------------------------------------------------------
def test_to_spec_round_trip(cli: CliRunner, model_py: Path, tmp_path: Path) -> None:
    out = tmp_path / "net.yaml"
    result = cli.invoke(app, ["inspect", f"{model_py}:Net", "--input", "3x32x32", "--format", "json",
                              "--to-spec", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out}"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# generated by rfcalc inspect --to-spec")
    spec = rfcalc.load_spec(out)
    inspected = json.loads(result.stdout)
    assert spec.report.to_dict()["totals"] == inspected["totals"]
    assert "op: residual" in text
    table = cli.invoke(app, ["table", str(out), "--format", "json"])
    assert json.loads(table.stdout)["totals"] == inspected["totals"]


def test_to_spec_refused_is_one_line(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "sig.py"
    path.write_text("from torch import nn\n\ndef model():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())\n",
                    encoding="utf-8")
    out = tmp_path / "sig.yaml"
    result = cli.invoke(app, ["inspect", f"{path}:model", "--input", "3x8x8", "--format", "csv", "--to-spec",
                              str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "cannot write a spec: '1' (tanh has no spec op)"
    assert not out.exists()


def test_to_spec_notes_a_dropped_setting(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "avg.py"
    path.write_text("from torch import nn\n\ndef model():\n    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), "
                    "nn.AvgPool2d(3, 1, 1, count_include_pad=False))\n", encoding="utf-8")
    out = tmp_path / "avg.yaml"
    result = cli.invoke(app, ["inspect", f"{path}:model", "--input", "3x8x8", "--format", "csv", "--to-spec",
                              str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "note: module '1' (avgpool): count_include_pad=False is not in the spec (its avgpool has the default; "
        "the RF is the same)", f"wrote {out}"]
    assert "# dropped: module '1' (avgpool): count_include_pad=False" in out.read_text(encoding="utf-8")


def test_a_bug_in_a_converter_is_an_internal_error(cli: CliRunner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``lookup.classify`` lets an error it does not expect through, and the walk does not call it the user's."""
    from torch import nn

    from rfcalc.inspection import lookup

    def broken(call: object) -> None:
        raise ZeroDivisionError("the planted bug")

    monkeypatch.setitem(lookup.MODULES, nn.AvgPool2d, broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("RFCALC_DEBUG", raising=False)
    path = tmp_path / "avg.py"
    path.write_text("from torch import nn\n\ndef model():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), "
                    "nn.AvgPool2d(2))\n", encoding="utf-8")
    result = cli.invoke(app, ["inspect", f"{path}:model", "--input", "3x8x8"])
    assert result.exit_code == 3, result.output
    assert "internal error: ZeroDivisionError: the planted bug" in result.stderr


# -- helpers --------------------------------------------------------------------------------------------------------
def test_parse_input_shape() -> None:
    assert parse_input_shape("3x32x32") == (3, 32, 32)
    assert parse_input_shape("1X28x28") == (1, 28, 28)
    assert parse_input_shape("3,224,224") == (3, 224, 224)
    for bad in ("", "32x32", "3x32x32x1", "axbxc", "3 x 32"):
        with pytest.raises(RfcalcError, match="must be CxHxW"):
            parse_input_shape(bad)


def test_load_target_returns_modules(model_py: Path) -> None:
    from torch import nn

    for name in ("Net", "make_net", "net"):
        assert isinstance(load_target(f"{model_py}:{name}"), nn.Module)


@pytest.mark.slow
def test_importing_cli_inspect_does_not_import_torch() -> None:
    code = ("import sys, rfcalc.cli.app, rfcalc.cli.inspect_command, rfcalc.inspection.to_spec, "
            "rfcalc.inspection.target; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_register_on_a_fresh_app(model_py: Path) -> None:
    import typer

    from rfcalc.cli.inspect_command import register

    fresh = typer.Typer()
    register(fresh)

    @fresh.command()
    def other() -> None:  # a second command so that typer keeps the command name
        pass

    result = CliRunner().invoke(fresh, ["inspect", f"{model_py}:Net", "--input", "3x8x8", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input"] == [3, 8, 8]


# -- issue 18 item 8: inspect lays out a network as table does ------------------------------------------------------
@pytest.mark.slow
def test_inspect_of_an_exported_spec_prints_the_table_of_the_spec(cli: CliRunner, tmp_path: Path) -> None:
    """Export a bundled spec, inspect the file: the same markdown table line for line (a conv's own bn and
    relu folded into its line, rows named after the spec's layers, gap called gap); --to-spec names the layers
    as the spec did (``c1_1``, ``c3_1_pw``)."""
    spec = Path(__file__).resolve().parents[1] / "arch_specs" / "c1c2c3c4_cifar10.yaml"
    model = tmp_path / "model.py"
    assert cli.invoke(app, ["export", str(spec), "-o", str(model)]).exit_code == 0
    table = cli.invoke(app, ["table", str(spec), "--format", "markdown"]).stdout
    target = f"{model}:C1c2c3c4Cifar10"
    inspected = cli.invoke(app, ["inspect", target, "--input", "3x32x32", "--format", "markdown"])
    assert inspected.exit_code == 0, inspected.output
    assert inspected.stdout.replace("C1c2c3c4Cifar10", "c1c2c3c4-cifar10") == table
    assert "| c1_1 (conv+bn+relu) |" in table and "| gap (gap) |" in table
    out = tmp_path / "net.yaml"
    assert cli.invoke(app, ["inspect", target, "--input", "3x32x32", "--to-spec", str(out)]).exit_code == 0
    names = [layer["name"] for layer in rfcalc.load_spec(out).data["layers"]]
    assert names[:2] == ["c1_1", "c1_2"] and names[6:8] == ["c3_1_dw", "c3_1_pw"] and names[-2:] == ["gap", "fc"]
    # JSON keeps one row per op with the same numbers, the folded ones marked as the spec marks them
    data = json.loads(cli.invoke(app, ["inspect", target, "--input", "3x32x32", "--format", "json"]).stdout)
    expected = json.loads(cli.invoke(app, ["table", str(spec), "--format", "json"]).stdout)
    for row in data["layers"] + expected["layers"]:
        row.pop("path")
    assert data["layers"] == expected["layers"] and data["totals"] == expected["totals"]


@pytest.mark.parametrize("name", ["two_branch_dilated", "custom_resnet", "skip_bn"])
def test_an_exported_spec_with_merges_names_them_as_the_spec(cli: CliRunner, tmp_path: Path, name: str) -> None:
    """Issue 25 item 12: merge rows are named as in the spec (``branches``, ``res1``), not ``cat``, ``add_1``."""
    spec = Path(__file__).resolve().parents[1] / "arch_specs" / f"{name}.yaml"
    model = tmp_path / "model.py"
    assert cli.invoke(app, ["export", str(spec), "-o", str(model)]).exit_code == 0
    loaded = rfcalc.load_spec(spec)
    table = cli.invoke(app, ["table", str(spec), "--format", "markdown"]).stdout.splitlines()
    cls = next(line.split()[1].split("(")[0] for line in model.read_text(encoding="utf-8").splitlines()[::-1]
               if line.startswith("class "))
    inspected = cli.invoke(app, ["inspect", f"{model}:{cls}", "--input", "3x32x32", "--format", "markdown"])
    assert inspected.exit_code == 0, inspected.output
    assert inspected.stdout.splitlines()[:-1] == table[:-1]  # all but the summary line (the model's name)
    merges = [r.name for r in loaded.report.rows if r.op in ("add", "concat")]
    assert merges and all(f"| {m} (" in inspected.stdout for m in merges)
