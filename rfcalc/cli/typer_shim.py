"""Everything rfcalc asks of typer and click beyond their documented API, in one place (tests/test_typer_shim.py
pins each piece, so that a typer upgrade that moves one fails there, not in a user's terminal).

- :data:`click_errors`: the click that typer runs on (typer >= 0.20 carries its own as ``typer._click``).
- :class:`TyperCommand` / :class:`TyperGroup`: typer's command classes, which rfcalc's subclass.
- :func:`plain_metavars`: help shows what to type, not Python types (typer >= 0.2x prints ``<bool>`` after a flag
  and the type after an argument's name; ``display_type_rich`` is typer's, undocumented).
- :func:`use_command_class`: every registered command gets rfcalc's class.
- :func:`options_below_when_narrow`: typer's options panel (its private ``rich_utils._print_options_panel``)
  replaced while help is printed: at a narrow width each option's description goes below its flags.
- :func:`is_no_args_help`: the error click raises for a group run without a command (``rfcalc`` alone), which
  rfcalc answers with the help page (the class is click's, not exported under a stable name).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import typer
import typer.core

__all__ = ["TyperCommand", "TyperGroup", "click_errors", "is_no_args_help", "options_below_when_narrow",
           "plain_metavars", "use_command_class"]

click_errors: ModuleType
try:  # typer >= 0.20 carries its own click; older ones use click
    from typer._click import exceptions as click_errors  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[import-not-found,no-redef,unused-ignore]

TyperCommand = typer.core.TyperCommand
TyperGroup = typer.core.TyperGroup


def plain_metavars(params: list[Any]) -> list[Any]:
    """A flag shows nothing, an option its metavar (``--rf BOUND``), an argument its name only (``SPEC``, not
    ``SPEC <path>``). Returns ``params``, changed in place."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if getattr(param, "param_type_name", "") == "argument" and param.metavar is not None:
            param.display_type_rich = lambda ctx: None
    return params


def use_command_class(app: typer.Typer, cls: type[Any]) -> None:
    """Every command registered on ``app`` without a class of its own is built as ``cls``."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = cls


def is_no_args_help(exc: BaseException) -> bool:
    """Whether ``exc`` is click's answer to a group run with no command (``no_args_is_help``)."""
    return type(exc).__name__ == "NoArgsIsHelpError"


@contextmanager
def options_below_when_narrow() -> Iterator[None]:
    """While help is printed: typer's options panel, or, where it would squeeze the descriptions, the options each
    on a line with the description below (:func:`_options_panel`). Another typer (no such private function):
    its own layout."""
    from typer import rich_utils

    original = getattr(rich_utils, "_print_options_panel", None)
    if original is None:  # pragma: no cover - another typer: its own layout
        yield
        return
    rich_utils._print_options_panel = _options_panel(original)
    try:
        yield
    finally:
        rich_utils._print_options_panel = original


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
