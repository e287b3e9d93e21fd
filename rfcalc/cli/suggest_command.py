"""`suggest`: the least changes that make a failing spec pass, and `-o` to write the best one into a copy of the
spec. Torch-free, like `check` (same rule sources and flags)."""
from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rfcalc.cli.common import console, guarded, plain_width
from rfcalc.cli.outputs import YAML, output_file, writing
from rfcalc.cli.rule_flags import ForbidFlag, MacsFlag, ParamsFlag, RequireFlag, RfFlag, rule_overrides
from rfcalc.errors import ExitCode, Problem, RfcalcError, SpecError
from rfcalc.lines import wrap_words
from rfcalc.suggest.limits import DEFAULT_BUDGET, DEFAULT_MAX_EDITS, DEFAULT_TOP

if TYPE_CHECKING:
    from rfcalc.suggest.edits import Edit
    from rfcalc.suggest.result import SuggestResult


class SuggestFormat(str, Enum):
    rich = "rich"
    markdown = "markdown"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest)


@guarded
def suggest(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML).")],
    rf: RfFlag = [],
    params: ParamsFlag = [],
    macs: MacsFlag = [],
    require: RequireFlag = [],
    forbid: ForbidFlag = [],
    top: Annotated[int, typer.Option("--top", "-k", metavar="K", help="How many suggestions to show.")
                   ] = DEFAULT_TOP,
    budget: Annotated[int, typer.Option("--budget", metavar="N",
                                        help="At most this many candidate specs are evaluated.")] = DEFAULT_BUDGET,
    max_edits: Annotated[int, typer.Option("--max-edits", metavar="N",
                                           help="At most this many edits in one suggestion.")] = DEFAULT_MAX_EDITS,
    format: Annotated[SuggestFormat, typer.Option("--format", "-f", help="Output format.")] = SuggestFormat.rich,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FIXED.yaml",
                                                   help="Write the spec with suggestion #1 applied here (comments "
                                                        "and layout kept; may be SPEC itself).")] = None,
) -> None:
    """Suggest the smallest changes to SPEC that make every rule pass (rules as for `check`).

    Fixes are ranked: no layer starved (a width cut by more than a quarter), fewest edits, output size kept,
    smallest |Δparams|, smallest |ΔMACs|.

    Exit 0 when fixes are found or the spec already passes, 1 when none passes within the budget, 2 for bad input.
    """
    try:
        result = _search(spec, rule_overrides(rf, params, macs, require, forbid), top, budget, max_edits, output)
    except (SpecError, RfcalcError) as exc:
        if format is not SuggestFormat.json:
            raise                              # one line per problem on stderr, exit 2 (`guarded`)
        problems = exc.problems if isinstance(exc, SpecError) else [Problem(str(spec), 1, 1, "", str(exc))]
        typer.echo(json.dumps({"schema_version": 1, "file": str(spec), "status": "error",
                               "exit_code": int(ExitCode.BAD_INPUT), "errors": [p.to_dict() for p in problems]},
                              indent=2, ensure_ascii=False))
        raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    if format is SuggestFormat.json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif format is SuggestFormat.markdown:
        from rfcalc.suggest.render import render_markdown

        sys.stdout.write(render_markdown(result))
    else:
        from rfcalc.suggest.render import rich_output

        out = console()
        with out.capture() as captured:   # without the table's trailing padding (logs, READMEs, diffs)
            out.print(rich_output(result))
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    if output is not None:
        if result.suggestions:
            _write(spec, output, result.suggestions[0].edits)
        else:
            typer.echo(f"{output}: not written ({'the spec already passes' if result.before.ok else 'no fix found'})",
                       err=True)
    raise typer.Exit(int(result.exit_code))


def _search(spec: Path, overrides: dict[str, Any], top: int, budget: int, max_edits: int,
            output: Path | None) -> SuggestResult:
    """Check the arguments, load the spec and its rules, search. Bad input raises SpecError / RfcalcError."""
    from rfcalc.analysis.checker import spec_constraints
    from rfcalc.analysis.load import load_spec
    from rfcalc.suggest.search import suggest as run_search
    from rfcalc.targets import is_code_target

    for flag, value in (("--top", top), ("--budget", budget), ("--max-edits", max_edits)):
        if value < 1:
            raise RfcalcError(f"{flag}: must be >= 1, got {value}")
    if is_code_target(str(spec)):
        raise RfcalcError(f"{spec}: suggest edits YAML specs; for a PyTorch module write one first with "
                          f"`rfcalc inspect {spec} --input 3x32x32 --to-spec net.yaml`")
    if output is not None:
        output_file("--output", output, YAML)
    loaded = load_spec(spec)
    constraints, sources = spec_constraints(loaded, overrides=overrides or None)
    return run_search(loaded, constraints, sources=sources, top=top, budget=budget, max_edits=max_edits)


def _write(spec: Path, output: Path, edits: tuple[Edit, ...]) -> None:
    """The fix spliced into the spec's text, written atomically (a temporary file in the same folder, then a
    rename), so that ``-o SPEC`` never leaves half a spec behind."""
    import tempfile  # here: every command (a pre-commit `check` too) imports this module

    from rfcalc.spec.source import read_spec_text
    from rfcalc.suggest.yaml_patch import write_fix

    text, kept = write_fix(read_spec_text(spec), edits, str(spec))
    with writing("--output", output):
        # SIM115: the file outlives a `with` here (written and closed below, then renamed into place or removed)
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=output.parent,  # noqa: SIM115
                                             prefix=f".{output.name}.", suffix=".tmp", delete=False, newline="")
        try:
            with handle:
                handle.write(text)
            os.replace(handle.name, output)
        finally:
            Path(handle.name).unlink(missing_ok=True)
    typer.echo(f"wrote {output} (suggestion #1 applied)", err=True)
    if not kept:
        typer.echo(wrap_words(f"warning: {output}: the spec's comments and formatting could not be kept (YAML "
                              f"layout the splicer does not handle); the content is exact", plain_width()), err=True)
