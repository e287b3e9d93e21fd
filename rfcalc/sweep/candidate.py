"""One candidate of a sweep: the values applied to the base spec, written as a standalone spec file, and the
torch-free verdict of `rfcalc check` on that file (milliseconds; a candidate that fails is never trained).

The trial spec is a pure function of the sweep and the trial's values, so any machine that shares the study
can write the spec of any trial (the best spec included) without the folder it ran in.
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rfcalc.analysis.checker import Rule, check_spec
from rfcalc.analysis.load import load_spec
from rfcalc.errors import SpecError
from rfcalc.sweep.load import Sweep
from rfcalc.sweep.paths import apply


@dataclass(frozen=True)
class Candidate:
    number: int
    values: dict[str, Any]
    data: dict[str, Any]

    def text(self, sweep: Sweep, note: str = "") -> str:
        """The spec file: a header saying where it comes from, then the spec (flow style for each layer)."""
        values = ", ".join(f"{k}={_short(v)}" for k, v in self.values.items())
        header = [f"# trial {self.number} of sweep '{sweep.name}' ({sweep.file}): {sweep.base_file} with",
                  f"# {values}" if values else "# the base spec's own values",
                  "# constraints: the base spec's rules, its pyproject.toml's and the sweep file's, merged"]
        if note:
            header += textwrap.wrap(note, 110, initial_indent="# ", subsequent_indent="# ")
        body = yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
        return "\n".join(header) + "\n" + body


@dataclass(frozen=True)
class Verdict:
    """The check of a candidate: ``ok``, or why not; its size and RF when it is a valid spec."""

    ok: bool
    reason: str
    violation: float                    # 0 when ok; how far outside the rules (for the sampler's constraints)
    params: int | None = None
    macs: int | None = None
    rf: tuple[int, int] | None = None
    seconds: float = 0.0
    rules: tuple[str, ...] = field(default=())


def make_candidate(sweep: Sweep, number: int, values: dict[str, Any]) -> Candidate:
    settings = [s for dim in sweep.dimensions if dim.name in values for s in dim.settings(values[dim.name])]
    data = apply(sweep.base, settings)
    data["name"] = f"{sweep.base_name}-t{number}"
    recipe = sweep.budget.recipe()
    if recipe:  # the budget's recipe is the trial's own: `rfcalc train` on the file trains it the same way
        data["train"] = {**(data.get("train") or {}), **recipe}
    return Candidate(number, dict(values), data)


def write_candidate(sweep: Sweep, candidate: Candidate, path: Path, note: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(candidate.text(sweep, note), encoding="utf-8")
    tmp.replace(path)
    return path


def judge(path: Path) -> Verdict:
    """`rfcalc check` on the written trial spec, torch-free: what that command would say, as a verdict."""
    started = time.perf_counter()
    try:
        spec = load_spec(path)
    except SpecError as exc:
        first = exc.problems[0]
        reason = f"invalid spec: {first.path + ': ' if first.path else ''}{first.message}"
        if len(exc.problems) > 1:
            reason += f" (and {len(exc.problems) - 1} more)"
        return Verdict(False, reason, 1.0, seconds=time.perf_counter() - started)
    result = check_spec(spec)
    report = spec.report
    failed = result.failed
    return Verdict(not failed, "; ".join(rule.message for rule in failed), sum(_violation(r) for r in failed),
                   report.params, report.macs, tuple(report.rf), time.perf_counter() - started,  # type: ignore[arg-type]
                   tuple(rule.message for rule in result.rules))


def _violation(rule: Rule) -> float:
    """How far a failed rule is from passing, relative to its limit (a failed feature rule counts 1)."""
    if rule.kind in ("require", "forbid"):
        return 1.0
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    gap = max(abs(float(v) - float(rule.limit)) for v in values)
    return 0.01 + gap / max(1.0, abs(float(rule.limit)))


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
