"""What every command shares: the consoles and turning user-facing failures into one line and an exit code.

Exit codes are :class:`rfcalc.errors.ExitCode`. An exception nobody expected is a bug in rfcalc: it exits
``INTERNAL`` with a line that says so and names a log file holding the traceback (``RFCALC_DEBUG=1`` re-raises it
instead); an OS error that no check could foresee (a full disk) exits ``SYSTEM`` with the path and the reason.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from rfcalc.cli.typer_shim import (
    TyperCommand,
    TyperGroup,
    click_errors,
    is_no_args_help,
    options_below_when_narrow,
    plain_metavars,
)
from rfcalc.errors import (
    ExitCode,
    RfcalcError,
    SpecError,
    debugging,
    exit_codes_text,
    internal_error_lines,
    message_line,
)

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


def plain_width() -> int:
    """Where :func:`rfcalc.lines.wrap_words` wraps plain text on stdout, as :func:`rfcalc.lines.line_width` says for
    a console, without importing rich (``check`` is a pre-commit hook): ``$COLUMNS`` when set, else a terminal's
    width, else nowhere (a file or a pipe: one line per message)."""
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else sys.maxsize


def fail(message: str, code: ExitCode = ExitCode.BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(int(code))


def guarded(func: F) -> F:
    """Run a command body; SpecError / RfcalcError / Ctrl-C become one-line messages and exit codes (an OSError,
    or any other exception, is :class:`Group`'s to report)."""

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

    return wrapper  # type: ignore[return-value]


def system_error_line(exc: OSError) -> str:
    """What the system refused: the path(s) and the reason (``out.py: No space left on device``)."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p]
    where = f"{' -> '.join(paths)}: " if paths else ""
    return f"{where}{exc.strerror or message_line(exc)}"


def internal_error(exc: BaseException, where: str) -> NoReturn:
    """An exception nobody expected: a bug in rfcalc. Two lines on stderr (what, and where the traceback is), exit
    ``INTERNAL``; with ``RFCALC_DEBUG=1`` the exception is re-raised instead (Python prints the traceback)."""
    if debugging():
        raise exc
    for line in internal_error_lines(exc, where):
        typer.echo(line, err=True)
    sys.exit(int(ExitCode.INTERNAL))


def require_extra(module: str, extra: str) -> None:
    """Raise a one-line RfcalcError, with the install command, when an optional dependency is missing."""
    from rfcalc import extras

    extras.require(module, extra)


def _paragraphs(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line, so that the terminal wraps them (typer keeps the docstring's
    own line breaks after the first paragraph, which leaves half-empty lines at 80 columns)."""
    if text is None:
        return None
    return "\n\n".join(" ".join(line.strip() for line in p.strip().splitlines())
                        for p in inspect.cleandoc(text).split("\n\n"))


class Command(TyperCommand):
    """Every rfcalc command: typer's, with help that names values instead of Python types, and paragraphs that
    wrap at the terminal's width; at a narrow width an option's description goes below it
    (:func:`~rfcalc.cli.typer_shim.options_below_when_narrow`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _paragraphs(self.help)
        self.epilog = exit_codes_text()

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_metavars(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with options_below_when_narrow():
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The ``rfcalc`` group: the same help as :class:`Command` for ``--version`` and ``--help``, and a command line
    that click cannot parse (a missing argument, an unknown command or choice) as one line on stderr, exit 2,
    instead of typer's framed box."""

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_metavars(super().get_params(ctx))

    def _where(self, args: Sequence[str] | None) -> str:
        """``rfcalc COMMAND``: the command of the command line ``args`` (default: this process's)."""
        given = list(sys.argv[1:] if args is None else args)
        return " ".join(["rfcalc", *[a for a in given if a in self.commands][:1]])

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        run = functools.partial(super().main, args, prog_name, complete_var, windows_expand_args=windows_expand_args,
                                **extra)
        if not standalone_mode:
            return run(standalone_mode=False)
        try:
            result = run(standalone_mode=False)
        except click_errors.ClickException as exc:
            if is_no_args_help(exc):  # `rfcalc` alone: typer's own help page
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
        except OSError as exc:  # the last net: a file the checks before the work could not foresee
            typer.echo(system_error_line(exc), err=True)
            sys.exit(int(ExitCode.SYSTEM))
        except Exception as exc:
            internal_error(exc, self._where(args))
        sys.exit(result if isinstance(result, int) else 0)
