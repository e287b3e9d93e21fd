"""The constraint checker: every rule of a spec with its measured value and verdict (torch-free)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rfcalc.analysis.features import find_features
from rfcalc.analysis.load import Spec
from rfcalc.errors import Problem, RfcalcError, SpecError
from rfcalc.quantities import QUANTITIES, SYMBOLS, BoundOp, Quantity, compare, format_number, nearest_passing
from rfcalc.spec.messages import describe_error
from rfcalc.spec.models import Bound, Constraints
from rfcalc.spec.source import dotted
from rfcalc.table.report import Diagnostic, Report


@dataclass(frozen=True)
class Rule:
    """One checked rule: ``name`` like "rf > 44" or "require dilated_conv"."""

    name: str
    kind: str                   # a bounded quantity's name (rfcalc.quantities.BOUNDED), require or forbid
    ok: bool
    value: Any
    limit: Any
    message: str
    op: BoundOp | None = None   # the comparison of a bound rule; None for require / forbid

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.name, "kind": self.kind, "ok": self.ok, "value": self.value, "limit": self.limit,
                "message": self.message}


@dataclass(frozen=True)
class CheckResult:
    """The verdict for one model: ``ok`` when every rule holds."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rules)

    @property
    def failed(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name, "ok": self.ok, "rules": [r.to_dict() for r in self.rules],
                "sources": self.sources, "diagnostics": [d.to_dict() for d in self.diagnostics]}


def _shortfall(op: BoundOp, value: int, limit: int | float) -> str:
    """What a failing (integer) value needs to pass: 'add at least 6' for RF 39 > 44 (45 is the first RF that
    passes), 'remove at least 9,323' for params 59,322 < 50,000 (49,999 is the last count that passes)."""
    need = nearest_passing(op, limit)
    verb = "add" if need > value else "remove"
    return f"{verb} {format_number(abs(need - value))}" if op == "eq" else \
        f"{verb} at least {format_number(abs(need - value))}"


def _bound_rules(quantity: Quantity, bound: Bound, values: tuple[int, ...]) -> list[Rule]:
    rules = []
    label, shown = quantity.label, quantity.show(values)
    for op, limit in bound.items():
        ok = all(compare(op, v, limit) for v in values)
        name = f"{label} {SYMBOLS[op]} {format_number(limit)}"
        text = f"{label} {shown} {SYMBOLS[op]} {format_number(limit)}"
        if not ok:
            worst = min(values) if op in ("gt", "ge") else max(values)
            text += f" ✗ ({_shortfall(op, worst, limit)})"
        else:
            text += " ✓"
        value = list(values) if quantity.per_axis else values[0]
        rules.append(Rule(name, quantity.name, ok, value, limit, text, op))
    return rules


def evaluate_rules(report: Report, constraints: Constraints) -> list[Rule]:
    """Check ``constraints`` against a report: the bounds in the registry's order, then require and forbid."""
    rules: list[Rule] = []
    for quantity in QUANTITIES:
        bound: Bound | None = getattr(constraints, quantity.name)
        if bound is not None:
            rules += _bound_rules(quantity, bound, quantity.measure(report))
    features = find_features(report) if constraints.require or constraints.forbid else {}
    for feature in constraints.require:
        where = features[feature]
        text = (f"require {feature} ✓ ({_names(where)})" if where else f"require {feature} ✗ (no layer has it)")
        rules.append(Rule(f"require {feature}", "require", bool(where), where, feature, text))
    for feature in constraints.forbid:
        where = features[feature]
        text = (f"forbid {feature} ✗ (found in {_names(where)})" if where else f"forbid {feature} ✓")
        rules.append(Rule(f"forbid {feature}", "forbid", not where, where, feature, text))
    return rules


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def pyproject_constraints(start: Path) -> tuple[dict[str, Any], str | None]:
    """``[tool.rfcalc.constraints]`` of the nearest pyproject.toml (raw), and that file's path."""
    path = find_pyproject(start)
    if path is None:
        return {}, None
    import tomllib  # only when there is a pyproject.toml to read

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError([Problem(str(path), 1, 1, "", f"cannot read pyproject.toml: {exc}")]) from None
    table = data.get("tool", {}).get("rfcalc", {}).get("constraints", {})
    return (table if isinstance(table, dict) else {}), str(path)


