"""Rendering of a report: rich, markdown, csv and json. Pure text; no computation beyond formatting.

Human tables fold a conv's own norm/act/dropout rows (``attached_to``) into the conv's line, the
way people write these tables by hand; csv and json keep one row per primitive op.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from fractions import Fraction
from enum import Enum
from typing import Any

from rich.table import Table

from rfcalc.quantities import format_number
from rfcalc.table.report import Report, Row, exact



class TableFormat(str, Enum):
    """How a report is printed: by `table`, `inspect` and every command that shows a report."""

    rich = "rich"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@dataclass(frozen=True)
class Line:
    """A display line: a row with its attached rows folded in."""

    row: Row
    label: str
    params: int
    out_shape: tuple[int, ...]


def fold(report: Report) -> list[Line]:
    lines: list[Line] = []
    for row in report.rows:
        parent = row.attached_to
        if parent and lines and lines[-1].row.name == parent:
            last = lines[-1]
            lines[-1] = Line(last.row, f"{last.label}+{row.op}", last.params + row.params, row.out_shape)
        else:
            lines.append(Line(row, row.op, row.params, row.out_shape))
    return lines


def axis(value: tuple[Any, Any] | None) -> str:
    """(3, 3) -> '3'; (3, 5) -> '3x5'; None -> '-'."""
    if value is None:
        return "-"
    a, b = (_num(v) for v in value)
    return a if a == b else f"{a}x{b}"


def _num(value: Any) -> str:
    if isinstance(value, Fraction):
        value = exact(value)
    return str(value)


def _spatial(shape: tuple[int, ...] | None) -> str:
    if shape is None or len(shape) != 3:
        return "-"
    return axis((shape[1], shape[2]))


def _channels(shape: tuple[int, ...] | None) -> str:
    """C of C x H x W and of a vector; D of a token sequence N x D (inspect)."""
    return "-" if shape is None else str(shape[-1] if len(shape) == 2 else shape[0])


def _in_channels(row: Row) -> str:
    shapes = row.in_shapes
    if shapes and row.op == "concat":
        return "+".join(str(s[0]) for s in shapes)
    return _channels(_in_shape(row))


def _in_text(row: Row) -> str:
    shape = _in_shape(row)
    if row.op == "concat" and shape is not None and len(shape) == 3:
        return f"({_in_channels(row)})x{shape[1]}x{shape[2]}"
    return _shape(shape)


def _in_shape(row: Row) -> tuple[int, ...] | None:
    if row.in_shape is not None:
        return row.in_shape
    shapes = row.in_shapes
    return tuple(shapes[0]) if shapes else None


def _nout(line: Line) -> str:
    if line.row.op == "gap":
        return "1"
    return _spatial(line.out_shape)


def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "x".join(str(s) for s in shape)


GLOBAL_MARK = "global"


def rf_cell(row: Row) -> str:
    """A row's RF as shown: the window one unit sees, and ``· global`` when every unit sees every input pixel
    (``195 · global``: the logits of a flatten -> linear head over a 195-pixel-window trunk)."""
    text = axis(row.geo_out.rf)
    return f"{text} · {GLOBAL_MARK}" if row.is_global else text


def summary_line(report: Report) -> str:
    out = report.output
    return (f"{report.name}: params {format_number(report.params)}, MACs {format_number(report.macs)}, "
            f"RF {rf_cell(out)}, jump {axis(out.geo_out.jump)}, output {_shape(out.out_shape)}")


MARKDOWN_HEADER = ("Operation", "nin", "in ch", "out ch", "padding", "kernel", "stride", "dilation", "nout", "jin",
                   "jout", "rin", "rout", "params")


def _markdown_cells(line: Line) -> list[str]:
    row = line.row
    in_shape = _in_shape(row)
    return [f"{row.name} ({line.label})", _spatial(in_shape), _in_channels(row), _channels(line.out_shape),
            axis(row.padding), axis(row.kernel), axis(row.stride), axis(row.dilation), _nout(line),
            axis(row.geo_in.jump), axis(row.geo_out.jump), axis(row.geo_in.rf), rf_cell(line.row),
            format_number(line.params)]


def render_markdown(report: Report) -> str:
    rows = [MARKDOWN_HEADER, tuple("---" for _ in MARKDOWN_HEADER)]
    rows += [tuple(_markdown_cells(line)) for line in fold(report)]
    text = "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
    diagnostics = "".join(f"\n> {d.severity}: {d.message}" for d in report.diagnostics)
    return f"{text}\n\n**{summary_line(report)}**{diagnostics}\n"


CSV_FIELDS = ("name", "op", "inputs", "in_shape", "out_shape", "kernel", "stride", "padding", "dilation", "groups",
              "jump_in", "jump_out", "rf_in", "rf_out", "start_in", "start_out", "params", "macs", "global")


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in report.to_dict()["layers"]:
        writer.writerow([_csv_cell(row[f]) for f in CSV_FIELDS])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "x".join(str(v) for v in value) if value and not isinstance(value[0], str) else " ".join(value)
    return str(value)


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def rich_table(report: Report) -> Table:
    table = Table(title=summary_line(report), title_justify="left", show_lines=False)
    for header, justify in (("#", "right"), ("layer", "left"), ("op", "left"), ("in", "right"), ("out", "right"),
                            ("k", "right"), ("s", "right"), ("p", "right"), ("d", "right"), ("g", "right"),
                            ("jump", "right"), ("RF", "right"), ("start", "right"), ("params", "right"),
                            ("MACs", "right")):
        table.add_column(header, justify=justify, no_wrap=header in ("layer", "op"))  # type: ignore[arg-type]
    for i, line in enumerate(fold(report)):
        row = line.row
        table.add_row(str(i), row.name, line.label, _in_text(row), _shape(line.out_shape), axis(row.kernel),
                      axis(row.stride), axis(row.padding), axis(row.dilation),
                      "-" if row.groups is None else str(row.groups), axis(row.geo_out.jump), rf_cell(row),
                      axis(row.geo_out.start), format_number(line.params), format_number(row.macs))
    return table


def render_text(report: Report, fmt: TableFormat) -> str:
    """The report as text in a plain-text format (``rich`` is a :class:`rich.table.Table`: :func:`rich_table`)."""
    renderers = {TableFormat.markdown: render_markdown, TableFormat.csv: render_csv, TableFormat.json: render_json}
    if fmt not in renderers:
        raise ValueError(f"{fmt.value} is not a plain-text format")
    return renderers[fmt](report)
