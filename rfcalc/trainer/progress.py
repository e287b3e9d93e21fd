"""What a person sees: a rich progress bar per epoch (loss, accuracy, lr, images/s), one line per epoch,
and at the end a per-class accuracy table. The bar goes to stderr and disappears; the lines stay on stdout.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class EpochBar:
    """One transient bar per epoch; ``update`` takes already-synced Python numbers."""

    def __init__(self, console: Console, epochs: int) -> None:
        self.console, self.epochs = console, epochs
        self.progress: Progress | None = None
        self.task: Any = None

    def start(self, epoch: int, total: int, done: int) -> None:
        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(bar_width=30), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:5.1%}  lr {task.fields[lr]:.4g}  "
                       "{task.fields[ips]:,.0f} img/s"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=True, refresh_per_second=4)
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, loss=0.0, acc=0.0, lr=0.0, ips=0.0)

    def update(self, done: int, loss: float, acc: float, lr: float, ips: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done, loss=loss, acc=acc, lr=lr, ips=ips)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {row['epoch']:>{width}}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.3f} "
            f"acc {row['train_acc']:6.2%}  test loss {row['test_loss']:.3f} acc {row['test_acc']:6.2%}  "
            f"{row['images_per_s']:,.0f} img/s  {row['seconds']:.1f} s")


def class_table(classes: list[str], per_class: list[float], counts: list[int]) -> Table:
    table = Table()
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("", justify="left")
    worst = min(per_class) if per_class else 0.0
    for name, acc, count in zip(classes, per_class, counts):
        bar = "█" * int(round(acc * 20))
        table.add_row(name, f"{count:,}", f"{acc:.2%}" + (" (lowest)" if acc == worst and len(classes) > 1 else ""),
                      bar)
    return table
