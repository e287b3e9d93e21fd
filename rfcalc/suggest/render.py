"""`suggest` output for people: rich (terminal) and Markdown. Pure formatting of a :class:`SuggestResult`; the
JSON form is ``SuggestResult.to_dict()``."""
from __future__ import annotations

import textwrap
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rfcalc.lines import wrap_parts
from rfcalc.quantities import count, format_number, format_pair
from rfcalc.spec.source import dotted
from rfcalc.suggest.edits import Change, Edit, EditKind, Op
from rfcalc.suggest.result import Status, Suggestion, SuggestResult
from rfcalc.suggest.yaml_patch import format_value

RANKING = ("no layer starved, then fewest edits, output size kept, smallest |Δparams|, smallest |ΔMACs|")


def _signed(value: int) -> str:
    return ("+" if value >= 0 else "-") + format_number(abs(value))


def _size(shape: Any) -> str:
    shape = list(shape)
    return "x".join(str(v) for v in (shape[1:] if len(shape) == 3 else shape))


def change_text(edit: Edit, change: Change) -> str:
    """One change relative to its layer: 'dilation 1 → 2', 'ceil_mode removed'."""
    field = dotted(change.key[len(edit.site):]) if change.key[:len(edit.site)] == edit.site else change.path
    if change.op is Op.REMOVE:
        return f"{field} removed"
    if change.op is Op.ADD and (change.old is None or change.old == change.value):
        return f"{field} {format_value(change.value)}"   # a new field, or one made explicit
    return f"{field} {format_value(change.old)} → {format_value(change.value)}"


def edit_lines(edit: Edit) -> list[str]:
    """An edit as a heading (where, which layer) and one line per change."""
    where = f"{edit.site_path} ({edit.label})" if edit.label and edit.label != edit.site_path else edit.site_path
    if edit.kind is EditKind.INSERT:
        return [f"insert at {edit.site_path}:", *_flow_lines(format_value(edit.changes[0].value))]
    if edit.kind is EditKind.REMOVE:
        return [f"remove {where}"]
    return [f"{where}:"] + [change_text(edit, c) for c in edit.changes]


def _flow_lines(text: str, width: int = 34) -> list[str]:
    """A YAML flow mapping on lines of about ``width`` characters, broken after a comma, the lines after the
    first indented past its brace ('{op: conv, k: 3,' over ' padding: 4}'): a table cell rich need not wrap."""
    return wrap_parts(text.split(", "), width, indent=" ")


def edit_text(edit: Edit) -> str:
    """An edit in one line."""
    if edit.kind is EditKind.INSERT:
        return f"insert at {edit.site_path}: {format_value(edit.changes[0].value)}"
    head, *rest = edit_lines(edit)
    return f"{head} {', '.join(rest)}" if rest else head


def output_text(suggestion: Suggestion) -> str:
    if suggestion.output_size_kept:
        return "kept"
    return f"{_size(suggestion.before.final_map)}→{_size(suggestion.after.final_map)}"


def header_lines(result: SuggestResult) -> list[str]:
    verdict = "ok" if result.before.ok else "FAIL"
    lines = [f"{result.file} ({result.name}): {verdict}"]
    lines += [f"  {rule.message}" for rule in result.before.rules if not rule.ok]
    return lines


def search_lines(result: SuggestResult) -> list[str]:
    """What the search tried, for a result without a fix."""
    stats = result.search
    why = "the search budget ran out" if stats.budget_spent else "no candidate passed every rule"
    lines = [f"no fix of up to {stats.max_edits} edits found: {why}",
             f"  {stats.evaluations:,} of {stats.budget:,} evaluations; beam {stats.beam}"]
    for level in stats.levels:
        plural = "s" if level.edits > 1 else ""
        lines.append(f"  {level.edits} edit{plural}: {level.evaluations:,} specs from {level.states} start"
                     f"{'s' if level.states > 1 else ''}, {level.partials} partial fixes")
    if stats.kinds:
        lines += textwrap.wrap(f"edit kinds tried: {', '.join(stats.kinds)}", 78, initial_indent="  ",
                               subsequent_indent="    ")
    lines += [f"  no edit kind works on: {rule}" for rule in stats.unreachable]
    if result.best_partial is not None:
        best = result.best_partial
        lines.append(f"  closest ({len(best.edits)} edit{'s' if len(best.edits) > 1 else ''}):")
        lines += [f"    {line}" for edit in best.edits for line in _indented(edit_lines(edit))]
        lines.append("  which leaves:")
        lines += [f"    {r.message}" for r in best.after.rules if not r.ok]
    if len(stats.unreachable) == len(result.failed):
        lines.append("  suggest has no edit for these rules: change the spec by hand")
    else:
        lines.append("  try a larger --budget or --max-edits, or relax a rule")
    return lines


