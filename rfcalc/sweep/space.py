"""The search space: each dimension's values, how Optuna samples them, and where they go in the spec.

Pure Python; ``suggest`` takes any object with Optuna's ``suggest_int`` / ``suggest_float`` /
``suggest_categorical`` (optuna itself is imported only where a study runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rfcalc.sweep.model import Param
from rfcalc.sweep.paths import Token, show_path

Setting = tuple[tuple[Token, ...], Any]


@dataclass(frozen=True)
class Dimension:
    """A named dimension: its definition and the parsed paths it writes (per label for labelled choices)."""

    name: str
    param: Param
    paths: tuple[tuple[Token, ...], ...] = ()
    labelled: tuple[tuple[str, tuple[Setting, ...]], ...] = ()

    def suggest(self, trial: Any) -> Any:
        p = self.param
        if p.int_range is not None:
            return trial.suggest_int(self.name, p.int_range[0], p.int_range[1], step=int(p.step or 1), log=p.log)
        if p.float_range is not None:
            return trial.suggest_float(self.name, p.float_range[0], p.float_range[1], step=p.step, log=p.log)
        return trial.suggest_categorical(self.name, self.choices())

    def choices(self) -> list[Any]:
        return [label for label, _ in self.labelled] if self.labelled else list(self.param.choices or [])

    def settings(self, value: Any) -> list[Setting]:
        """Where ``value`` goes: every path of the dimension, or the label's own {path: value} settings."""
        if self.labelled:
            return list(dict(self.labelled)[value])
        return [(tokens, value) for tokens in self.paths]

    def problem(self, value: Any) -> str:
        """Why ``value`` is not a value of this dimension ('' when it is)."""
        p = self.param
        if p.int_range is not None:
            low, high = p.int_range
            step = int(p.step or 1)
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be an integer in [{low}, {high}], got {value!r}"
            if not low <= value <= high or (value - low) % step:
                grid = f" on the grid {low}, {low + step}, ..." if step != 1 else ""
                return f"must be in [{low}, {high}]{grid}, got {value}"
            return ""
        if p.float_range is not None:
            low_f, high_f = p.float_range
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_f <= value <= high_f:
                return f"must be a number in [{low_f:g}, {high_f:g}], got {value!r}"
            return ""
        if value not in self.choices():
            return f"must be one of {', '.join(repr(c) for c in self.choices())}, got {value!r}"
        return ""

    def describe(self) -> str:
        """One line: 'width in [16, 48] step 8 -> layers.c1_1.out, layers.c1_2.out'."""
        p = self.param
        if p.int_range is not None or p.float_range is not None:
            low, high = p.int_range or p.float_range  # type: ignore[misc]
            what = f"[{low:g}, {high:g}]" + (f" step {p.step:g}" if p.step else "") + (" log" if p.log else "")
        else:
            what = "{" + ", ".join(str(c) for c in self.choices()) + "}"
        where = ", ".join(show_path(t) for t in self.paths) if self.paths else "labelled settings"
        return f"{self.name} in {what} -> {where}"
