"""Human-written numbers ("200k", 200_000, "1.5M") and comparison strings ('>44', '<=200k')."""
from __future__ import annotations

import math
import re
from typing import Literal

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
