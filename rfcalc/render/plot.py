"""`rfcalc table SPEC --plot rf.png`: receptive field and feature-map size, layer by layer, as a picture.

Torch-free; needs matplotlib (the ``train`` extra), drawn with the Agg backend. The conv's own
norm, activation and dropout rows are left out: they change nothing that is drawn.
"""
from __future__ import annotations

import math
from pathlib import Path

from rfcalc.extras import missing
from rfcalc.quantities import format_number, format_pair
from rfcalc.table.report import Report, Row


def plotted_rows(report: Report) -> list[Row]:
    """The rows drawn: every row but the attached norm/act/dropout of a conv or a merge."""
    return [row for row in report.rows if row.attached_to is None]


def write_rf_plot(report: Report, path: str | Path, rf_line: float | None = None) -> Path:
    """Draw RF (top) and feature-map size (bottom) per layer, with the RF constraint as a line; returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing("matplotlib", "plot", "drawing a plot") from None

    rows = plotted_rows(report)
    labels = ["input", *(row.name for row in rows)]
    position = {name: i for i, name in enumerate(labels)}
    owner = {row.name: row.attached_to for row in report.rows if row.attached_to is not None}
    edges = [(position[_owner(src, owner)], i + 1) for i, row in enumerate(rows) for src in row.inputs]
    rf = [(1, 1), *(row.geo_out.rf for row in rows)]
    size = [tuple(report.input_shape[1:]), *(row.out_shape[1:] if row.is_feature_map else None for row in rows)]
    square = all(a == b for a, b in rf) and all(s is None or s[0] == s[1] for s in size)
    axes_names = ("",) if square else (" (h)", " (w)")

    width = min(40.0, max(8.0, 0.32 * len(labels)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for axis, suffix in enumerate(axes_names):
        style = {"color": ("tab:blue", "tab:cyan")[axis], "marker": "os"[axis], "linestyle": ("-", "--")[axis]}
        _graph(top, edges, [r[axis] for r in rf], f"RF{suffix}", style)
        style = {**style, "color": ("tab:green", "tab:olive")[axis]}
        _graph(bottom, edges, [math.nan if s is None else s[axis] for s in size], f"feature map{suffix}", style)
    if len(labels) <= 40:
        for i, (h, w) in enumerate(rf):
            top.annotate(format_pair((h, w)), (i, h), textcoords="offset points", xytext=(0, 5), ha="center",
                         fontsize=7, color="tab:blue")
    for n in sorted(set(report.input_shape[1:])):
        top.axhline(n, color="grey", linestyle=":", linewidth=1, label=f"input size {_shape(report.input_shape[1:])}"
                    if n == max(report.input_shape[1:]) else None)
    if rf_line is not None:
        top.axhline(rf_line, color="tab:red", linestyle="--", linewidth=1.5,
                    label=f"RF constraint {format_number(rf_line)}")
    top.set_ylabel("receptive field (input pixels)")
    top.set_ylim(bottom=0)
    top.set_title(f"{report.name}: RF {format_pair(report.rf)}, {format_number(report.params)} parameters",
                  fontsize="medium")
    top.grid(True, alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.set_ylabel("feature-map size (units)")
    bottom.set_ylim(bottom=0)
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="best", fontsize="small")
    bottom.set_xticks(range(len(labels)))
    bottom.set_xticklabels(labels, rotation=90, fontsize=8 if len(labels) < 60 else 6)
    bottom.set_xlim(-0.5, len(labels) - 0.5)

    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _owner(name: str, owner: dict[str, str]) -> str:
    """The plotted row behind ``name``: an attached row's conv or merge."""
    while name in owner:
        name = owner[name]
    return name


def _graph(axes: object, edges: list[tuple[int, int]], values: list[float], label: str,
           style: dict[str, str]) -> None:
    """Markers at every layer and a segment from each of its inputs (paths of a merge start at the split)."""
    for src, dst in edges:
        axes.plot([src, dst], [values[src], values[dst]], color=style["color"],  # type: ignore[attr-defined]
                  linestyle=style["linestyle"], linewidth=1.2)
    axes.plot(range(len(values)), values, linestyle="none", marker=style["marker"],  # type: ignore[attr-defined]
              markersize=4, color=style["color"], label=label)


def _shape(pair: tuple[int, ...]) -> str:
    """A feature-map size, written as PyTorch writes shapes: 32 or 16x64 (no thousands separator)."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