def _indented(lines: list[str]) -> list[str]:
    return [line if i == 0 else f"  {line}" for i, line in enumerate(lines)]


def _rows(result: SuggestResult, one_line: bool) -> list[tuple[str, ...]]:
    def edits(s: Suggestion) -> str:
        if one_line:
            return "\n".join(edit_text(e) for e in s.edits)
        return "\n".join(line for e in s.edits for line in _indented(edit_lines(e)))

    return [(str(i + 1), edits(s), _signed(s.delta_params), _signed(s.delta_macs), format_pair(list(s.after.rf)),
             output_text(s)) for i, s in enumerate(result.suggestions)]


def _after_lines(result: SuggestResult) -> list[str]:
    top = result.suggestions[0]
    lines = [f"after #1 every rule passes (params {format_number(top.after.params)}, MACs "
             f"{format_number(top.after.macs)}):"]
    lines += [f"  {rule.message}" for rule in top.after.rules]
    lines += [f"  {d.severity}: {d.path}: {d.message}" for d in top.new_diagnostics]
    return lines


def _summary(result: SuggestResult) -> str:
    n = len(result.suggestions)
    edits = len(result.suggestions[0].edits)
    spent = "\n  the search budget ran out: a smaller fix may exist" if result.search.budget_spent else ""
    return (f"{count(n, 'fix', 'fixes')} of {count(edits, 'edit')} (each passes every rule), "
            f"best first; {result.search.evaluations:,} specs evaluated{spent}")


def _passes_lines(result: SuggestResult) -> list[str]:
    if not result.before.rules:
        return [f"{result.file} ({result.name}): no constraints, nothing to fix: add `constraints:` to the spec, "
                "[tool.rfcalc.constraints] to pyproject.toml, or flags such as --rf '>44'"]
    return [f"{result.file} ({result.name}): ok, every rule already passes; nothing to change"] + \
        [f"  {rule.message}" for rule in result.before.rules]


def rich_output(result: SuggestResult) -> RenderableType:
    if result.status is Status.PASSES:
        return Text("\n".join(_passes_lines(result)))
    if result.status is Status.NOT_FOUND:
        return Text("\n".join(header_lines(result) + search_lines(result)))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("edits", overflow="fold")
    for name in ("Δparams", "ΔMACs", "RF", "output"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in _rows(result, one_line=False):
        table.add_row(*row)
    return Group(Text("\n".join(header_lines(result) + [_summary(result)])), table,
                 Text("\n".join(_after_lines(result))))


def render_markdown(result: SuggestResult) -> str:
    if result.status is Status.PASSES:
        return "\n".join(_passes_lines(result)) + "\n"
    if result.status is Status.NOT_FOUND:
        return "\n".join(header_lines(result) + search_lines(result)) + "\n"
    lines = [f"**{line.strip()}**" if i == 0 else f"- {line.strip()}" for i, line in enumerate(header_lines(result))]
    lines += ["", _summary(result), "", "| # | edits | Δparams | ΔMACs | RF | output |", "|---|---|---|---|---|---|"]
    for row in _rows(result, one_line=True):
        cells = [cell.replace("|", "\\|").replace("\n", "<br>") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    after = _after_lines(result)
    lines += ["", after[0]] + [f"- {line.strip()}" for line in after[1:]]
    return "\n".join(lines) + "\n"
