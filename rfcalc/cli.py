"""The command line: parses arguments, calls the core, renders. No computation lives here.

`table` and `check` are pre-commit hooks: nothing imported here may import torch.
"""
from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

# pydantic looks for plugins through importlib.metadata at the first model it builds: ~40 ms that a
# pre-commit hook should not pay. Only this command-line process is affected.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from rfcalc import __version__
from rfcalc.cli_common import EXIT_BAD_INPUT, EXIT_OK, EXIT_RULE_FAILED, console, fail, guarded  # noqa: E402
from rfcalc.errors import Problem, RfcalcError, SpecError  # noqa: E402
from rfcalc.numbers import parse_comparison  # noqa: E402

app = typer.Typer(name="rfcalc", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Exact receptive-field tables, constraint checks, PyTorch modules and training from a "
                       "YAML spec of a CNN.")


class TableFormat(str, Enum):
    rich = "rich"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class CheckFormat(str, Enum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rfcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """rfcalc: design small CNNs under constraints."""


@app.command()
@guarded
def table(
    spec: Annotated[Path, typer.Argument(help="The spec file (YAML).")],
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.rich,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw RF and feature-map size per layer to this PNG "
                                                      "(needs matplotlib).")] = None,
) -> None:
    """The exact per-layer table: sizes, jumps, receptive fields, centres, parameters, MACs."""
    from rfcalc import render
    from rfcalc.spec import load_spec

    loaded = load_spec(spec)
    report = loaded.report
    if format is TableFormat.rich:
        out = console()
        out.print(render.rich_table(report))
        for diagnostic in report.diagnostics:
            out.print(f"{diagnostic.severity}: {diagnostic.path}: {diagnostic.message}")
    else:
        renderer = {"markdown": render.render_markdown, "csv": render.render_csv, "json": render.render_json}
        sys.stdout.write(renderer[format.value](report))
    if plot is not None:
        _plot(loaded, plot)


def _plot(spec: Any, path: Path) -> None:
    from rfcalc.cli_common import require_extra

    require_extra("matplotlib", "train")
    from rfcalc.plot import write_rf_plot

    bounds = spec.constraints.rf.items() if spec.constraints and spec.constraints.rf else []
    rf_line = next((float(v) for op, v in bounds if op in ("gt", "ge", "eq")), None)
    write_rf_plot(spec.report, path, rf_line)
    typer.echo(f"wrote {path}", err=True)


def _overrides(rf: list[str], params: list[str], macs: list[str], require: list[str],
               forbid: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, texts in (("rf", rf), ("params", params), ("macs", macs)):
        bound: dict[str, Any] = {}
        for text in texts:
            try:
                op, value = parse_comparison(text)
            except ValueError as exc:
                raise RfcalcError(f"--{key}: {exc}") from None
            bound[op] = value
        if bound:
            out[key] = bound
    for key, texts in (("require", require), ("forbid", forbid)):
        items = [item.strip() for text in texts for item in text.split(",") if item.strip()]
        if items:
            out[key] = items
    return out


def _is_code_target(arg: str) -> bool:
    head, sep, _ = arg.rpartition(":")
    return bool(sep) and head.endswith(".py")


@app.command()
def check(
    specs: Annotated[list[str], typer.Argument(help="Spec files, or FILE.py:NAME for a PyTorch module "
                                                    "(with --input).")],
    rf: Annotated[list[str], typer.Option("--rf", help="RF bound, e.g. '>44' (both axes must pass).")] = [],
    params: Annotated[list[str], typer.Option("--params", help="Parameter bound, e.g. '<200k'.")] = [],
    macs: Annotated[list[str], typer.Option("--macs", help="MACs bound, e.g. '<50M'.")] = [],
    require: Annotated[list[str], typer.Option("--require", help="Features that must be present, comma-separated."
                                               )] = [],
    forbid: Annotated[list[str], typer.Option("--forbid", help="Features that must be absent, comma-separated.")
                      ] = [],
    input: Annotated[Optional[str], typer.Option("--input", help="Input shape for FILE.py:NAME targets, "
                                                                 "e.g. 3x32x32.")] = None,
    format: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.text,
) -> None:
    """Check constraints (spec, then \\[tool.rfcalc.constraints] in pyproject.toml, then flags; later wins).

    Exit 0 when every rule of every file holds, 1 when a rule fails, 2 when a spec is invalid.
    """
    from rfcalc.checker import CheckResult, check_spec
    from rfcalc.spec import load_spec

    try:
        overrides = _overrides(rf, params, macs, require, forbid)
    except RfcalcError as exc:
        fail(str(exc), exc.exit_code)
    results: list[CheckResult] = []
    errors: list[Problem] = []
    for target in specs:
        try:
            if _is_code_target(target):
                results.append(_check_code(target, input, overrides))
            else:
                results.append(check_spec(load_spec(Path(target)), overrides=overrides or None))
        except SpecError as exc:
            errors.extend(exc.problems)
        except RfcalcError as exc:
            errors.append(Problem(target, 1, 1, "", str(exc)))
    code = EXIT_BAD_INPUT if errors else (EXIT_OK if all(r.ok for r in results) else EXIT_RULE_FAILED)
    if format is CheckFormat.json:
        typer.echo(json.dumps({"ok": code == EXIT_OK, "exit_code": code, "results": [r.to_dict() for r in results],
                               "errors": [p.to_dict() for p in errors]}, indent=2, ensure_ascii=False))
    else:
        for problem in errors:
            typer.echo(str(problem), err=True)
        for result in results:
            _print_result(result)
    raise typer.Exit(code)


def _check_code(target: str, input: str | None, overrides: dict[str, Any]) -> Any:
    from rfcalc.checker import check_report
    from rfcalc.cli_common import require_extra

    if input is None:
        raise RfcalcError(f"{target}: checking a PyTorch module needs --input, e.g. --input 3x32x32")
    require_extra("torch", "torch")
    from rfcalc.cli_inspect import load_target, parse_input_shape, split_target
    from rfcalc.inspect import inspect_module

    report = inspect_module(load_target(target), parse_input_shape(input), name=split_target(target)[1])
    return check_report(report, target, overrides or None)


def _print_result(result: Any) -> None:
    verdict = "ok" if result.ok else "FAIL"
    typer.echo(f"{result.file} ({result.name}): {verdict}")
    if not result.rules:
        typer.echo("  no constraints: add `constraints:` to the spec, [tool.rfcalc.constraints] to pyproject.toml, "
                   "or flags such as --rf '>44'")
    for rule in result.rules:
        typer.echo(f"  {rule.message}")
    for diagnostic in result.diagnostics:
        typer.echo(f"  {diagnostic.severity}: {diagnostic.path}: {diagnostic.message}")


@app.command()
@guarded
def schema(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
                      ] = None,
) -> None:
    """Print the JSON Schema of a spec (for editors: `# yaml-language-server: $schema=rfcalc.schema.json`)."""
    from rfcalc.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def _register_optional() -> None:
    """Commands from the other parts of the project; each imports torch only when it runs."""
    import importlib

    for module in ("rfcalc.cli_model", "rfcalc.cli_inspect", "trainer.cli"):
        try:
            register = importlib.import_module(module).register
        except ImportError:
            continue
        register(app)


_register_optional()


def main() -> None:
    """Console entry point."""
    app()
