"""The state of a run as typed fields: one row per finished epoch, the best epoch, the epoch under way.

Torch-free. Serialised only at the boundaries: ``metrics.jsonl``/``summary.json`` (:mod:`rfcalc.trainer.artifacts`)
and the checkpoint (:mod:`rfcalc.trainer.loop`), in the same plain dicts as before, so files written by earlier
versions read the same.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class EpochRow:
    """One line of ``metrics.jsonl``. Accuracies are fractions; times in seconds; ``elapsed`` since the start."""

    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    images_per_s: float
    seconds: float
    elapsed: float
    train_elapsed: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRow:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Best:
    """The epoch with the highest test accuracy so far (``epoch`` 0 and accuracy -1 before the first)."""

    test_acc: float = -1.0
    epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Best:
        return cls(test_acc=float(data["test_acc"]), epoch=int(data["epoch"]))


@dataclass(frozen=True)
class Partial:
    """The sums of the epoch under way (all ranks together), kept in ``last.pt`` when a run stops mid-epoch."""

    loss: float = 0.0
    correct: float = 0.0
    seen: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partial:
        return cls(**{f.name: float(data.get(f.name, 0.0)) for f in fields(cls)})


@dataclass
class RunState:
    epoch: int = 0                    # epochs finished
    batch: int = 0                    # next batch of the epoch under way
    rows: list[EpochRow] = field(default_factory=list)
    best: Best = field(default_factory=Best)
    lrs: list[float] = field(default_factory=list)
    partial: Partial = field(default_factory=Partial)
    elapsed: float = 0.0
    train_elapsed: float = 0.0
    warmup: float = 0.0               # seconds of warm-up (CUDA: lazy state, graph capture) in this process
