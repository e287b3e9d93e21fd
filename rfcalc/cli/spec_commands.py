"""`table`, `check` and `schema`: the spec commands. They are pre-commit hooks: nothing imported here, nor in
the command bodies, imports torch (``table|check FILE.py:NAME`` alone does, through :mod:`rfcalc.inspection`)."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from rfcalc.cli.common import console, fail, guarded, plain_width, require_extra
from rfcalc.cli.outputs import IMAGE, emit_json, output_file, writing
from rfcalc.cli.rule_flags import ForbidFlag, MacsFlag, ParamsFlag, RequireFlag, RfFlag, rule_overrides
from rfcalc.errors import ExitCode, Problem, RfcalcError, SpecError
from rfcalc.table.formats import TableFormat
from rfcalc.targets import is_code_target


class CheckFormat(str, Enum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add `table`, `check` and `schema` to ``app``."""
    app.command("table")(table)
    app.command("check")(check)
    app.command("schema")(schema)


@guarded
def table(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML), or FILE.py:NAME for a "
                                         "PyTorch module (with --input; the same as `rfcalc inspect`).")],
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.rich,
    plot: Annotated[Path | None, typer.Option(
        metavar="FILE.png", help="Also draw RF and feature-map size per layer to this image (needs matplotlib).")
    ] = None,
    input: Annotated[str | None, typer.Option("--input", "-i", metavar="CxHxW",
                                                 help="Input shape for a FILE.py:NAME target, e.g. 3x32x32.")] = None,
) -> None:
    """The exact per-layer table: sizes, jumps, receptive fields, centres, parameters, MACs.

    The rich table shows as many columns as the terminal's width allows (--format csv or json has them all).
    Exit 0 when the table is printed, 2 when the spec is invalid or --plot cannot be written.
    """
    from rfcalc.analysis.load import load_spec
    from rfcalc.render import report as render

    if is_code_target(str(spec)):
        _code_table(str(spec), input, format, plot)
        return
    if input is not None:
        fail(f"--input: applies to a FILE.py:NAME target only; {spec} is a spec, whose `input:` gives the shape")
    if plot is not None:
        output_file("--plot", plot, IMAGE)
        require_extra("matplotlib", "plot")  # before any output: nothing is printed when the plot cannot be drawn
    loaded = load_spec(spec)
    report = loaded.report
    if format is TableFormat.rich:
        out = console()
        out.print(render.rich_table(report))
        for diagnostic in report.diagnostics:
            out.print(f"{diagnostic.severity}: {diagnostic.path}: {diagnostic.message}")
    else:
        sys.stdout.write(render.render_text(report, format))
    if plot is not None:
        _plot(loaded, plot)


def _code_table(target: str, input: str | None, format: TableFormat, plot: Path | None) -> None:
    """`table FILE.py:NAME --input CxHxW` is `inspect FILE.py:NAME --input CxHxW`."""
    if input is None:
        fail(f"{target}: the table of a PyTorch module needs --input, e.g. `rfcalc table {target} --input 3x32x32` "
             f"(the same as `rfcalc inspect {target} --input 3x32x32`)")
    if plot is not None:
        fail(f"--plot: draws a spec's table; for a PyTorch module write one first with "
             f"`rfcalc inspect {target} --input {input} --to-spec net.yaml`, then `rfcalc table net.yaml --plot ...`")
    from rfcalc.cli.inspect_command import inspect_command

    inspect_command(target, input, format, None)


def _plot(spec: Any, path: Path) -> None:
    from rfcalc.render.plot import write_rf_plot

    bounds = spec.constraints.rf.items() if spec.constraints and spec.constraints.rf else []
    rf_line = next((float(v) for op, v in bounds if op in ("gt", "ge", "eq")), None)
    with writing("--plot", path):
        write_rf_plot(spec.report, path, rf_line)
    typer.echo(f"wrote {path}", err=True)


