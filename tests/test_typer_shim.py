"""What rfcalc/cli/typer_shim.py asks of typer and click, pinned on a tiny app of its own: when a typer upgrade
moves one of these, this file fails and says which (the commands' own help is tested in test_help.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from rfcalc.cli.common import Command, Group
from rfcalc.cli.typer_shim import TyperCommand, click_errors, is_no_args_help, plain_metavars, use_command_class


def _app() -> typer.Typer:
    app = typer.Typer(cls=Group, add_completion=False, pretty_exceptions_enable=False)

    @app.command("go")
    def go(spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec.")],
           loud: Annotated[bool, typer.Option("--loud", help="Shout.")] = False,
           rf: Annotated[str, typer.Option("--rf", metavar="BOUND", help="A bound.")] = ">1") -> None:
        """Go."""
        typer.echo(f"{spec} {loud} {rf}")

    @app.command("stay")
    def stay() -> None:
        """Stay."""

    use_command_class(app, Command)
    return app


def test_every_command_gets_rfcalcs_class() -> None:
    assert {info.cls for info in _app().registered_commands} == {Command}
    assert issubclass(Command, TyperCommand)


def test_help_names_values_not_python_types() -> None:
    text = CliRunner().invoke(_app(), ["go", "--help"], env={"COLUMNS": "100"}).stdout
    assert "SPEC" in text and "<path>" not in text and "PATH" not in text
    assert "--loud" in text and "<bool>" not in text and "BOOLEAN" not in text
    assert "--rf" in text and "BOUND" in text and "TEXT" not in text and "<str>" not in text


def test_plain_metavars_changes_only_what_it_names() -> None:
    params = typer.main.get_command(_app()).commands["go"].params  # type: ignore[attr-defined]
    spec, loud, rf = plain_metavars(params)
    assert (spec.display_type_rich(None), loud.metavar, rf.metavar) == (None, "", "BOUND")


def test_click_errors_are_the_ones_typer_raises() -> None:
    cli = typer.main.get_command(_app())
    try:
        cli.main(["go"], standalone_mode=False)  # the argument is missing
    except click_errors.UsageError as exc:
        assert isinstance(exc, click_errors.ClickException) and exc.exit_code == 2
    else:  # pragma: no cover
        raise AssertionError("typer raised no click_errors.UsageError")


def test_the_group_prints_a_usage_error_as_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    cli = typer.main.get_command(_app())
    try:
        cli.main(["go", "x", "--loudly"], prog_name="rfcalc")
    except SystemExit as exc:
        assert exc.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfcalc go: No such option: --loudly"), lines


def test_a_group_run_alone_raises_what_is_no_args_help_names() -> None:
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.command("a")(lambda: None)
    app.command("b")(lambda: None)
    try:
        typer.main.get_command(app).main([], standalone_mode=False)
    except click_errors.ClickException as exc:
        assert is_no_args_help(exc)
    else:  # pragma: no cover
        raise AssertionError("no error for a group run alone")
    assert not is_no_args_help(click_errors.UsageError("x"))


def test_the_private_help_pieces_the_narrow_panel_uses_exist() -> None:
    """`options_below_when_narrow` replaces typer's options panel and draws with typer's own pieces."""
    from typer import rich_utils

    for name in ("_print_options_panel", "_get_parameter_help", "highlighter", "STYLE_OPTIONS_PANEL_BORDER",
                 "ALIGN_OPTIONS_PANEL"):
        assert hasattr(rich_utils, name), name


def test_a_narrow_help_puts_descriptions_below_and_restores_typers_panel() -> None:
    from typer import rich_utils

    original = rich_utils._print_options_panel
    text = CliRunner().invoke(_app(), ["go", "--help"], env={"COLUMNS": "30"}).stdout
    assert rich_utils._print_options_panel is original
    lines = [line.strip("│ ") for line in text.splitlines()]
    assert "--rf BOUND" in lines and any(line.startswith("A bound.") for line in lines), text  # a line each
