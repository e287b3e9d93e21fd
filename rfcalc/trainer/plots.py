"""The figures of a run, drawn with matplotlib's object API (no pyplot state, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rfcalc.trainer.state import EpochRow


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def curves(rows: list[EpochRow], lrs: list[float], path: Path, title: str) -> None:
    """Loss and accuracy per epoch (train and test), and the learning rate per step."""
    _save(curves_figure(rows, lrs, title), path)


def curves_figure(rows: list[EpochRow], lrs: list[float], title: str) -> Figure:
    """The figure of :func:`curves`."""
    epochs = [r.epoch for r in rows]
    fig = Figure(figsize=(14, 4), layout="constrained")  # constrained: the lr axis labels stay clear of acc
    loss, acc, lr = fig.subplots(1, 3)
    loss.plot(epochs, [r.train_loss for r in rows], "o-", label="train")
    loss.plot(epochs, [r.test_loss for r in rows], "o-", label="test")
    loss.set(title="loss", xlabel="epoch")
    acc.plot(epochs, [100 * r.train_acc for r in rows], "o-", label="train")
    acc.plot(epochs, [100 * r.test_acc for r in rows], "o-", label="test")
    for level in (85, 90):
        acc.axhline(level, color="grey", lw=0.6, ls="--")
    acc.set(title="accuracy (%)", xlabel="epoch")
    for axis in (loss, acc):
        axis.legend()
        axis.grid(alpha=0.3)
        # whole epochs only, even for a run of one or two (matplotlib would tick 0.95, 1.00, 1.05)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            axis.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    steps = np.arange(1, len(lrs) + 1) / max(1, len(lrs)) * (epochs[-1] if epochs else 1)
    lr.plot(steps, lrs)
    lr.set(title="learning rate (per step)", xlabel="epoch")
    lr.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def misclassified(images: np.ndarray, true: list[int], pred: list[int], classes: list[str], path: Path,
                  title: str) -> None:
    """Up to 25 images (float, 0..1, [N, H, W, C]) with their true and predicted labels."""
    fig = Figure(figsize=(10, 11))
    axes = fig.subplots(5, 5)
    for i, axis in enumerate(axes.flat):
        axis.axis("off")
        if i < len(images):
            image = images[i]
            gray = image.shape[-1] == 1
            axis.imshow(image[:, :, 0] if gray else image, cmap="gray" if gray else None, interpolation="nearest")
            axis.set_title(f"true {classes[true[i]]}\npred {classes[pred[i]]}", fontsize=9)
    fig.suptitle(title)
    _save(fig, path)


def confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Rows: true class; columns: predicted; colour: share of the row; numbers: counts."""
    share = matrix / np.maximum(1, matrix.sum(1, keepdims=True))
    n = len(classes)
    size = max(5.0, 0.55 * n + 2)
    fig = Figure(figsize=(size, size))
    axis = fig.subplots()
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= 20:
        axis.set_xticks(range(n), classes, rotation=45, ha="right")
        axis.set_yticks(range(n), classes)
        for i in range(n):
            for j in range(n):
                axis.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                          color="white" if share[i, j] > 0.5 else "black")
    axis.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=axis, fraction=0.046)
    _save(fig, path)


def lr_find(lrs: list[float], losses: list[float], steepest: float | None, suggested: float | None, path: Path,
            title: str) -> None:
    fig = Figure(figsize=(7, 4.5))
    axis = fig.subplots()
    axis.plot(lrs, losses)
    axis.set_xscale("log")
    if steepest:
        axis.axvline(steepest, color="tab:red", ls="--", label=f"steepest descent {steepest:.3g}")
    if suggested:
        axis.axvline(suggested, color="tab:green", ls="--", label=f"min loss / 10 {suggested:.3g}")
    axis.set(xlabel="learning rate", ylabel="loss (smoothed)", title=title)
    axis.legend()
    axis.grid(alpha=0.3, which="both")
    _save(fig, path)
