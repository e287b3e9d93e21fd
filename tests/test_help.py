"""Every command's --help: values named the way a user types them, never Python types; exit codes stated."""
from __future__ import annotations

import re

import pytest
import typer

from rfcalc.cli.app import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
# What typer (>= 0.2x: <bool>, <list[str]>) or click (BOOLEAN, TEXT) print when no metavar is given.
PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\])>|\blist\[|\b(BOOLEAN|TEXT|INTEGER|FLOAT|PATH)\b")


def test_every_command_is_checked():
    assert COMMANDS == ["check", "erf", "evaluate", "export", "inspect", "lr-find", "schema", "suggest", "sweep",
                        "sweep-schema", "table", "train"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_names_values_not_python_types(runner, command):
    result = runner.invoke(app, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    assert PYTHON_TYPES.search(result.stdout) is None, result.stdout
    assert re.search(r"--help +Show this message", result.stdout), result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_states_the_exit_codes(runner, command):
    text = " ".join(runner.invoke(app, [command, "--help"]).stdout.split())
    assert "Exit 0 when" in text and " 2 " in text, text


def test_option_values_are_shown_as_typed(runner):
    text = runner.invoke(app, ["check", "--help"]).stdout
    for flag, metavar in (("--rf", "BOUND"), ("--require", "FEATURES"), ("--input", "CxHxW"),
                          ("--format", "<text|json>")):
        assert re.search(rf"{flag} +(-\w +)?{re.escape(metavar)} ", text), (flag, text)
    train = runner.invoke(app, ["train", "--help"]).stdout
    assert re.search(r"--skip-check +Train even", train) and re.search(r"--out +FOLDER ", train), train


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_at_80_columns_cuts_no_word_and_wraps_paragraphs(runner, command):
    result = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout, result.stdout
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    # a paragraph fills its lines: no line of prose ends far before the margin while the next goes on
    prose = [line.rstrip() for line in lines if line.startswith(" ") and not line.lstrip().startswith(("│", "╭", "╰"))]
    short = [a for a, b in zip(prose, prose[1:]) if a.strip() and b.strip() and len(a) < 45
             and not a.rstrip().endswith((".", ":")) and not b.lstrip()[:1].isupper()]
    assert short == [], short


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_gives_each_description_room(runner, command):
    """No description squeezed into a narrow column beside long flags (issue 25: `train --help` was 116 lines with
    ~20-character descriptions): where flags and values leave fewer than 40 columns, the description goes below."""
    text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}).stdout
    inside = [line[1:-1] for line in text.splitlines() if line.startswith("│") and line.endswith("│")]
    starts = [len(line) - len(line.lstrip()) for line in inside if line.strip()]
    assert max(starts) <= 80 - 40, "\n".join(line for line in inside if len(line) - len(line.lstrip()) > 40)


def test_the_console_script_builds_only_the_command_it_runs():
    from rfcalc.cli.app import app_for

    assert [info.name for info in app_for(["check", "a.yaml"]).registered_commands] == ["check"]
    assert app_for(["--version"]) is app and app_for([]) is app and app_for(["chek"]) is app
    assert len(app.registered_commands) == len(COMMANDS)  # the full app is left as it was
