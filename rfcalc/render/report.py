"""Rendering of a report: rich, markdown, csv and json. Pure text; no computation beyond formatting.

Human tables fold a conv's own norm/act/dropout rows (``attached_to``) into the conv's line, the
way people write these tables by hand; csv and json keep one row per primitive op.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from rfcalc.lines import wrap_parts
from rfcalc.quantities import format_number, format_pair
from rfcalc.table.formats import TableFormat as TableFormat  # its own module: the CLI names it without rich
from rfcalc.table.report import Report, Row, exact


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
    """(3, 3) -> '3'; (3, 5) -> '3x5'; (10032, 10032) -> '10,032'; (Fraction(1, 2),) * 2 -> '0.5'; None -> '-'."""
    if value is None:
        return "-"
    return format_pair([exact(v) if isinstance(v, Fraction) else v for v in value])


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


def _summary_parts(report: Report) -> list[str]:
    out = report.output
    return [f"{report.name}: params {format_number(report.params)}", f"MACs {format_number(report.macs)}",
            f"RF {rf_cell(out)}", f"jump {axis(out.geo_out.jump)}", f"output {_shape(out.out_shape)}"]


def summary_line(report: Report) -> str:
    """The one-line summary above every table: params, MACs, the output's RF (and ``· global``), jump, shape."""
    return ", ".join(_summary_parts(report))


def summary_lines(report: Report, width: int) -> list[str]:
    """:func:`summary_line` on lines of at most ``width`` characters, broken after a comma (never inside a
    number); the lines after the first are indented by two spaces."""
    return wrap_parts(_summary_parts(report), width)


MARKDOWN_HEADER = ("Operation", "nin", "in ch", "out ch", "padding", "kernel", "stride", "dilation", "nout", "jin",
                   "jout", "rin", "rout", "params")


