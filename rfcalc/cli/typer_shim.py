"""Everything rfcalc asks of typer and click beyond their documented API, in one place (tests/test_typer_shim.py
pins each piece, so that a typer upgrade that moves one fails there, not in a user's terminal).

- :data:`click_errors`: the click that typer runs on (typer >= 0.20 carries its own as ``typer._click``).
- :class:`TyperCommand` / :class:`TyperGroup`: typer's command classes, which rfcalc's subclass.
- :func:`plain_metavars`: help shows what to type, not Python types (typer >= 0.2x prints ``<bool>`` after a flag
  and the type after an argument's name; ``display_type_rich`` is typer's, undocumented).
- :func:`use_command_class`: every registered command gets rfcalc's class.
- :func:`is_no_args_help`: the error click raises for a group run without a command (``rfcalc`` alone), which
  rfcalc answers with the help page (the class is click's, not exported under a stable name).
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import typer
import typer.core

__all__ = ["TyperCommand", "TyperGroup", "click_errors", "is_no_args_help", "plain_metavars", "use_command_class"]

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
