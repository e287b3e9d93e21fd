"""The README stays true to the code: its example, table, check output and train: section are checked here."""
from __future__ import annotations

import yaml

from conftest import ROOT
from rfcalc.cli.app import app
from rfcalc.trainer.config import TrainConfig

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


def test_readme_check_output_is_what_rfcalc_prints(runner):
    result = runner.invoke(app, ["check", "examples/quickstart.yaml"])
    assert result.exit_code == 0
    shown = next(block for block in _blocks("") if block.startswith("examples/quickstart.yaml"))
    assert result.stdout == shown


def test_readme_train_section_is_valid():
    block = next(block for block in _blocks("yaml") if block.startswith("train:"))
    TrainConfig.model_validate(yaml.safe_load(block)["train"])


def test_readme_pyproject_constraints_are_valid():
    import tomllib

    from rfcalc.spec.models import Constraints

    block = next(block for block in _blocks("toml") if "[tool.rfcalc.constraints]" in block)
    Constraints.model_validate(tomllib.loads(block)["tool"]["rfcalc"]["constraints"])
