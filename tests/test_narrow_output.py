"""Output read at 80 columns (issue 25): the live progress bar, the table's layer names."""
from __future__ import annotations

import pytest
from rich.console import Console
from rich.progress import Progress

from rfcalc.trainer.progress import EpochBar


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("epochs,total", [(1, 3), (20, 196), (200, 12_500)])
def test_the_progress_bar_is_never_cut(width: int, epochs: int, total: int) -> None:
    """Was at 80 columns: `epoch 1/1 ━━━━━ 3/3 loss 2.307  acc 12.9%  lr 0.0002  183 img/s 0:00… eta 0:00:…`."""
    console = Console(width=width, record=True, force_terminal=True)
    progress = Progress(*EpochBar(console, epochs).columns(epochs - 1, total, width), console=console,
                        auto_refresh=False)
    progress.add_task("train", total=total, completed=total - 1, loss=12.30712, acc=0.129, lr=1.2345e-05,
                      ips=123_456.0)
    console.print(progress.get_renderable())
    text = console.export_text().rstrip("\n")
    assert "…" not in text and "\n" not in text and len(text) <= width, text
    assert text.startswith(f"epoch {epochs}/{epochs} ━") and f"{total - 1}/{total} loss 12.307  acc 12.9%" in text
    assert text.endswith(" eta -:--:--"), text
    if width >= 120:  # room for everything; narrower, the elapsed time, then img/s and lr make room for the bar
        assert "lr 1.234e-05  123,456 img/s 0:00:00 eta" in text


@pytest.mark.parametrize("spec", ["arch_specs/custom_resnet.yaml", "arch_specs/two_branch_dilated.yaml",
                                  "examples/quickstart.yaml"])
def test_layer_names_do_not_wrap_at_80_columns(spec: str) -> None:
    """Was: 'res1.body.' over 'conv.0' at 80 columns while 'start' was already hidden; columns go first."""
    import rfcalc
    from rfcalc.render.report import rich_table

    report = rfcalc.analyze(spec)
    console = Console(width=80, record=True)
    console.print(rich_table(report))
    lines = console.export_text().splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("─")) + 1:]
    first_cells = [line.split(" ")[0] for line in body if line.strip()]
    names = {row.name for row in report.rows}
    assert [cell for cell in first_cells if cell not in names and not cell.startswith("hidden")] == []


def test_the_lowest_class_is_marked_only_when_classes_differ() -> None:
    """Issue 25: every class tied at 0% was marked '(lowest)'."""
    from rfcalc.trainer.progress import class_table

    def marked(per_class: list[float]) -> list[str]:
        console = Console(width=80, record=True)
        console.print(class_table(["a", "b", "c"], per_class, [10, 10, 10]))
        return [line.split()[1] for line in console.export_text().splitlines() if "(lowest)" in line]

    assert marked([0.0, 0.0, 0.0]) == [] and marked([0.5, 0.5, 0.5]) == []
    assert marked([0.2, 0.9, 0.2]) == ["a", "c"] and marked([0.2, 0.9, 0.5]) == ["a"]


@pytest.mark.parametrize("epochs", [1, 2, 3, 40])
def test_curves_tick_whole_epochs(epochs: int) -> None:
    """Issue 25: the curves of a 1-epoch run were ticked 0.945 … 1.05."""
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from rfcalc.trainer.plots import curves_figure
    from rfcalc.trainer.state import EpochRow

    rows = [EpochRow(e, 0.1, 2.0 / e, 0.1 * e / epochs, 2.1 / e, 0.1 * e / epochs, 1000.0, 1.0, float(e), float(e))
            for e in range(1, epochs + 1)]
    fig = curves_figure(rows, [0.1] * (5 * epochs), "t")
    FigureCanvasAgg(fig).draw()
    for axis in fig.axes[:2]:  # loss and accuracy against the epoch
        low, high = axis.get_xlim()
        ticks = [t for t in axis.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert low < 1 and high > epochs