def check(
    specs: Annotated[list[str], typer.Argument(metavar="SPEC", help="Spec files, or FILE.py:NAME for a PyTorch module "
                                                    "(with --input).")],
    rf: RfFlag = [],
    params: ParamsFlag = [],
    macs: MacsFlag = [],
    require: RequireFlag = [],
    forbid: ForbidFlag = [],
    input: Annotated[str | None, typer.Option("--input", metavar="CxHxW",
                                                 help="Input shape for FILE.py:NAME targets, e.g. 3x32x32.")] = None,
    format: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.text,
) -> None:
    """Check constraints (spec, then \\[tool.rfcalc.constraints] in pyproject.toml, then flags; later wins).

    Exit 0 when every rule of every file holds, 1 when a rule fails, 2 when a spec is invalid.
    """
    from rfcalc.analysis.checker import CheckResult, check_spec
    from rfcalc.analysis.load import load_spec

    try:
        overrides = rule_overrides(rf, params, macs, require, forbid)
    except RfcalcError as exc:
        fail(str(exc), exc.exit_code)
    results: list[CheckResult] = []
    errors: list[Problem] = []
    for target in specs:
        try:
            if is_code_target(target):
                results.append(_check_code(target, input, overrides))
            else:
                results.append(check_spec(load_spec(Path(target)), overrides=overrides or None))
        except SpecError as exc:
            errors.extend(exc.problems)
        except RfcalcError as exc:
            errors.append(Problem(target, None, None, "", _without_prefix(str(exc), target)))
    code = ExitCode.BAD_INPUT if errors else (ExitCode.OK if all(r.ok for r in results) else ExitCode.FAILED)
    if format is CheckFormat.json:
        typer.echo(json.dumps({"ok": code == ExitCode.OK, "exit_code": int(code),
                               "results": [r.to_dict() for r in results],
                               "errors": [p.to_dict() for p in errors]}, indent=2, ensure_ascii=False))
    else:
        for problem in errors:
            typer.echo(str(problem), err=True)
        for result in results:
            _print_result(result)
    raise typer.Exit(int(code))


def _without_prefix(message: str, target: str) -> str:
    """A target's error without the target named twice ('m.py:Net: m.py: no such file' -> 'm.py:Net: no such
    file'): the line starts with the target already."""
    for prefix in (f"{target}: ", f"{target.rpartition(':')[0]}: "):
        if prefix != ": " and message.startswith(prefix):
            return message[len(prefix):]
    return message


def _check_code(target: str, input: str | None, overrides: dict[str, Any]) -> Any:
    from rfcalc.analysis.checker import check_report
    from rfcalc.cli.common import require_extra

    if input is None:
        raise RfcalcError(f"{target}: checking a PyTorch module needs --input, e.g. --input 3x32x32")
    require_extra("torch", "torch")
    from rfcalc.inspection.api import inspect_module
    from rfcalc.inspection.target import load_target, parse_input_shape, split_target

    report = inspect_module(load_target(target), parse_input_shape(input), name=split_target(target)[1])
    return check_report(report, target, overrides or None)


def _print_result(result: Any) -> None:
    from rfcalc.lines import wrap_words

    width = plain_width()  # not a rich console: `check` never imports rich's

    def say(text: str) -> None:  # an item of the result, indented, wrapped between words on a terminal
        typer.echo("  " + wrap_words(text, width - 2, indent="  ").replace("\n", "\n  "))

    verdict = "ok" if result.ok else "FAIL"
    typer.echo(f"{result.file} ({result.name}): {verdict}")
    if not result.rules:
        say("no constraints: add `constraints:` to the spec, [tool.rfcalc.constraints] to pyproject.toml, or flags "
            "such as --rf '>44'")
    for rule in result.rules:
        say(rule.message)
    for diagnostic in result.diagnostics:
        say(f"{diagnostic.severity}: {diagnostic.path}: {diagnostic.message}")


@guarded
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE.json",
                                                 help="Write to this file instead of stdout.")
                      ] = None,
) -> None:
    """Print the JSON Schema of a spec (for editors: `# yaml-language-server: $schema=rfcalc.schema.json`).

    Exit 0 when it is printed or written, 2 when --output cannot be written.
    """
    from rfcalc.spec.schema import spec_json_schema

    emit_json("--output", output, spec_json_schema())
