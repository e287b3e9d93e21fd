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

import numpy as np
import torch
from torch import nn


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


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Callable[[], Iterator[tuple]],
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
