"""The end of a run: summary.json, the figures, the per-class table and the list of what was written.

Under DistributedDataParallel every rank computes the summary and only rank 0 writes and prints it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from rich.console import Console

from rfcalc.analysis.load import Spec
from rfcalc.lines import print_parts
from rfcalc.spec.train import TrainConfig
from rfcalc.trainer import artifacts, plots
from rfcalc.trainer.batches import Normalizer
from rfcalc.trainer.data import ImageSet
from rfcalc.trainer.devices import device_name
from rfcalc.trainer.distributed import World
from rfcalc.trainer.engine import Engine, EvalResult
from rfcalc.trainer.options import RunOptions
from rfcalc.trainer.progress import chance_note, class_table
from rfcalc.trainer.state import RunState


class Trainer(Protocol):
    """What the end of a run reads of :class:`rfcalc.trainer.loop.Trainer` (a protocol, so that this module and
    the loop do not import each other)."""

    spec: Spec
    options: RunOptions
    cfg: TrainConfig
    images: ImageSet
    console: Console
    out: Path
    device: torch.device
    engine: Engine
    normalize: Normalizer
    test_x: torch.Tensor
    test_y: torch.Tensor
    total_steps: int
    state: RunState
    last_eval: EvalResult | None
    world: World
    say: Callable[[str], None]

    @property
    def global_batch(self) -> int: ...


def misclassified_grid(trainer: Trainer, predictions: torch.Tensor, path: Path) -> None:
    """25 misclassified test images (a seeded random choice), de-normalised with the training statistics."""
    true = trainer.test_y.cpu()
    wrong = torch.nonzero(predictions != true).flatten().numpy()
    chosen = np.sort(np.random.default_rng(trainer.cfg.seed).permutation(wrong)[:25]) if len(wrong) else wrong
    index = torch.from_numpy(chosen).long()
    model_input = trainer.normalize(trainer.test_x.cpu()[index].to(trainer.device))
    images = trainer.normalize.denormalize(model_input).cpu().numpy()
    title = f"{trainer.spec.name}: {len(wrong):,} of {len(true):,} test images misclassified"
    plots.misclassified(images, true[index].tolist(), predictions[index].tolist(), trainer.images.classes, path,
                        title)


def confusion_matrix(true: torch.Tensor, pred: torch.Tensor, n: int) -> np.ndarray:
    return torch.bincount(true * n + pred, minlength=n * n).reshape(n, n).numpy()


def finish(trainer: Trainer, status: str, draw: bool) -> dict[str, Any]:
    s, out, classes = trainer.state, trainer.out, trainer.images.classes
    result = trainer.last_eval
    written = [out / "metrics.jsonl"]
    per_class = None
    if result is not None:
        per_class = {name: round(acc, 6) for name, acc in zip(classes, result.per_class)}
    summary = artifacts.summary(
        spec=trainer.spec, rows=s.rows, status=status, device=device_name(trainer.device),
        options=trainer.options.to_dict(),
        data={"source": trainer.images.source, "train_images": len(trainer.images.train_y),
              "test_images": len(trainer.images.test_y), "classes": classes, "mean": list(trainer.images.mean),
              "std": list(trainer.images.std)},
        steps={"optimizer_steps": trainer.engine.steps, "schedule_steps": int(trainer.engine.schedule.last_epoch),
               "schedule_total_steps": trainer.total_steps},
        step_mode="cuda graph" if trainer.engine.captured is not None else "eager", warmup_seconds=round(s.warmup, 2),
        per_class=per_class, distributed=distributed(trainer))
    if not trainer.world.main:
        return summary
    artifacts.write_summary(out / "summary.json", summary)
    written.append(out / "summary.json")
    if draw and s.rows and result is not None:
        title = f"{trainer.spec.name} ({trainer.spec.report.params:,} params, RF {trainer.spec.report.rf[0]})"
        plots.curves(s.rows, s.lrs, out / "curves.png", title)
        misclassified_grid(trainer, result.predictions, out / "misclassified.png")
        true = trainer.test_y.cpu()
        plots.confusion(confusion_matrix(true, result.predictions, len(classes)), classes, out / "confusion.png",
                        f"{trainer.spec.name}: confusion on {len(true):,} test images")
        written += [out / "curves.png", out / "misclassified.png", out / "confusion.png"]
    if draw and result is not None:
        counts = np.bincount(trainer.test_y.cpu().numpy(), minlength=len(classes)).tolist()
        title = (f"test accuracy per class after epoch {s.epoch}: {result.accuracy:.2%} "
                 f"(best {s.best.test_acc:.2%} at epoch {s.best.epoch})")
        trainer.console.print(title, highlight=False, markup=False, soft_wrap=True)
        trainer.console.print(class_table(classes, result.per_class, counts))
        written += [p for p in (out / "best.pt", out / "last.pt") if p.is_file()]
        paths = [str(p) for p in written]
        print_parts(trainer.console, [f"wrote {paths[0]}", *paths[1:]])
        note = chance_note(result.accuracy, len(classes), trainer.engine.steps)
        if note:
            trainer.say(note)
    return summary


def distributed(trainer: Trainer) -> dict[str, Any] | None:
    """The summary's ``distributed`` section (None for one process)."""
    world = trainer.world
    if not world.distributed:
        return None
    return {"world_size": world.size, "nodes": world.nodes, "ranks_per_node": world.local_size,
            "backend": "nccl" if trainer.device.type == "cuda" else "gloo", "batch_per_rank": trainer.cfg.batch_size,
            "global_batch": trainer.global_batch, "sync_bn": trainer.engine.synced_norms > 0,
            "launcher": world.launcher, "restarts": world.restart}
