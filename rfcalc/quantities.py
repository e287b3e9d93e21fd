"""Human-written numbers ("200k", 200_000, "1.5M"), comparison strings ('>44', '<=200k') and the registry of
bounded quantities (RF, params, MACs): what `check` bounds, `suggest` moves and a sweep's constraints name."""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

BoundOp = Literal["gt", "ge", "lt", "le", "eq"]

SUFFIXES: dict[str, int] = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
SYMBOLS: dict[BoundOp, str] = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "=="}
_OPS_BY_SYMBOL: dict[str, BoundOp] = {">": "gt", ">=": "ge", "<": "lt", "<=": "le", "==": "eq", "=": "eq"}
_NUMBER = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kKmMgG]?)\s*$")
_COMPARISON = re.compile(r"^\s*(>=|<=|==|=|>|<)\s*(.+?)\s*$")


def parse_number(value: object) -> int | float:
    """200000, 200_000, "200k", "1.5M" -> a number; raises ValueError with the allowed forms."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number like 200000, 200_000 or \"200k\", got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        match = _NUMBER.match(value)
        if match:
            digits, suffix = match.group(1).replace("_", ""), match.group(2).lower()
            number = float(digits) * SUFFIXES[suffix]
            return int(number) if number == int(number) else number
    raise ValueError(f"must be a number like 200000, 200_000 or \"200k\", got {value!r}")


def parse_comparison(text: str) -> tuple[BoundOp, int | float]:
    """'>44' -> ("gt", 44); '<200k' -> ("lt", 200000)."""
    match = _COMPARISON.match(text)
    allowed = f"expected a comparison like '>44', '>=45', '<200k' or '==51', got {text!r}"
    flipped = {"=>": ">=", "=<": "<="}.get(text.strip()[:2])
    if flipped:
        raise ValueError(f"{allowed} (did you mean '{flipped}'?)")
    if not match:
        raise ValueError(allowed)
    bound = match.group(2)
    if bound[:1] in "<>=":
        raise ValueError(allowed + " (one comparison sign)")
    if bound.startswith("-"):
        raise ValueError(f"the bound must be >= 0, got {text!r}")
    return _OPS_BY_SYMBOL[match.group(1)], parse_number(bound)


def compare(op: BoundOp, value: int | float, limit: int | float) -> bool:
    """Whether ``value op limit`` holds."""
    table = {"gt": value > limit, "ge": value >= limit, "lt": value < limit, "le": value <= limit,
             "eq": value == limit}
    return table[op]


def nearest_passing(op: BoundOp, limit: int | float) -> int | float:
    """The integer nearest to failing values that satisfies ``value op limit``: 45 for > 44, 49,999 for
    < 50,000 (``eq``: the limit itself)."""
    return {"gt": math.floor(limit) + 1, "ge": math.ceil(limit), "lt": math.ceil(limit) - 1,
            "le": math.floor(limit), "eq": limit}[op]


def format_number(value: int | float) -> str:
    """12345 -> '12,345'; 0.5 -> '0.5'. Every number a person reads (tables, checks, plots) goes through here."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"


def format_pair(values: tuple[int | float, ...] | list[int | float]) -> str:
    """A per-axis value: (53, 53) -> '53'; (3, 5) -> '3x5'; (10032, 10032) -> '10,032'."""
    if len(set(values)) == 1:
        return format_number(values[0])
    return "x".join(format_number(v) for v in values)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """3, 'epoch' -> '3 epochs'; 1, 'epoch' -> '1 epoch'; 7, 'batch', 'batches' -> '7 batches'."""
    return f"{format_number(n)} {noun if n == 1 else plural or noun + 's'}"


# -- bounded quantities ------------------------------------------------------------------------------------------
class Measured(Protocol):
    """What a quantity is measured on: a calculator report (``rfcalc.table.report.Report``)."""

    @property
    def rf(self) -> tuple[int, int]: ...

    @property
    def params(self) -> int: ...

    @property
    def macs(self) -> int: ...


class Lever(StrEnum):
    """Which edits push a quantity (what `suggest` tries when its bound fails)."""

    GEOMETRY = "geometry"   # the window: larger dilations, kernels, strides, paddings and inserted convs grow it,
                            # smaller ones and removed layers shrink it
    COST = "cost"           # a count: wider layers and larger kernels grow it; narrower ones, separable or
                            # depthwise convs, smaller kernels and removed layers shrink it


@dataclass(frozen=True)
class Quantity:
    """One bounded quantity. ``name``: the key under ``constraints`` (spec, pyproject.toml, a sweep's paths) and
    the kind of its rules; ``label``: how a rule names it ("RF > 44"); ``flag`` and ``help``: the option of
    `check` and `suggest`; ``measure``: its value on a report, per axis (RF: height, width) or one value (every
    value must pass); ``unit``: what one counts; ``lever``: which edits push it; ``spatial``: whether the sizes
    of the feature maps move it by themselves (MACs; params only through a flatten, RF not as a cost)."""

    name: str
    label: str
    flag: str
    help: str
    measure: Callable[[Measured], tuple[int, ...]]
    unit: str
    lever: Lever
    per_axis: bool = False   # a value per axis: a rule's value is then a list [h, w]
    spatial: bool = False

    def show(self, values: tuple[int, ...]) -> str:
        """The measured value as a person reads it: RF (53, 53) -> '53', params 59322 -> '59,322'."""
        return format_pair(values)


def _rf(report: Measured) -> tuple[int, ...]:
    return tuple(report.rf)


def _params(report: Measured) -> tuple[int, ...]:
    return (report.params,)


def _macs(report: Measured) -> tuple[int, ...]:
    return (report.macs,)


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("rf", "RF", "--rf", "RF bound, e.g. '>44' (both axes must pass).", _rf, "pixels", Lever.GEOMETRY,
             per_axis=True),
    Quantity("params", "params", "--params", "Parameter bound, e.g. '<200k'.", _params, "parameters", Lever.COST),
    Quantity("macs", "MACs", "--macs", "MACs bound, e.g. '<50M'.", _macs, "multiply-accumulates", Lever.COST,
             spatial=True),
)
BOUNDED: dict[str, Quantity] = {q.name: q for q in QUANTITIES}
