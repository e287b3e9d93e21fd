"""What a person sees: a rich progress bar per epoch (loss, accuracy, lr, images/s), one line per epoch,
and at the end a per-class accuracy table. The bar goes to stderr and disappears; the lines stay on stdout.

When stderr is not a terminal (a CI log, ``nohup``, a pipe) the bar becomes a plain line every 10% of the
epoch, so a log shows progress inside long epochs too.
"""
from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rfcalc.lines import print_parts
from rfcalc.trainer.state import EpochRow

PLAIN_EVERY = 0.10  # a plain progress line every 10% of an epoch when stderr is not a terminal


class EpochBar:
    """One transient bar per epoch; ``update`` takes already-synced Python numbers."""

    def __init__(self, console: Console, epochs: int, every: float = PLAIN_EVERY) -> None:
        self.console, self.epochs, self.every = console, epochs, every
        self.plain = not console.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None
        self.epoch = self.total = self.first = 0
        self.next_mark = 0
        self.started = 0.0

    def start(self, epoch: int, total: int, done: int) -> None:
        if self.plain:
            self.epoch, self.total, self.first, self.started = epoch, total, done, time.perf_counter()
            self.next_mark = self._mark_after(done)
            return
        self.progress = Progress(*self.columns(epoch, total, self.console.width), console=self.console,
                                 transient=True, refresh_per_second=4)
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, loss=0.0, acc=0.0, lr=0.0, ips=0.0)

    def columns(self, epoch: int, total: int, width: int) -> list[Any]:
        """The bar's columns for a console ``width`` wide: the bar narrows (30 to 10 cells), then the elapsed
        time, images/s and lr are left out in that order (the epoch's line gives them), so that nothing is cut."""
        head = f"epoch {epoch + 1}/{self.epochs}"
        fields = [("loss {task.fields[loss]:.3f}", 11), ("acc {task.fields[acc]:5.1%}", 10),
                  ("lr {task.fields[lr]:.4g}", 12), ("{task.fields[ips]:,.0f} img/s", 14)]
        elapsed = True
        while True:  # columns are one space apart; each field's room is its widest usual text
            stats = "  ".join(text for text, _ in fields)
            fixed = (len(head) + 1 + (2 * len(str(total)) + 1) + 1 + sum(n for _, n in fields) + 2 * (len(fields) - 1)
                     + (8 if elapsed else 0) + 1 + len("eta 0:00:00"))
            if width - fixed >= 10 or len(fields) <= 2:
                break
            if elapsed:
                elapsed = False
            else:
                fields.pop()
        bar = max(10, min(30, width - fixed))
        return [TextColumn(head), BarColumn(bar_width=bar), MofNCompleteColumn(), TextColumn(stats),
                *([TimeElapsedColumn()] if elapsed else []), TextColumn("eta"), TimeRemainingColumn()]

    def _mark_after(self, done: int) -> int:
        """The first batch count past ``done`` that ends a further ``every`` share of the epoch."""
        step = 0
        while True:
            step += 1
            mark = int(step * self.every * self.total + 1e-9)
            if mark > done or mark >= self.total:
                return max(mark, done + 1)

    def update(self, done: int, loss: float, acc: float, lr: float, ips: float) -> None:
        if self.plain:
            if done >= self.next_mark and done < self.total:
                self.next_mark = self._mark_after(done)
                parts = self.plain_parts(done, loss, acc, lr, ips)
                print_parts(self.console, parts, sep="  ", markup=False)
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=done, loss=loss, acc=acc, lr=lr, ips=ips)

    def plain_parts(self, done: int, loss: float, acc: float, lr: float, ips: float) -> list[str]:
        """The fields of a progress line for a log (two spaces apart; a narrow console breaks between them)."""
        elapsed = time.perf_counter() - self.started
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        width = len(str(self.epochs))
        return [f"epoch {self.epoch + 1:>{width}}/{self.epochs} {done / self.total:4.0%} ({done}/{self.total} "
                f"batches)", f"loss {loss:.3f}", f"acc {acc:6.2%}", f"lr {lr:.4g}", f"{ips:,.0f} img/s",
                f"{elapsed:.0f} s, about {eta:.0f} s to go"]

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def epoch_parts(row: EpochRow, epochs: int) -> list[str]:
    """The fields of an epoch's line (a narrow terminal breaks the line between them)."""
    width = len(str(epochs))
    return [f"epoch {row.epoch:>{width}}/{epochs}", f"lr {row.lr:.4g}",
            f"train loss {row.train_loss:.3f} acc {row.train_acc:6.2%}",
            f"test loss {row.test_loss:.3f} acc {row.test_acc:6.2%}", f"{row.images_per_s:,.0f} img/s",
            f"{row.seconds:.1f} s"]



FEW_STEPS = 200  # fewer optimizer steps than this: a small CNN on CIFAR is usually still near chance


def chance_note(accuracy: float, classes: int, steps: int) -> str | None:
    """A hint when the final test accuracy is near chance (at most 1.5x 1/classes): normal after few steps, a
    sign that something is wrong after many."""
    chance = 1.0 / max(1, classes)
    if classes < 2 or accuracy > 1.5 * chance:
        return None
    said = f"test accuracy {accuracy:.1%} is near chance ({chance:.1%} for {classes} classes)"
    if steps < FEW_STEPS:
        return (f"note: {said} after only {steps} optimizer step{'s' if steps != 1 else ''}; that is normal this "
                f"early: a small CNN usually needs a few hundred steps to leave chance (more epochs, or more images "
                f"than --train-limit)")
    return (f"note: {said} after {steps:,} optimizer steps: the model is not learning; try a lower --lr (rfcalc "
            f"lr-find suggests one) and check that the labels match the images")


def class_table(classes: list[str], per_class: list[float], counts: list[int]) -> Table:
    table = Table()
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("", justify="left")
    worst = min(per_class) if per_class else 0.0
    ranked = bool(per_class) and worst < max(per_class)  # when every class ties, none is the lowest
    for name, acc, count in zip(classes, per_class, counts):
        bar = "█" * int(round(acc * 20))
        table.add_row(name, f"{count:,}", f"{acc:.2%}" + (" (lowest)" if acc == worst and ranked else ""), bar)
    return table
