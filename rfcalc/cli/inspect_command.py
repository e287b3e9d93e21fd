"""``rfcalc inspect FILE.py:NAME --input 3x32x32``: the table of a PyTorch module.

Importing this module never imports torch (``rfcalc.cli.app`` registers the command at start-up); torch and the
user's file are imported when the command runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rfcalc.cli.common import console, guarded, require_extra
from rfcalc.cli.outputs import YAML, output_file, writing
from rfcalc.errors import ExitCode
from rfcalc.table.formats import TableFormat


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    app.command(name="inspect")(inspect_command)


@guarded
def inspect_command(
    target: Annotated[str, typer.Argument(metavar="FILE.py:NAME", help="an nn.Module subclass with a "
                                          "no-argument constructor, or a function returning a module.")],
    input: Annotated[str, typer.Option("--input", "-i", metavar="CxHxW", help="Input shape CxHxW, e.g. 3x32x32.")],
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.rich,
    to_spec: Annotated[Path | None, typer.Option("--to-spec", metavar="FILE.yaml",
                                                    help="Also write the equivalent v1 spec to this file.")] = None,
) -> None:
    """The exact, branch-aware table of a PyTorch module, traced with torch.fx (same numbers as `table`).

    Exit 0 when every node is understood, 2 when the module cannot be loaded or traced, or when the
    table stops at a node that changes the spatial layout in a way rfcalc cannot know (the partial table
    is printed with an error naming the node).
    """
    from rfcalc.inspection.target import load_target, parse_input_shape, split_target

    shape = parse_input_shape(input)
    if to_spec is not None:
        output_file("--to-spec", to_spec, YAML)
    require_extra("torch", "torch")
    from rfcalc.inspection.api import trace_module
    from rfcalc.render import report as render

    module = load_target(target)
    inspection = trace_module(module, shape, name=split_target(target)[1])
    report = inspection.report
    if format is TableFormat.rich:
        out = console()
        out.print(render.rich_table(report))
        for diagnostic in report.diagnostics:
            out.print(f"{diagnostic.severity}: {diagnostic.path}: {diagnostic.message}", markup=False)
    else:
        sys.stdout.write(render.render_text(report, format))
        for diagnostic in report.diagnostics:  # csv has no place for them; errors go to stderr in any format
            if format is TableFormat.csv or diagnostic.severity == "error":
                typer.echo(f"{diagnostic.severity}: {diagnostic.path}: {diagnostic.message}", err=True)
    if not inspection.complete:
        raise typer.Exit(int(ExitCode.BAD_INPUT))
    if to_spec is not None:
        from rfcalc.inspection.to_spec import dropped_settings, spec_yaml

        text = spec_yaml(inspection, source=target)
        with writing("--to-spec", to_spec):
            to_spec.write_text(text, encoding="utf-8")
        for line in dropped_settings(inspection):
            typer.echo(f"note: {line}", err=True)
        typer.echo(f"wrote {to_spec}", err=True)
