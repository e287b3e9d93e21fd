"""The results table of a sweep: text for people (within 80 columns: each trial's note wraps under its line),
markdown (with the value of every dimension, for a README), csv and json (everything). Formatting only."""
from __future__ import annotations

import csv
import io
import json
import textwrap
from typing import Any

from rfcalc.quantities import format_number
from rfcalc.sweep.outcome import Outcome
from rfcalc.sweep.results import Results, TrialRow
from rfcalc.table.formats import TableFormat

STAR = "★"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def short_count(value: int | None) -> str:
    """29,000,000 -> '29.0M'; 12,345 -> '12.3k'."""
    if value is None:
        return "-"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def rf_text(rf: tuple[int, ...] | None) -> str:
    if not rf:
        return "-"
    return str(rf[0]) if len(set(rf)) == 1 else "x".join(str(v) for v in rf)


def value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cells(row: TrialRow) -> list[str]:
    return [f"{row.number}{' ' + STAR if row.front else ''}", row.outcome.value, percent(row.accuracy),
            "-" if row.params is None else format_number(row.params), rf_text(row.rf), short_count(row.macs),
            duration(row.seconds)]


DONE = (Outcome.complete, Outcome.pruned, Outcome.rejected, Outcome.failed)  # ended, and counted towards `trials`
HEADERS = ["trial", "state", "accuracy", "params", "RF", "MACs", "time"]


def summary_lines(results: Results) -> list[str]:
    ended = [o for o in DONE if results.count(o)]
    done = sum(results.count(o) for o in ended)
    under_way = [f"{results.count(o)} {word}" for o, word in ((Outcome.running, "running"), (Outcome.waiting, "queued"))
                 if results.count(o)]
    again = [f"{results.count(o)} {o.value}" for o in (Outcome.interrupted, Outcome.lost) if results.count(o)]
    if not (ended or under_way or again):
        lines = [f"{results.study}: no trials yet"]
    else:  # the parenthesis adds up to `done`; what does not count towards the budget is said apart
        lines = [f"{results.study}: {done} of {results.trials} trials done"
                 + (" (" + ", ".join(f"{results.count(o)} {o.value}" for o in ended) + ")" if ended else "")
                 + ("; " + ", ".join(under_way) if under_way else "")
                 + ("; not counted: " + ", ".join(again) + " (each queued again as a new trial)" if again else "")]
    best = results.best
    if best is not None:
        values = ", ".join(f"{k}={value_text(v)}" for k, v in best.values.items())
        lines.append(f"best: trial {best.number}, {percent(best.accuracy)} after {best.epochs} epoch(s), "
                     f"{format_number(best.params or 0)} params, RF {rf_text(best.rf)}: {values}")
    if any(r.front for r in results.rows):
        lines.append(f"{STAR} = Pareto front of accuracy vs {results.second} (complete trials)")
    if results.hidden:
        lines.append(f"({results.hidden} surplus trial(s), started as the budget filled, were not run)")
    return lines


def text_table(results: Results, width: int = 80) -> str:
    """The table for people: one line per trial in aligned columns, its note wrapped on the lines below it
    (indented), so that it reads within ``width`` columns (80 by default) without hiding a number."""
    rows = [_cells(row) for row in results.rows]
    widths = [max([len(HEADERS[i])] + [len(cells[i]) for cells in rows]) for i in range(len(HEADERS))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [f"sweep {results.study}", line(HEADERS), "  ".join("-" * w for w in widths)]
    indent = " " * (widths[0] + 2)
    for row, cells in zip(results.rows, rows):
        out.append(line(cells))
        clauses = row.note.split("; ") if row.note else []
        for k, clause in enumerate(clauses):  # one failed rule per line where it fits
            text = clause + (";" if k < len(clauses) - 1 else "")
            out += textwrap.wrap(text, max(20, width - len(indent)), initial_indent=indent,
                                 subsequent_indent=indent, break_on_hyphens=False)
    return "\n".join(out) + "\n"


def people_text(results: Results, width: int = 80) -> str:
    """The table, then the summary (each line wrapped to ``width``)."""
    summary = [textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False)
               for line in summary_lines(results)]
    return text_table(results, width) + "\n" + "\n".join(summary) + "\n"


def markdown(results: Results) -> str:
    headers = HEADERS + list(results.dimensions) + ["note"]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for row in results.rows:
        cells = _cells(row) + [value_text(row.values[d]) if d in row.values else "-" for d in results.dimensions]
        cells.append(row.note.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"{line}  " for line in summary_lines(results)) + "\n"


def csv_text(results: Results) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", "accuracy", "epochs", "params", "macs", "rf_h", "rf_w", "seconds", "pareto",
                     *results.dimensions, "note", "host", "folder"])
    for r in results.rows:
        rf = list(r.rf) if r.rf else ["", ""]
        writer.writerow([r.number, r.outcome.value, "" if r.accuracy is None else r.accuracy, r.epochs or "",
                         "" if r.params is None else r.params, "" if r.macs is None else r.macs, *rf,
                         "" if r.seconds is None else r.seconds, int(r.front),
                         *(r.values.get(d, "") for d in results.dimensions), r.note, r.host or "", r.folder or ""])
    return buffer.getvalue()


def render_text(results: Results, fmt: TableFormat) -> str:
    """markdown, csv or json as text (``rich``, for people, is :func:`text_table`)."""
    if fmt is TableFormat.markdown:
        return markdown(results)
    if fmt is TableFormat.csv:
        return csv_text(results)
    return json.dumps(results.to_dict(), indent=2, ensure_ascii=False) + "\n"