def _markdown_cells(line: Line) -> list[str]:
    row = line.row
    in_shape = _in_shape(row)
    return [f"{row.name} ({line.label})", _spatial(in_shape), _in_channels(row), _channels(line.out_shape),
            axis(row.padding), axis(row.kernel), axis(row.stride), axis(row.dilation), _nout(line),
            axis(row.geo_in.jump), axis(row.geo_out.jump), axis(row.geo_in.rf), rf_cell(row),
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


# ----------------------------------------------------------------------------------------------- the rich table
# A terminal is 80 to 120 columns wide and the full table of a real network needs ~115. Rather than let rich cut
# numbers to "…", the table picks the richest layout that fits: first the k/s/p/d columns fold into one cell, then
# the row index, the input shape (the line above's output, but for merges), MACs and the centre ("start") are left
# out, and long layer names wrap at their dots. What is left out is said under the table; csv and json have it all.


@dataclass(frozen=True)
class Layout:
    """Which columns the rich table shows, and how."""

    fold_kspd: bool = False
    index: bool = True
    in_shape: bool = True
    macs: bool = True
    start: bool = True
    groups: bool = True
    wrap_names: bool = False  # wrap the longest layer names at their dots, as little as makes the table fit
    wrap_ops: bool = False  # the last resort: wrap long op labels (conv+bn+leaky_relu+dropout) at their '+'

    def hidden(self) -> list[str]:
        """The report's columns this layout leaves out, for the note under the table."""
        return [name for name, shown in (("in", self.in_shape), ("g", self.groups), ("start", self.start),
                                         ("MACs", self.macs)) if not shown]


def _layouts() -> list[Layout]:
    """The layouts to try, richest first; each leaves out or folds one more thing than the one before."""
    # a layer name is what a user copies and greps: it wraps last, after columns are left out and op labels wrap
    steps: list[dict[str, bool]] = [{}, {"fold_kspd": True}, {"index": False}, {"in_shape": False},
                                    {"macs": False}, {"start": False}, {"groups": False}, {"wrap_ops": True},
                                    {"wrap_names": True}]
    layouts, fields = [], {}
    for step in steps:
        fields.update(step)
        layouts.append(Layout(**fields))
    return layouts


def _parts(text: str, sep: str = ".") -> list[str]:
    """'res1.body.conv.0' -> ['res1.', 'body.', 'conv.', '0']: where a long name (or, at '+', an op label) may
    wrap."""
    parts = text.split(sep)
    return [part + sep for part in parts[:-1]] + [parts[-1]]


def wrap_name(name: str, width: int | None, sep: str = ".") -> str:
    """A layer name on as few lines of at most ``width`` characters as its dots allow, the lines as even as can be
    ('res1.body.conv.0' at 15: 'res1.body.' over 'conv.0'). A part longer than ``width`` keeps a line of its own.
    With ``sep="+"``, the same for an op label ('conv+bn+' over 'relu')."""
    parts = _parts(name, sep)
    if width is None or len(name) <= width or len(parts) == 1:
        return name
    if len(parts) > 12:  # deeply nested names: greedy lines (the even split below tries every cut)
        return "\n".join(wrap_parts(parts, width, sep="", indent=""))
    best: list[str] = parts
    for lines in range(2, len(parts) + 1):
        splits = [[''.join(parts[a:b]) for a, b in zip((0, *cuts), (*cuts, len(parts)))]
                  for cuts in itertools.combinations(range(1, len(parts)), lines - 1)]
        fitting = [split for split in splits if max(map(len, split)) <= width]
        if fitting:
            best = min(fitting, key=lambda split: max(map(len, split)))
            break
    return "\n".join(best)


def _kspd(row: Row) -> str:
    return " ".join(axis(value) for value in (row.kernel, row.stride, row.padding, row.dilation))


def _groups(row: Row) -> str:
    return "-" if row.groups is None else format_number(row.groups)


# The cell of every column the rich table can show, for a folded line and its index.
_CELLS: dict[str, Any] = {
    "#": lambda i, line: str(i),
    "op": lambda i, line: line.label,
    "in": lambda i, line: _in_text(line.row),
    "out": lambda i, line: _shape(line.out_shape),
    "k s p d": lambda i, line: _kspd(line.row),
    "k": lambda i, line: axis(line.row.kernel),
    "s": lambda i, line: axis(line.row.stride),
    "p": lambda i, line: axis(line.row.padding),
    "d": lambda i, line: axis(line.row.dilation),
    "g": lambda i, line: _groups(line.row),
    "jump": lambda i, line: axis(line.row.geo_out.jump),
    "RF": lambda i, line: rf_cell(line.row),
    "start": lambda i, line: axis(line.row.geo_out.start),
    "params": lambda i, line: format_number(line.params),
    "MACs": lambda i, line: format_number(line.row.macs),
}
_LEFT = ("layer", "op")
_GAP = 2  # between two columns: one space of padding and the (blank) divider of box.SIMPLE_HEAD


def _headers(layout: Layout) -> list[str]:
    """The columns of ``layout``, in order."""
    headers = ["#"] if layout.index else []
    headers += ["layer", "op"] + (["in"] if layout.in_shape else []) + ["out"]
    headers += ["k s p d"] if layout.fold_kspd else ["k", "s", "p", "d"]
    headers += (["g"] if layout.groups else []) + ["jump", "RF"] + (["start"] if layout.start else [])
    return headers + ["params"] + (["MACs"] if layout.macs else [])


def _text_width(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


class ReportTable:
    """The rich table of a report, laid out for the width it is printed at (see :class:`Layout`)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.lines = fold(report)
        self.names = [line.row.name for line in self.lines]
        self.cells = {header: [cell(i, line) for i, line in enumerate(self.lines)] for header, cell in _CELLS.items()}
        # With a global row, the RF column is "53 · global" over "   3": the windows right-aligned among
        # themselves, the marks after them (rich strips a cell's trailing spaces, so the column is left-aligned)
        self.global_rows = any(line.row.is_global for line in self.lines)
        if self.global_rows:
            windows = [axis(line.row.geo_out.rf) for line in self.lines]
            wide = max(map(len, windows))
            self.cells["RF"] = [f"{window:>{wide}}" + (f" · {GLOBAL_MARK}" if line.row.is_global else "")
                                for window, line in zip(windows, self.lines)]
        self.widths = {header: max(_text_width(text) for text in [header, *cells])
                       for header, cells in self.cells.items()}

    def _name_column(self, name_width: int | None) -> list[str]:
        return [wrap_name(name, name_width) for name in self.names]

    def _op_column(self, op_width: int | None) -> list[str]:
        return [wrap_name(label, op_width, "+") for label in self.cells["op"]]

    def width_of(self, layout: Layout, name_width: int | None = None, op_width: int | None = None) -> int:
        """How wide the table of ``layout`` is, names wrapped to ``name_width`` and op labels to ``op_width``
        (the sum of its columns)."""
        headers = _headers(layout)
        names = max(_text_width(text) for text in ["layer", *self._name_column(name_width)])
        ops = max(_text_width(text) for text in ["op", *self._op_column(op_width)])
        widths = {**self.widths, "layer": names, "op": ops}
        return sum(widths[h] for h in headers) + _GAP * (len(headers) - 1)

    def layout_for(self, width: int) -> tuple[Layout, int | None, int | None]:
        """The richest layout whose table fits ``width`` columns (the last one when none does), and the widths the
        layer names and op labels are wrapped to (None: not wrapped)."""
        longest = max(map(len, self.names))
        shortest = max(len(part) for name in self.names for part in _parts(name))
        ops_longest = max(map(len, self.cells["op"]))
        ops_shortest = max(len(part) for label in self.cells["op"] for part in _parts(label, "+"))
        for layout in _layouts():
            excess = self.width_of(layout) - width
            if excess <= 0:
                return layout, None, None
            if layout.wrap_names:  # op labels wrapped as far as they go, then names as little as makes it fit
                excess = self.width_of(layout, None, ops_shortest) - width
                name_width = max(shortest, longest - excess)
                if self.width_of(layout, name_width, ops_shortest) <= width:
                    return layout, name_width, ops_shortest
            elif layout.wrap_ops:
                op_width = max(ops_shortest, ops_longest - excess)
                if self.width_of(layout, None, op_width) <= width:
                    return layout, None, op_width
        return layout, shortest, ops_shortest

    def table(self, layout: Layout, name_width: int | None, op_width: int | None = None) -> Table:
        """The rich table of ``layout``, names wrapped to ``name_width`` and op labels to ``op_width``."""
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                      header_style="bold")
        headers = _headers(layout)
        special = {"layer": self._name_column(name_width), "op": self._op_column(op_width)}
        columns = [special[h] if h in special else self.cells[h] for h in headers]
        for header in headers:
            left = header in _LEFT or (header == "RF" and self.global_rows)
            table.add_column(header, justify="left" if left else "right", overflow="fold")
        for row in zip(*columns):
            table.add_row(*row)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        layout, name_width, op_width = self.layout_for(options.max_width)
        for line in summary_lines(self.report, options.max_width):
            yield Text(line)
        yield self.table(layout, name_width, op_width)
        hidden = layout.hidden()
        if hidden:
            yield Text(f"hidden at {options.max_width} columns: {', '.join(hidden)} (wider terminal, or "
                       f"--format csv/json)", style="dim")


def rich_table(report: Report) -> ReportTable:
    """The report for a terminal: the summary line, then the widest table that fits (rich renderable)."""
    return ReportTable(report)


def render_text(report: Report, fmt: TableFormat) -> str:
    """The report as text in a plain-text format (``rich`` is a renderable for a console: :func:`rich_table`)."""
    renderers = {TableFormat.markdown: render_markdown, TableFormat.csv: render_csv, TableFormat.json: render_json}
    if fmt not in renderers:
        raise ValueError(f"{fmt.value} is not a plain-text format")
    return renderers[fmt](report)
