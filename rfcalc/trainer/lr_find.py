"""`rfcalc lr-find`: the LR range test (Smith 2015, as popularised by fastai and torch-lr-finder).

The learning rate grows exponentially from ``start`` to ``end`` over ``steps`` batches while the smoothed
loss is recorded; the test stops early once the loss exceeds 4x its minimum. Two suggestions: the point of
steepest descent, and the lr of the minimum loss divided by 10. The model and optimizer are restored to
what they were before the test.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

import rfcalc
from rfcalc.errors import RfcalcError


@dataclass
class RangeTest:
    lrs: list[float]
    losses: list[float]  # smoothed, bias-corrected
    steepest: float | None
    min_loss_lr: float | None

    @property
    def min_over_10(self) -> float | None:
        return None if self.min_loss_lr is None else self.min_loss_lr / 10


def suggestions(lrs: list[float], losses: list[float]) -> tuple[float | None, float | None]:
    """(steepest descent, lr of the minimum loss); the first and last few points are ignored as noise."""
    if len(losses) < 5:
        return None, None
    values = np.asarray(losses)
    skip_start, skip_end = max(1, len(values) // 10), max(1, len(values) // 20)
    inner = slice(skip_start, len(values) - skip_end)
    logs = np.log10(np.asarray(lrs))
    slope = np.gradient(values, logs)
    steepest_at = skip_start + int(np.argmin(slope[inner]))
    min_at = skip_start + int(np.argmin(values[inner]))
    return float(lrs[steepest_at]), float(lrs[min_at])


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer,
               batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
               step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], start: float = 1e-5, end: float = 10.0,
               steps: int = 100, smoothing: float = 0.95, diverge: float = 4.0) -> RangeTest:
    """Run the test; ``step(x, y)`` does forward, backward and ``optimizer.step()`` and returns the loss."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    ratio = (end / start) ** (1 / max(1, steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    try:
        taken = 0
        while taken < steps:
            for x, y in batches():
                lr = start * ratio ** taken
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = float(step(x, y))
                taken += 1
                if not math.isfinite(loss):
                    break
                average = smoothing * average + (1 - smoothing) * loss
                smoothed = average / (1 - smoothing ** taken)
                lrs.append(lr)
                losses.append(smoothed)
                best = min(best, smoothed)
                if smoothed > diverge * best or taken >= steps:
                    break
            else:
                continue
            break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    steepest, min_lr = suggestions(lrs, losses)
    return RangeTest(lrs, losses, steepest, min_lr)


def find_lr(spec_path: Path, *, flags: dict[str, Any], device: str | None, out: str | None, train_limit: int | None,
            start: float, end: float, steps: int, console: Console, err: Console) -> dict[str, Any]:
    from rfcalc.trainer import plots
    from rfcalc.trainer.batches import Normalizer, make_batches
    from rfcalc.trainer.data import fitting_data
    from rfcalc.trainer.devices import device_name, resolve_device
    from rfcalc.trainer.engine import Engine, autocast, setup_backend
    from rfcalc.trainer.options import RunOptions, resolve
    from rfcalc.trainer.run import check_augmentations, notices

    say = notices(err)
    spec = rfcalc.load_spec(spec_path)
    options: RunOptions = resolve(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=1)
    if not (0 < start < end):
        raise RfcalcError(f"--start-lr {start} / --end-lr {end}: need 0 < start < end")
    if steps < 5:
        raise RfcalcError(f"--steps {steps}: need at least 5")
    check_augmentations(spec, options, say)
    images = fitting_data(spec, options.config.data or "cifar10", say, options.train_limit, 1)
    dev = resolve_device(options.device)
    setup_backend(dev, options.config.seed)
    engine = Engine(rfcalc.build_model(spec), options.config, dev, total_steps=steps)
    normalize = Normalizer(images.mean, images.std, dev)
    batches = make_batches(images, options, dev, say)
    epoch = {"n": 0}

    def next_epoch() -> Any:
        epoch["n"] += 1
        return batches.epoch(epoch["n"] - 1)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        engine.model.train()
        with autocast(dev):
            loss = engine.criterion(engine.forward(normalize(x)), y)
        engine.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        engine.optimizer.step()
        detached: torch.Tensor = loss.detach()  # the criterion's result is Any to mypy (nn.Module.__call__)
        return detached

    say(f"lr range test on {spec.name}: {steps} batches of {options.config.batch_size}, lr {start:g} -> {end:g} "
        f"({options.config.optimizer}, {device_name(dev)})")
    try:
        test = range_test(engine.model, engine.optimizer, next_epoch, step, start, end, steps)
    finally:
        batches.close()
    folder = Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lr_find.png"
    plots.lr_find(test.lrs, test.losses, test.steepest, test.min_over_10, path, f"{spec.name}: LR range test")
    if test.steepest is None:
        console.print(f"too few points ({len(test.lrs)}) for a suggestion; raise --steps or --end-lr; wrote {path}")
    else:
        console.print(f"steepest descent: lr {test.steepest:.3g}\nminimum loss / 10: lr {test.min_over_10:.3g} "
                      f"(minimum at {test.min_loss_lr:.3g})\nwrote {path}", highlight=False, markup=False)
    return {"lrs": test.lrs, "losses": test.losses, "steepest": test.steepest, "min_over_10": test.min_over_10}
