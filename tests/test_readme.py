"""The README and the user docs under docs/ stay true to the code: their examples, tables, outputs, lists and the
train: section are checked here (CONTRIBUTING.md lists which test guards which page)."""
from __future__ import annotations

import shlex

import pytest
import yaml
from conftest import ROOT

import rfcalc
from rfcalc.cli.app import app
from rfcalc.spec.train import TrainConfig

README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def page(name: str) -> str:
    """A doc page's text, by its path from the repository root (``docs/train.md``)."""
    return (ROOT / name).read_text(encoding="utf-8")


def _blocks(language: str, text: str = README) -> list[str]:
    """The fenced code blocks of ``text`` (the README unless given) whose info string is ``language`` ("" for plain
    fences)."""
    blocks, current, lang = [], None, None
    for line in text.splitlines(keepends=True):
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


def test_markdown_table_is_what_rfcalc_prints(runner):
    result = runner.invoke(app, ["table", str(QUICKSTART), "--format", "markdown"])
    assert result.exit_code == 0
    table, summary = result.stdout.split("\n\n")
    shown = page("docs/table.md")
    assert table in shown and summary.strip() in shown


def test_inspect_example_is_what_rfcalc_prints(runner):
    shown = next(block for block in _blocks("", page("docs/export.md"))
                 if block.startswith("$ rfcalc inspect examples/se_net.py"))
    command, expected = shown.split("\n", 1)
    result = runner.invoke(app, command.split()[2:])
    assert result.exit_code == 0, result.output
    assert result.stdout == expected


def test_check_page_lists_every_feature():
    from typing import get_args

    from rfcalc.ops.registry import Feature

    shown = page("docs/check.md")
    assert [f for f in get_args(Feature) if f"`{f}`" not in shown] == []


def test_spec_page_lists_every_op():
    from rfcalc.spec.models import OPS

    brief = page("docs/spec.md").split("## The format in brief", 1)[1].split("\n## ", 1)[0]
    assert [op for op in OPS if f"`{op}`" not in brief] == []


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


def test_train_page_train_section_is_the_defaults():
    block = yaml.safe_load(next(block for block in _blocks("yaml", page("docs/train.md"))
                                if block.startswith("train:")))["train"]
    assert list(block) == list(TrainConfig.model_fields)  # every key, in the model's order
    assert TrainConfig.model_validate(block).model_dump() == TrainConfig().model_dump()


def test_readme_rich_table_is_what_rfcalc_prints_at_80_columns(runner, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["table", str(QUICKSTART)])
    assert result.exit_code == 0
    shown = next(block for block in _blocks("") if block.startswith("quickstart: params"))
    assert result.stdout == shown


def test_every_spec_in_the_readme_and_the_spec_page_loads():
    assert len([block for block in _blocks("yaml") if block.startswith("version: 1")]) == 1  # the quickstart, above
    specs = [block for block in _blocks("yaml", page("docs/spec.md")) if block.startswith("version: 1")]
    assert len(specs) == 1
    names = [row.name for row in rfcalc.load_spec(specs[0]).report.rows]
    assert names[:6] == ["c1", "c1.bn", "c1.relu", "d1.0", "d1.1", "d1.1.bn"]  # as the block example says
    assert "d2.0" in names and "d2.1" in names


def test_spec_page_block_error_is_what_rfcalc_prints(write_spec, runner):
    spec = write_spec("version: 1\nname: x\ninput: {channels: 3, size: 32}\nblocks:\n  basic:\n"
                      "    - {op: residual, body: [{op: conv, out: 3, padding: 1}]}\n    - {op: relu}\n"
                      "layers:\n  - {use: basic}\n")
    result = runner.invoke(app, ["table", str(spec)])
    line = result.stderr.splitlines()[0].replace(str(spec), "spec.yaml")
    assert " ".join(line.split()) in " ".join(page("docs/spec.md").split())


def test_check_page_pyproject_constraints_are_valid():
    import tomllib

    from rfcalc.spec.models import Constraints

    block = next(block for block in _blocks("toml", page("docs/check.md")) if "[tool.rfcalc.constraints]" in block)
    Constraints.model_validate(tomllib.loads(block)["tool"]["rfcalc"]["constraints"])


DOC_PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


def _shown_runs() -> list[tuple[str, str, str]]:
    """(page, command, output) for every plain block of a doc page that starts with ``$ rfcalc ``."""
    return [(name, *block.split("\n", 1)) for name in DOC_PAGES for block in _blocks("", page(name))
            if block.startswith("$ rfcalc ")]


def test_the_shown_outputs_are_found():
    pages = {name for name, _, _ in _shown_runs()}
    assert {"README.md", "docs/check.md", "docs/suggest.md", "docs/export.md"} <= pages


@pytest.mark.parametrize(("name", "command", "expected"), _shown_runs(), ids=lambda value: str(value)[:60])
def test_every_shown_output_is_what_rfcalc_prints(runner, name: str, command: str, expected: str):
    """A `$ rfcalc ...` block shows exactly what the command prints at 80 columns, from the repository root."""
    result = runner.invoke(app, shlex.split(command)[2:], env={"COLUMNS": "80"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.stdout == expected, f"{name}: {command}"


def test_the_readme_test_line_is_what_ci_runs():
    """The README's second set-up line is the last line of .ci/run: CI runs what a contributor is told to run."""
    lines = [block.strip() for block in _blocks("bash") if block.startswith("python3 -m venv")]
    assert len(lines) == 2 and " -e . && rfcalc table examples/quickstart.yaml" in lines[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert lines[1].endswith(ci) and lines[1] == f"python3 -m venv .venv && . .venv/bin/activate && {ci}"
