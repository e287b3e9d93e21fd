"""Exact evaluation of a candidate: the edited raw spec goes through ``load_spec`` (validation, expansion, the
calculator) and the checker's ``evaluate_rules``, the same code as `table` and `check`; no second formula.

Results are cached by the spec's content, and every evaluation that is not a cache hit counts against the
search budget.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rfcalc.analysis.checker import Rule, evaluate_rules
from rfcalc.analysis.load import Spec, load_spec
from rfcalc.errors import SpecError
from rfcalc.spec.graph import Node
from rfcalc.spec.models import Constraints
from rfcalc.suggest.goals import Goal, distance, goal_of, score
from rfcalc.table.report import Diagnostic, Report, Shape


class BudgetSpent(Exception):
    """The search budget (a number of evaluations) is used up."""


@dataclass(frozen=True)
class Outcome:
    """A valid spec and its verdict."""

    data: dict[str, Any]
    report: Report
    rules: tuple[Rule, ...]
    nodes: tuple[Node, ...]
    digest: str  # the spec's canonical text: the evaluator's cache key, the search's "seen" key

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rules)

    @property
    def params(self) -> int:
        return self.report.params

    @property
    def macs(self) -> int:
        return self.report.macs

    @property
    def rf(self) -> tuple[int, int]:
        return self.report.rf

    @property
    def output_shape(self) -> Shape:
        return self.report.output.out_shape

    @cached_property
    def final_map(self) -> Shape:
        """The last feature map: what gap / flatten turns into a vector, or the output when it is a map."""
        for row in self.report.rows:
            if row.in_shape is not None and len(row.in_shape) == 3 and len(row.out_shape) == 1:
                return row.in_shape
        return self.output_shape

    @cached_property
    def misfits(self) -> frozenset[str]:
        """The convs whose window (``dilation * (k - 1) + 1``) is wider than their input map: it sees padding."""
        found = set()
        for row in self.report.rows:
            if row.op != "conv" or row.kernel is None or row.dilation is None or row.in_shape is None \
                    or len(row.in_shape) != 3:
                continue
            if any(d * (k - 1) + 1 > size for d, k, size in zip(row.dilation, row.kernel, row.in_shape[1:])):
                found.add(row.name)
        return frozenset(found)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.report.diagnostics

    @cached_property
    def score(self) -> tuple[int, float]:
        return score(self.rules)

    @property
    def goals(self) -> list[Goal]:
        return [g for g in (goal_of(r) for r in self.rules) if g is not None]

    def distance_of(self, rule_name: str) -> float:
        """How far the named rule is from passing (0: it passes; see :func:`~rfcalc.suggest.goals.distance`)."""
        return next((distance(r) for r in self.rules if r.name == rule_name), 0.0)


def _digest(data: Any) -> str:
    try:
        return json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    except TypeError:   # mixed key types: still a faithful (if order-sensitive) key
        return repr(data)


class Evaluator:
    """Evaluates raw specs against fixed constraints, with a cache and a budget."""

    def __init__(self, constraints: Constraints, budget: int) -> None:
        self.constraints = constraints
        self.budget = budget
        self.used = 0
        self.cache: dict[str, Outcome | None] = {}

    def outcome(self, spec: Spec, digest: str | None = None) -> Outcome:
        """The outcome of a loaded spec (not counted: the spec being fixed is loaded once, by the caller);
        ``digest``: its data's, when the caller has it."""
        key = digest if digest is not None else _digest(spec.data)
        outcome = Outcome(spec.data, spec.report, tuple(evaluate_rules(spec.report, self.constraints)), spec.nodes,
                          key)
        self.cache.setdefault(key, outcome)
        return outcome

    def __call__(self, data: dict[str, Any]) -> Outcome | None:
        """The outcome of a spec, or None when the edit made it invalid. Raises :class:`BudgetSpent`."""
        key = _digest(data)
        if key in self.cache:
            return self.cache[key]
        if self.used >= self.budget:
            raise BudgetSpent
        self.used += 1
        try:
            spec = load_spec(data)
        except SpecError:
            outcome = None
        else:
            outcome = self.outcome(spec, key)  # spec.data is ``data`` itself
        self.cache[key] = outcome
        return outcome
