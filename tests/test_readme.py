"""The README stays true to the code: its example, table, check output and train: section are checked here."""
from __future__ import annotations

import yaml

import rfcalc

from conftest import ROOT
from rfcalc.cli.app import app
from rfcalc.spec.train import TrainConfig

README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def _blocks(language: str) -> list[str]:
    """The README's fenced code blocks whose info string is ``language`` ("" for plain fences)."""
    blocks, current, lang = [], None, None
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang == language:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_readme_spec_is_the_bundled_quickstart():
    spec = next(block for block in _blocks("yaml") if block.startswith("version: 1"))
    bundled = QUICKSTART.read_text(encoding="utf-8")
    assert spec == bundled[bundled.index("version: 1"):]


def test_readme_table_is_what_rfcalc_prints(runner):
    result = runner.invoke(app, ["table", str(QUICKSTART), "--format", "markdown"])
    assert result.exit_code == 0
    table, summary = result.stdout.split("\n\n")
    assert table in README and summary.strip() in README


def test_readme_inspect_example_is_what_rfcalc_prints(runner):
    shown = next(block for block in _blocks("") if block.startswith("$ rfcalc inspect examples/se_net.py"))
    command, expected = shown.split("\n", 1)
    result = runner.invoke(app, command.split()[2:])
    assert result.exit_code == 0, result.output
    assert result.stdout == expected


def test_readme_lists_every_feature():
    from typing import get_args

    from rfcalc.ops.registry import Feature

    assert [f for f in get_args(Feature) if f"`{f}`" not in README] == []


def test_the_contract_names_every_diagnostic_code():
    from typing import get_args

    from rfcalc.table.report import DiagnosticCode

    contract = (ROOT / "docs" / "SPEC_FORMAT.md").read_text(encoding="utf-8")
    missing = [code for code in get_args(DiagnosticCode) if f"`{code}`" not in contract]
    assert missing == []


def test_readme_check_output_is_what_rfcalc_prints(runner):
    result = runner.invoke(app, ["check", "examples/quickstart.yaml"])
    assert result.exit_code == 0
    shown = next(block for block in _blocks("") if block.startswith("examples/quickstart.yaml"))
    assert result.stdout == shown


def test_readme_train_section_is_the_defaults():
    block = yaml.safe_load(next(block for block in _blocks("yaml") if block.startswith("train:")))["train"]
    assert list(block) == list(TrainConfig.model_fields)  # every key, in the model's order
    assert TrainConfig.model_validate(block).model_dump() == TrainConfig().model_dump()


def test_readme_rich_table_is_what_rfcalc_prints_at_80_columns(runner, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["table", str(QUICKSTART)])
    assert result.exit_code == 0
    shown = next(block for block in _blocks("") if block.startswith("quickstart: params"))
    assert result.stdout == shown


def test_every_spec_in_the_readme_loads():
    specs = [block for block in _blocks("yaml") if block.startswith("version: 1")]
    assert len(specs) == 2
    names = [row.name for row in rfcalc.load_spec(specs[1]).report.rows]
    assert names[:6] == ["c1", "c1.bn", "c1.relu", "d1.0", "d1.1", "d1.1.bn"]  # as the block example says
    assert "d2.0" in names and "d2.1" in names


def test_readme_block_error_is_what_rfcalc_prints(write_spec, runner):
    spec = write_spec("version: 1\nname: x\ninput: {channels: 3, size: 32}\nblocks:\n  basic:\n"
                      "    - {op: residual, body: [{op: conv, out: 3, padding: 1}]}\n    - {op: relu}\n"
                      "layers:\n  - {use: basic}\n")
    result = runner.invoke(app, ["table", str(spec)])
    line = result.stderr.splitlines()[0].replace(str(spec), "spec.yaml")
    assert " ".join(line.split()) in " ".join(README.split())


def test_readme_pyproject_constraints_are_valid():
    import tomllib

    from rfcalc.spec.models import Constraints

    block = next(block for block in _blocks("toml") if "[tool.rfcalc.constraints]" in block)
    Constraints.model_validate(tomllib.loads(block)["tool"]["rfcalc"]["constraints"])
