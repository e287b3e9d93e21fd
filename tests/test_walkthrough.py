"""examples/from_failing_to_accurate.md stays true to the code.

Its `rfcalc check` and `rfcalc suggest` commands run again here, at 80 columns as they were run for the page, in a
folder that holds copies of arch_specs/ and examples/: every part of the output the page shows (the parts between
its `...` lines) must be in what they print now, in order, and the exit codes must agree. `suggest -o` must write
the diff the page shows, the YAML excerpt must be the file's, and the Python snippet must make a valid sweep file
with the budget the page describes. The sweep and training outputs come from recorded runs and are not repeated.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from rfcalc.cli.app import app

PAGE = (ROOT / "examples" / "from_failing_to_accurate.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.S)


def _sessions() -> list[tuple[str, str]]:
    """(command, shown output) for every `$ rfcalc check|suggest` of the page's console blocks, in order."""
    sessions = []
    for block in _blocks("console"):
        parts = re.split(r"^\$ (.*)\n", block, flags=re.M)
        for command, shown in zip(parts[1::2], parts[2::2]):
            if command.startswith(("rfcalc check ", "rfcalc suggest ")):
                sessions.append((command, shown))
    return sessions


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder in ("arch_specs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    return tmp_path


def test_the_page_shows_the_commands_it_is_about() -> None:
    commands = [command for command, _ in _sessions()]
    assert commands[:3] == ["rfcalc check examples/first_try.yaml", "rfcalc suggest examples/first_try.yaml",
                            "rfcalc suggest examples/first_try.yaml --max-edits 4 --top 1 -o first_try_fixed.yaml"]
    assert "rfcalc check first_try_fixed.yaml" in commands
    assert "rfcalc check arch_specs/resnet_sep_cifar10.yaml" in commands


def test_check_and_suggest_print_what_the_page_shows(runner, clone: Path) -> None:
    for command, shown in _sessions():
        args = shlex.split(command)[1:]
        result = runner.invoke(app, args)
        fails = command in ("rfcalc check examples/first_try.yaml", "rfcalc suggest examples/first_try.yaml")
        printed = result.stdout + result.stderr   # what a terminal shows: suggest -o says "wrote" last
        assert result.exit_code == (1 if fails else 0), (command, printed)
        position = 0
        for part in re.split(r"^\.\.\.\n", shown, flags=re.M):
            if part:
                found = printed.find(part, position)
                assert found >= 0, f"$ {command}\nshown:\n{part}\nprinted:\n{printed}"
                position = found + len(part)


def test_suggest_writes_the_diff_the_page_shows(runner, clone: Path) -> None:
    result = runner.invoke(app, ["suggest", "examples/first_try.yaml", "--max-edits", "4", "--top", "1",
                                 "-o", "first_try_fixed.yaml"])
    assert result.exit_code == 0, result.output
    before = (clone / "examples" / "first_try.yaml").read_text(encoding="utf-8").splitlines()
    after = (clone / "first_try_fixed.yaml").read_text(encoding="utf-8").splitlines()
    diff = _blocks("diff")[0].splitlines()
    removed = [line[1:] for line in diff if line.startswith("-")]
    added = [line[1:] for line in diff if line.startswith("+")]
    assert [line for line in before if line not in after] == removed
    assert [line for line in after if line not in before] == added


def test_the_yaml_excerpt_is_the_file() -> None:
    excerpt = _blocks("yaml")[0]
    assert excerpt in (ROOT / "examples" / "first_try.yaml").read_text(encoding="utf-8")


def test_the_sweep_snippet_makes_the_sweep_it_describes(clone: Path) -> None:
    from rfcalc.sweep.load import load_sweep

    bash = next(block for block in _blocks("bash") if "python - <<'EOF'" in block)
    snippet = bash.split("python - <<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    exec(compile(snippet, "snippet", "exec"), {})
    sweep = load_sweep(clone / "sweep_arch_cpu.yaml")
    assert sweep.name == "arch-cpu"
    assert "6 trials of 2 epochs on 4,000 images at batch 64, without pruning" in PAGE
    assert (sweep.trials, sweep.pruner) == (6, "none")
    assert (sweep.budget.epochs, sweep.budget.train_limit, sweep.budget.batch_size) == (2, 4000, 64)
