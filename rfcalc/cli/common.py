"""What every command shares: the consoles and turning user-facing failures into one line and an exit code.

Exit codes are :class:`rfcalc.errors.ExitCode`.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from rfcalc.errors import ExitCode, RfcalcError, SpecError

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


def console(stderr: bool = False) -> Console:
    """A rich console; width from $COLUMNS when set (tests fix it). Written to a file or a pipe, tables get
    room for every column instead of rich's 80, and no colour."""
    import sys

    from rich.console import Console

    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else None
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty():
        width = 200
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def fail(message: str, code: ExitCode = ExitCode.BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(int(code))


def guarded(func: F) -> F:
    """Run a command body; SpecError / RfcalcError / Ctrl-C / OSError become one-line messages and exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
        except RfcalcError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", ExitCode.INTERRUPTED)
        except OSError as exc:  # the last net: a file the checks before the work could not foresee
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")

    return wrapper  # type: ignore[return-value]


def require_extra(module: str, extra: str) -> None:
    """Raise a one-line RfcalcError, with the install command, when an optional dependency is missing."""
    from rfcalc import extras

    extras.require(module, extra)


def _plain_metavars(params: list[Any]) -> list[Any]:
    """Help shows what to type, not Python types: a flag shows nothing (typer >= 0.2x prints ``<bool>``), an
    option its metavar (``--rf BOUND``), an argument its name only (``SPEC``, not ``SPEC <path>``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "param_type_name", "") == "argument" and param.metavar is not None:
            param.display_type_rich = lambda ctx: None
    return params


def _paragraphs(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line, so that the terminal wraps them (typer keeps the docstring's
    own line breaks after the first paragraph, which leaves half-empty lines at 80 columns)."""
    if text is None:
        return None
    return "\n\n".join(" ".join(line.strip() for line in p.strip().splitlines())
                        for p in inspect.cleandoc(text).split("\n\n"))


HELP_ROOM = 40  # the fewest columns an option's description gets beside its flags; with fewer it goes below them


def _options_panel(original: Callable[..., None]) -> Callable[..., None]:
    """typer's options panel, or, when its flag and value columns would leave a description fewer than HELP_ROOM
    columns (``train --help`` at 80 columns), each option on its own line with its description below."""

    def panel(**kwargs: Any) -> None:
        from rich.padding import Padding
        from rich.panel import Panel
        from rich.table import Table
        from typer import rich_utils

        params, ctx, out = kwargs["params"], kwargs["ctx"], kwargs["console"]
        heads = [_head(param, ctx) for param in params]
        # typer's columns: long, short (or an argument's name), secondary long and short, value, then the
        # description; each is padded by one space either side, empty or not, inside a panel's 4 columns of border
        def split(opts: list[str]) -> list[str]:
            return [",".join(o for o in opts if o[:2] == "--"), ",".join(o for o in opts if o[:2] != "--")]

        cells = [[*split(p.opts), *split(p.secondary_opts), heads[i][1]] for i, p in enumerate(params)]
        widths = [max((len(row[c]) for row in cells), default=0) for c in range(5)]
        used = 4 + sum(w + 2 for w in widths) + 2 + (3 if any(p.required for p in params) else 0)
        if not params or out.width - used >= HELP_ROOM:
            return original(**kwargs)
        grid = Table.grid(expand=True)
        grid.add_column()
        for param, (head, _) in zip(params, heads):
            grid.add_row(rich_utils.highlighter(head))
            grid.add_row(Padding(rich_utils._get_parameter_help(param=param, ctx=ctx,
                                                                 markup_mode=kwargs["markup_mode"]), (0, 0, 0, 4)))
        out.print(Panel(grid, border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER, title=kwargs["name"],
                        title_align=rich_utils.ALIGN_OPTIONS_PANEL))

    return panel


def _head(param: Any, ctx: Any) -> tuple[str, str]:
    """'--out, -o FOLDER' (or 'SPEC', '--sync-bn / --no-sync-bn'), and the value's metavar alone."""
    value = param.display_type_rich(ctx=ctx) or ""
    if getattr(param, "param_type_name", "") == "argument":
        names = param.display_name_raw if hasattr(param, "display_name_raw") else param.name.upper()
    else:
        longs = [o for o in param.opts if o.startswith("--")] + [o for o in param.opts if not o.startswith("--")]
        names = ", ".join(longs) + "".join(f" / {o}" for o in param.secondary_opts)
    return f"{'* ' if param.required else ''}{names}{' ' + value if value else ''}", value


class Command(typer.core.TyperCommand):
    """Every rfcalc command: typer's, with help that names values instead of Python types, and paragraphs that
    wrap at the terminal's width; at a narrow width an option's description goes below it (:func:`_options_panel`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _paragraphs(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_metavars(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from typer import rich_utils

        original = getattr(rich_utils, "_print_options_panel", None)
        if original is None:  # pragma: no cover - another typer: its own layout
            return super().format_help(ctx, formatter)
        rich_utils._print_options_panel = _options_panel(original)
        try:
            super().format_help(ctx, formatter)
        finally:
            rich_utils._print_options_panel = original


class Group(typer.core.TyperGroup):
    """The ``rfcalc`` group: the same help as :class:`Command` for ``--version`` and ``--help``, and a command line
    that click cannot parse (a missing argument, an unknown command or choice) as one line on stderr, exit 2,
    instead of typer's framed box."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_metavars(super().get_params(ctx))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        run = functools.partial(super().main, args, prog_name, complete_var, windows_expand_args=windows_expand_args,
                                **extra)
        if not standalone_mode:
            return run(standalone_mode=False)
        try:  # typer >= 0.20 carries its own click; older ones use click
            from typer._click import exceptions as click_errors  # type: ignore[import-not-found,unused-ignore]
        except ImportError:  # pragma: no cover - depends on the installed typer
            from click import exceptions as click_errors  # type: ignore[no-redef,import-not-found,unused-ignore]
        try:
            result = run(standalone_mode=False)
        except click_errors.ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `rfcalc` alone: typer's own help page
                return run(standalone_mode=True)
            context = getattr(exc, "ctx", None)
            where = context.command_path if context is not None else "rfcalc"
            message = exc.format_message().replace("Value error, ", "").rstrip(".")
            hint = f" (see {where} --help)" if isinstance(exc, click_errors.UsageError) else ""
            typer.echo(f"{where}: {message}{hint}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        sys.exit(result if isinstance(result, int) else 0)
