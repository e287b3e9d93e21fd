"""The results of a study as plain data: one :class:`TrialRow` per trial, the Pareto front, the best trial.

Computed from Optuna's trials and the sweep's user attributes; rendered by :mod:`rfcalc.sweep.render`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rfcalc.sweep.outcome import Outcome, outcome_of

HIDDEN = frozenset({Outcome.surplus})


@dataclass(frozen=True)
class TrialRow:
    number: int
    outcome: Outcome
    accuracy: float | None = None       # best test accuracy (pruned: the best before it was stopped)
    epochs: int | None = None           # epochs trained
    params: int | None = None
    macs: int | None = None
    rf: tuple[int, ...] | None = None
    seconds: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    front: bool = False                 # on the Pareto front of accuracy vs params (or MACs)
    host: str | None = None
    folder: str | None = None

    def cost(self, second: str) -> int | None:
        return self.macs if second == "macs" else self.params

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.number, "state": self.outcome.value, "accuracy": self.accuracy, "epochs": self.epochs,
                "params": self.params, "macs": self.macs, "rf": list(self.rf) if self.rf else None,
                "seconds": self.seconds, "values": self.values, "note": self.note, "pareto": self.front,
                "host": self.host, "folder": self.folder}


@dataclass(frozen=True)
class Results:
    study: str
    storage: str
    objective: tuple[str, ...]
    trials: int                          # the budget
    rows: tuple[TrialRow, ...]
    dimensions: tuple[str, ...]
    hidden: int = 0                      # surplus trials, not shown

    @property
    def second(self) -> str:
        return self.objective[1] if len(self.objective) > 1 else "params"

    @property
    def best(self) -> TrialRow | None:
        """The most accurate complete trial (fewest params, or MACs, among equals; then the earliest)."""
        done = [r for r in self.rows if r.outcome is Outcome.complete and r.accuracy is not None]
        if not done:
            return None
        return min(done, key=lambda r: (-float(r.accuracy or 0.0), r.cost(self.second) or 0, r.number))

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome is outcome)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"study": self.study, "storage": self.storage, "objective": list(self.objective),
                "budget_trials": self.trials, "best": best.number if best else None,
                "pareto": [r.number for r in self.rows if r.front],
                "counts": {o.value: self.count(o) for o in Outcome if o not in HIDDEN},
                "trials": [r.to_dict() for r in self.rows]}


def pareto_front(points: Sequence[tuple[float, float] | None]) -> list[bool]:
    """Which points are not dominated: higher first coordinate (accuracy) and lower second (params) is better.

    A point dominates another when it is at least as good in both and better in one; equal points are all kept.
    """
    front = []
    for i, p in enumerate(points):
        if p is None:
            front.append(False)
            continue
        dominated = any(q is not None and j != i and q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])
                        for j, q in enumerate(points))
        front.append(not dominated)
    return front


def row_of(trial: Any) -> TrialRow:
    attrs = trial.user_attrs
    outcome = outcome_of(trial)
    rf = attrs.get("rf")
    note = attrs.get("reason") or ""
    if outcome is Outcome.lost:
        note = "its worker stopped answering (no heartbeat); queued again"
    elif outcome is Outcome.waiting and trial.system_attrs.get("retry_history"):
        note = f"queued again after trial {trial.system_attrs['retry_history'][-1]}"
    elif outcome is Outcome.waiting:
        note = "queued"
    elif attrs.get("resumed_from") is not None and outcome is not Outcome.rejected:
        note = (note + "; " if note else "") + f"resumed trial {attrs['resumed_from']}"
    accuracy = attrs.get("accuracy")
    return TrialRow(trial.number, outcome, float(accuracy) if accuracy is not None else None, attrs.get("epochs"),
                    attrs.get("model_params"), attrs.get("macs"), tuple(rf) if rf else None, attrs.get("seconds"),
                    dict(trial.params), note, False, attrs.get("host"), attrs.get("folder"))


def collect(study: Any, sweep: Any, storage: str) -> Results:
    """The results of ``study`` (any machine's trials), with the Pareto front marked."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows = [row_of(t) for t in trials]
    shown = [r for r in rows if r.outcome not in HIDDEN]
    second = sweep.second_objective
    points: list[tuple[float, float] | None] = []
    for r in shown:
        cost = r.cost(second)
        done = r.outcome is Outcome.complete and r.accuracy is not None and cost is not None
        points.append((float(r.accuracy or 0.0), float(cost or 0)) if done else None)
    marks = pareto_front(points)
    shown = [replace(r, front=mark) for r, mark in zip(shown, marks)]
    return Results(sweep.name, storage, tuple(sweep.objective), sweep.trials, tuple(shown),
                   tuple(d.name for d in sweep.dimensions), len(rows) - len(shown))