def merge_constraints(layers: list[tuple[str, dict[str, Any]]]) -> tuple[Constraints, dict[str, str]]:
    """Merge raw constraint tables, later ones winning per rule key; also says where each rule came from."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, table in layers:
        for key, value in table.items():
            merged[key] = value
            sources[key] = origin
    try:
        return Constraints.model_validate(merged), sources
    except ValidationError as exc:
        raise SpecError([_located(err, sources) for err in exc.errors()]) from None


def _located(err: Any, sources: dict[str, str]) -> Problem:
    """A bad rule where it was written: pyproject.toml's line of the key (tomllib keeps no positions), else the
    spec or the command line."""
    loc = tuple(err["loc"])
    origin = sources.get(str(loc[0]), "constraints") if loc else "constraints"
    path = dotted(loc)
    line = 1
    if origin.endswith("pyproject.toml") and loc:
        path = f"tool.rfcalc.constraints.{path}"
        try:
            lines = Path(origin).read_text(encoding="utf-8").splitlines()
            line = next(i for i, text in enumerate(lines, 1) if re.match(rf"\s*{re.escape(str(loc[0]))}\s*=", text))
        except (OSError, StopIteration):
            pass
    return Problem(origin, line, 1, path, describe_error(err, Constraints))


def check_overrides(overrides: dict[str, Any]) -> None:
    """Rules given as flags (``{"require": ["dilatedconv"]}``), checked once before any file, in the words the
    spec file gets: ``--require: must be one of 'dilated_conv', …, got 'dilatedconv' (did you mean …?)``."""
    try:
        Constraints.model_validate(overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RfcalcError(f"--{err['loc'][0]}: {describe_error(err, Constraints)}") from None


def spec_constraints(spec: Spec, *, overrides: dict[str, Any] | None = None,
                     use_pyproject: bool = True) -> tuple[Constraints, dict[str, str]]:
    """The rules that apply to a spec: its own constraints, then the nearest pyproject's, then ``overrides``
    (later wins per rule key), and where each rule came from. `check` and `suggest` both use this."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if spec.constraints is not None:
        layers.append((spec.file, spec.constraints.model_dump(exclude_defaults=True)))
    if use_pyproject:
        start = Path(spec.file).resolve().parent if Path(spec.file).is_file() else Path.cwd()
        table, path = pyproject_constraints(start)
        if path is not None and table:
            layers.append((path, table))
    if overrides:
        layers.append(("command line", overrides))
    return merge_constraints(layers)


def check_spec(spec: Spec, *, overrides: dict[str, Any] | None = None, use_pyproject: bool = True) -> CheckResult:
    """Check a spec: its own constraints, then the nearest pyproject's, then ``overrides`` (later wins)."""
    constraints, sources = spec_constraints(spec, overrides=overrides, use_pyproject=use_pyproject)
    return CheckResult(spec.name, spec.file, tuple(evaluate_rules(spec.report, constraints)), sources,
                       spec.report.diagnostics)


def check_report(report: Report, file: str, overrides: dict[str, Any] | None = None) -> CheckResult:
    """Check a report that has no spec (an inspected module): pyproject's rules, then ``overrides``."""
    layers: list[tuple[str, dict[str, Any]]] = []
    table, path = pyproject_constraints(Path.cwd())
    if path is not None and table:
        layers.append((path, table))
    if overrides:
        layers.append(("command line", overrides))
    constraints, sources = merge_constraints(layers)
    return CheckResult(report.name, file, tuple(evaluate_rules(report, constraints)), sources, report.diagnostics)
