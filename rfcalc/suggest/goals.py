"""What a failing rule asks for (RF up, params down, a feature added or removed) and how far a spec is from
passing it: the measure the search uses to tell progress from no progress."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rfcalc.analysis.checker import Rule
from rfcalc.quantities import BOUNDED, BoundOp, nearest_passing


class Direction(StrEnum):
    UP = "up"            # the measured value must grow (gt, ge, or eq from below)
    DOWN = "down"        # it must shrink (lt, le, or eq from above)
    ADD = "add"          # a required feature is missing
    REMOVE = "remove"    # a forbidden feature is present


@dataclass(frozen=True)
class Goal:
    """A failing rule and what it asks for. ``quantity``: a bounded quantity's name (rfcalc.quantities.BOUNDED),
    or the feature's name."""

    rule: str
    kind: str
    quantity: str
    direction: Direction
    offenders: tuple[str, ...] = ()   # forbid: the rows that show the feature


def _distance(op: BoundOp, value: float, limit: float) -> float:
    """How far ``value`` is from the nearest integer that satisfies ``value op limit`` (0 when it does)."""
    need = nearest_passing(op, limit)
    if op in ("gt", "ge"):
        return max(0.0, need - value)
    if op in ("lt", "le"):
        return max(0.0, value - need)
    return abs(value - limit)


def distance(rule: Rule) -> float:
    """How far a rule is from passing: 0 when it passes; for a bound, the distance of the worst value (of RF's
    two axes) to the nearest passing integer; 1 for a missing feature; the number of rows that show a forbidden
    one."""
    if rule.ok:
        return 0.0
    if rule.kind in BOUNDED and rule.op is not None:
        values = rule.value if isinstance(rule.value, list) else [rule.value]
        return max(_distance(rule.op, v, rule.limit) for v in values)
    if rule.kind == "forbid":
        return float(len(rule.value)) if isinstance(rule.value, list) and rule.value else 1.0
    return 1.0


def violation(rule: Rule) -> float:
    """:func:`distance` relative to the limit for bounds (so that RF and params add up), as is for features."""
    if rule.kind in BOUNDED and rule.op is not None:
        return distance(rule) / max(1.0, abs(float(rule.limit)))
    return distance(rule)


def goal_of(rule: Rule) -> Goal | None:
    """The goal of a failing rule (None for a passing one)."""
    if rule.ok:
        return None
    if rule.kind == "require":
        return Goal(rule.name, rule.kind, str(rule.limit), Direction.ADD)
    if rule.kind == "forbid":
        return Goal(rule.name, rule.kind, str(rule.limit), Direction.REMOVE, tuple(rule.value or ()))
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if rule.op in ("gt", "ge"):
        direction = Direction.UP
    elif rule.op in ("lt", "le"):
        direction = Direction.DOWN
    else:
        direction = Direction.UP if min(values) < rule.limit else Direction.DOWN
    return Goal(rule.name, rule.kind, rule.kind, direction)


def score(rules: tuple[Rule, ...]) -> tuple[int, float]:
    """(failing rules, summed violation): smaller is closer to passing."""
    return sum(not r.ok for r in rules), sum(violation(r) for r in rules)
