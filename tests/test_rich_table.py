"""The default (rich) table on a real terminal: 80, 100 and 120 columns, every number it shows visible.

Golden files per width: tests/golden/rich/<spec>.<width>.txt. Regenerate after an intended change with::

    RFCALC_UPDATE_GOLDEN=1 pytest tests/test_rich_table.py
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from conftest import ROOT
from rich.console import Console

import rfcalc
from rfcalc.cli.app import app
from rfcalc.render.report import ReportTable, fold, rich_table, wrap_name
from rfcalc.spec.random_specs import valid_specs

GOLDEN = Path(__file__).resolve().parent / "golden" / "rich"
UPDATE = os.environ.get("RFCALC_UPDATE_GOLDEN") == "1"
BUNDLED = sorted([*(ROOT / "arch_specs").glob("*.yaml"), ROOT / "examples" / "quickstart.yaml",
                  ROOT / "tests" / "specs" / "every_op.yaml", ROOT / "bench" / "resnet50.yaml"])
WIDTHS = (80, 100, 120)


def render(report: rfcalc.Report, width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=False)
    console.print(rich_table(report))
    return buffer.getvalue()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", ["examples/quickstart.yaml", "arch_specs/custom_resnet.yaml"])
def test_rich_table_matches_golden(runner, monkeypatch, spec, width):
    monkeypatch.setenv("COLUMNS", str(width))
    result = runner.invoke(app, ["table", spec])
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{Path(spec).stem}.{width}.txt"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8"), (
        f"COLUMNS={width} rfcalc table {spec} differs from {golden.relative_to(ROOT)}; if the change is intended, "
        "rerun with RFCALC_UPDATE_GOLDEN=1")


# What each header shows, computed here from the JSON report (not with the renderer's helpers).
def _pair(values: list) -> str:
    return "-" if values is None else (_number(values[0]) if values[0] == values[1] else
                                       "x".join(_number(v) for v in values))


def _number(value: int | float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _shape(values: list | None) -> str:
    return "-" if values is None else "x".join(str(v) for v in values)


CELLS = {
    "op": lambda row, line: line.label,
    "in": lambda row, line: (f"({'+'.join(str(s[0]) for s in row['in_shapes'])})x{row['in_shapes'][0][1]}x"
                             f"{row['in_shapes'][0][2]}" if row["op"] == "concat" else
                             _shape(row["in_shape"] or (row.get("in_shapes") or [None])[0])),
    "out": lambda row, line: _shape(list(line.out_shape)),
    "k s p d": lambda row, line: " ".join(_pair(row[f]) for f in ("kernel", "stride", "padding", "dilation")),
    "k": lambda row, line: _pair(row["kernel"]), "s": lambda row, line: _pair(row["stride"]),
    "p": lambda row, line: _pair(row["padding"]), "d": lambda row, line: _pair(row["dilation"]),
    "g": lambda row, line: "-" if row["groups"] is None else _number(row["groups"]),
    "jump": lambda row, line: _pair(row["jump_out"]),
    "RF": lambda row, line: _pair(row["rf_out"]) + (" · global" if row["global"] else ""),
    "start": lambda row, line: _pair(row["start_out"]), "params": lambda row, line: _number(line.params),
    "MACs": lambda row, line: _number(row["macs"]),
}
HEADERS = ["#", "layer", *CELLS]


def assert_every_number_visible(report: rfcalc.Report, width: int) -> list[str]:
    """The table at ``width`` columns: no line wider, no '…', and every cell of every shown column whole, in
    order, on its row's line (a long name may go on over the lines below). Returns the headers shown."""
    text = render(report, width)
    lines = text.splitlines()
    assert "…" not in text
    assert all(len(line) <= width for line in lines), text
    totals = report.to_dict()["totals"]
    summary = (f"{report.name}: params {_number(report.params)}, MACs {_number(report.macs)}, "
               f"RF {_pair(totals['rf'])}{' · global' if totals['global'] else ''}, "
               f"jump {_pair(list(report.output.geo_out.jump))}, output {_shape(list(report.output.out_shape))}")
    n_summary = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("#", "layer")))
    assert (n_summary == 1) == (len(summary) <= width), text  # broken after a comma only when it must be
    assert " ".join(line.strip() for line in lines[:n_summary]) == summary, text
    lines = lines[n_summary - 1:]
    header = lines[1]
    shown = re.split(r"\s{2,}", header.strip())  # columns are at least two spaces apart
    assert shown == [h for h in HEADERS if h in shown], (shown, header)
    op_at = header.index("op")  # layer and op are left-justified: their cells start under their headers
    body: list[tuple[str, list[str], list[str]]] = []  # per row: its line, the rest of its name and of its op
    for line in lines[3:]:
        if line.startswith("hidden at"):
            break
        if len(line.split()) <= 2 and body:  # a row's first line has every number; this one goes on its name/op
            body[-1][1].append(line[:op_at].strip())
            body[-1][2].append(line[op_at:].strip())
        else:
            body.append((line, [], []))
    folded = fold(report)
    assert len(body) == len(folded), text
    rows = {row["name"]: row for row in report.to_dict()["layers"]}
    for i, (line, (first, names, ops)) in enumerate(zip(folded, body)):
        row = rows[line.row.name]
        name_start = first[:op_at].split()[-1]
        op_start = first[op_at:].split()[0]
        assert name_start + "".join(names) == row["name"], (first, names)
        assert op_start + "".join(ops) == line.label, (first, ops)
        cells = ([str(i)] if "#" in shown else []) + [name_start, op_start]
        cells += [CELLS[h](row, line) for h in shown if h not in ("#", "layer", "op")]
        assert re.fullmatch(r"\s*" + r"\s+".join(map(re.escape, cells)) + r"\s*", first), (cells, first)
    return shown


