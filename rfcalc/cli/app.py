"""The rfcalc command line: the typer app, with every command registered explicitly.

An import error in any command module is an error at start-up, never a command that silently goes missing.
Nothing imported here imports torch: `table` and `check` are pre-commit hooks.
"""
from __future__ import annotations

import copy
import gc
import os
import sys
from typing import Annotated

# pydantic looks for plugins through importlib.metadata at the first model it builds: ~40 ms that a
# pre-commit hook should not pay. Only this command-line process is affected.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer

from rfcalc import __version__
from rfcalc.cli import inspect_command, model_commands, spec_commands, suggest_command, sweep_command, train_commands
from rfcalc.cli.common import Command, Group
from rfcalc.cli.typer_shim import use_command_class

app = typer.Typer(name="rfcalc", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=Group,
                  help="Exact receptive-field tables, constraint checks, PyTorch modules and training from a "
                       "YAML spec of a CNN.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rfcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """rfcalc: design small CNNs under constraints."""


for _register in (spec_commands.register, suggest_command.register, model_commands.register,
                  inspect_command.register, train_commands.register, sweep_command.register):
    _register(app)
use_command_class(app, Command)  # help that names values, not Python types, for every command


def app_for(args: list[str]) -> typer.Typer:
    """The app that runs the command line ``args``: :data:`app` with only the command being run, when one is named.
    Typer turns every registered command's signature into click parameters when it starts (about 1 ms each), which
    a pre-commit hook would pay on every call; help, ``--version`` and a mistyped command get the whole app."""
    chosen = [info for info in app.registered_commands if args and info.name == args[0]]
    if not chosen:
        return app
    lean = copy.copy(app)
    lean.registered_commands = chosen
    return lean


def main() -> None:
    """Console entry point."""
    # what is loaded by now (typer, the command line) lives as long as the process: kept out of every cyclic
    # collection, which spares a pre-commit `check` 2.5% of its instructions (bench/RESULTS.md)
    gc.freeze()
    app_for(sys.argv[1:])()
