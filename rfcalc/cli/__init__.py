"""The command line: parses arguments, calls the core, renders. No computation lives here.

:mod:`~rfcalc.cli.app` builds the typer app and registers every command explicitly;
:mod:`~rfcalc.cli.common` is what every command shares (consoles, one-line errors, exit codes, extras);
one module per group of commands: :mod:`~rfcalc.cli.spec_commands` (table, check, schema),
:mod:`~rfcalc.cli.model_commands` (export, erf), :mod:`~rfcalc.cli.inspect_command`,
:mod:`~rfcalc.cli.train_commands` (train, evaluate, lr-find). Importing any of them imports no torch.
"""