@pytest.mark.parametrize("spec", BUNDLED, ids=lambda p: p.stem)
def test_every_number_shown_at_80_columns_is_whole(spec):
    report = rfcalc.analyze(spec)
    shown = assert_every_number_visible(report, 80)
    assert {"layer", "op", "out", "jump", "RF", "params"} <= set(shown), shown


@pytest.mark.slow
def test_every_number_visible_on_random_specs():
    for seed, spec in valid_specs(40):
        for width in WIDTHS:
            try:
                assert_every_number_visible(spec.report, width)
            except AssertionError as exc:
                raise AssertionError(f"random_spec({seed}) at {width} columns: {exc}") from None


def test_wide_terminals_show_every_column():
    for spec in ("examples/quickstart.yaml", "arch_specs/custom_resnet.yaml"):
        shown = assert_every_number_visible(rfcalc.analyze(ROOT / spec), 120)
        assert shown == HEADERS[:3] + ["in", "out", "k", "s", "p", "d", "g", "jump", "RF", "start", "params",
                                       "MACs"], (spec, shown)


def test_what_is_hidden_is_said():
    report = rfcalc.analyze(ROOT / "arch_specs" / "custom_resnet.yaml")
    assert render(report, 80).splitlines()[-1] == ("hidden at 80 columns: in, g, start, MACs (wider terminal, or "
                                                   "--format csv/json)")
    assert "hidden" not in render(report, 120)


def test_the_layout_narrows_step_by_step():
    report = rfcalc.analyze(ROOT / "arch_specs" / "custom_resnet.yaml")
    table = ReportTable(report)
    laid_out = [table.layout_for(width) for width in (120, 100, 80, 70, 60)]
    assert [layout.hidden() for layout, _, _ in laid_out] == [[], ["in", "MACs"], ["in", "g", "start", "MACs"],
                                                             ["in", "g", "start", "MACs"],
                                                             ["in", "g", "start", "MACs"]]
    # at 80 columns no name wraps ('start' and 'g' are left out first; issue 25); op labels ('conv+bn+relu') wrap at
    # their '+' before names wrap at their dots, the last resort
    assert [wraps for _, *wraps in laid_out] == [[None, None], [None, None], [None, None], [11, 7], [7, 7]]
    assert_every_number_visible(report, 70)  # wrapped names and ops, every number whole
    assert re.search(r"^prep +conv\+ .*\n +bn\+relu *$", render(report, 70), re.M), render(report, 70)


@pytest.mark.slow
def test_the_width_reckoned_is_richs_own():
    """The layout is chosen by adding up column widths (cheap); rich's measurement of each table agrees exactly."""
    from rich.measure import Measurement

    from rfcalc.render.report import _layouts

    console = Console(file=io.StringIO(), width=10_000)
    for spec in BUNDLED:
        table = ReportTable(rfcalc.analyze(spec))
        for layout in _layouts():
            for name_width in (None, 12):
                measured = Measurement.get(console, console.options, table.table(layout, name_width)).maximum
                assert table.width_of(layout, name_width) == measured, (spec.stem, layout, name_width)


def test_long_names_wrap_at_dots_evenly():
    assert wrap_name("res1.body.conv.0", 15) == "res1.body.\nconv.0"
    assert wrap_name("res1.body.conv.0", 16) == "res1.body.conv.0"
    assert wrap_name("res1.body.conv.0", 6) == "res1.\nbody.\nconv.0"
    assert wrap_name("branches.0.conv1a", 12) == "branches.\n0.conv1a"
    assert wrap_name("averyveryverylongname", 5) == "averyveryverylongname"
    deep = ".".join(f"b{i}" for i in range(14))  # 14 parts: greedy lines
    assert wrap_name(deep, 12) == "b0.b1.b2.b3.\nb4.b5.b6.b7.\nb8.b9.b10.\nb11.b12.b13"


def test_train_prints_the_same_table(tmp_path, monkeypatch):
    """`rfcalc train` prints the table before it reads the data: a data set with the wrong number of classes stops
    it right after (exit 2), so no training is needed to see the table it prints."""
    import torch  # noqa: F401
    from train_helpers import run, spec_text, write_image_folder

    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(size=16, train="aug: fast"), encoding="utf-8")
    data = write_image_folder(tmp_path / "data", per_class=1, test_per_class=1, size=16, classes=3)
    result = run(["train", spec, "--data", data, "--out", tmp_path / "run"])
    assert result.exit_code == 2 and "3 classes" in result.stderr, result.output
    assert result.stdout == render(rfcalc.analyze(spec), 80)
