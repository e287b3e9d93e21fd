"""A sweep file -> a checked :class:`Sweep`: the base spec, its rules, the space, the budget.

Every mistake is a located one-line :class:`~rfcalc.errors.Problem` (exit 2), as for specs: a path that leads
nowhere in the base spec, a value of `enqueue` outside its dimension, a base spec that is itself invalid.
Torch-free and optuna-free.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rfcalc.analysis.checker import pyproject_constraints
from rfcalc.analysis.load import Spec, load_spec, load_spec_data
from rfcalc.errors import Problem, SpecError
from rfcalc.spec.messages import suggest, translate
from rfcalc.spec.models import Constraints
from rfcalc.spec.source import Key, Source, parse_yaml
from rfcalc.sweep.model import Budget, Param, SweepFile
from rfcalc.sweep.paths import PathError, Token, locate, parse_path, show_path
from rfcalc.sweep.space import Dimension, Setting


@dataclass(frozen=True)
class Sweep:
    """A valid sweep: everything a trial needs, resolved."""

    file: str
    name: str
    base: dict[str, Any]            # the base spec as written, with the merged rules in `constraints`
    base_file: str                  # the base spec's file (the sweep file for an inline spec)
    dimensions: tuple[Dimension, ...]
    objective: tuple[str, ...]
    budget: Budget
    trials: int
    timeout: float | None
    pruner: str
    prune_after: int
    startup_trials: int
    population: int
    seed: int | None
    enqueue: tuple[dict[str, Any], ...]
    data: str | None                # from the sweep file (absolute), else None
    digest: str                     # what a study must have been made from to be continued
    min_epochs: int = 1             # successive_halving / hyperband: the first rung
    reduction_factor: int = 3       # successive_halving / hyperband: 1 in this many goes on

    @property
    def base_name(self) -> str:
        return str(self.base["name"])

    @property
    def measure(self) -> str:
        """What a trial's accuracy is measured on, in words."""
        return "held-out accuracy" if self.budget.holdout else "test accuracy"

    @property
    def second_objective(self) -> str:
        """What accuracy is traded against in plots and the Pareto front: params unless the objective says macs."""
        return self.objective[1] if len(self.objective) > 1 else "params"


def read_text(path: Path) -> str:
    """The sweep file's text, with one-line errors for missing, unreadable, binary or empty files."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(name, 1, 1, "", "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(name, 1, 1, "", "is a directory, expected a sweep file (YAML)")]) from None
    except OSError as exc:
        raise SpecError([Problem(name, 1, 1, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig") if b"\x00" not in raw else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise SpecError([Problem(name, 1, 1, "", "not UTF-8 text, expected a sweep file (YAML)")])
    if not text.strip():
        raise SpecError([Problem(name, 1, 1, "", "the sweep file is empty; it needs at least `version`, `spec`, "
                                                 "`space`, `budget` and `trials`")])
    return text


def load_sweep(path: str | Path) -> Sweep:
    """Load and check a sweep file; raises :class:`SpecError` with every located problem."""
    path = Path(path)
    data, source = parse_yaml(read_text(path), str(path))
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "", f"a sweep file is a mapping with version, spec, space, budget and "
                                                f"trials, got {type(data).__name__}")])
    if "layers" in data and "spec" not in data:
        raise SpecError([Problem(str(path), 1, 1, "", _model_spec_hint(data, path))])
    try:
        top = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_translate(exc, source)) from None
    base_spec = _base_spec(top, data, source, path)
    base = dict(base_spec.data)
    rules = _rules(top, base_spec, source)
    if rules:
        base["constraints"] = rules
    problems: list[Problem] = []
    dimensions = _dimensions(top, base, source, problems)
    if len(top.objective) > 1 and top.pruner != "none" and "pruner" in top.model_fields_set:
        problems.append(source.problem(("pruner",), "pruner", f"Optuna cannot prune the trials of a two-objective "
                                                              f"study; use pruner: none, got {top.pruner!r}"))
    if top.pruner in ("successive_halving", "hyperband") and top.min_epochs > top.budget.epochs:
        problems.append(source.problem(("min_epochs",), "min_epochs", f"the first rung of the {top.pruner} pruner "
                                                                      f"must be within budget.epochs "
                                                                      f"({top.budget.epochs}), got {top.min_epochs}"))
    enqueue = _enqueue(top, dimensions, source, problems)
    if problems:
        raise SpecError(problems)
    sweep_data = None
    if top.data is not None:
        sweep_data = top.data if top.data.lower().replace("-", "") in ("cifar10", "cifar100") else str(
            (path.parent / top.data).expanduser().resolve())
    digest = hashlib.sha256(json.dumps({
        "base": base, "space": {d.name: d.param.model_dump(by_alias=True) for d in dimensions},
        "objective": top.objective, "budget": top.budget.model_dump()}, sort_keys=True, default=str).encode())
    return Sweep(str(path), top.name or path.stem.removesuffix(".sweep"), base, base_spec.file, tuple(dimensions),
                 top.objective, top.budget, top.trials, top.timeout,
                 "none" if len(top.objective) > 1 else top.pruner, top.prune_after, top.startup_trials,
                 top.population, top.seed,
                 tuple(enqueue), sweep_data, digest.hexdigest()[:16], top.min_epochs, top.reduction_factor)


def _model_spec_hint(data: dict[str, Any], path: Path) -> str:
    """One line for a model spec given where a sweep file belongs: what a sweep file over it looks like."""
    given = data.get("layers")
    layers: list[Any] = given if isinstance(given, list) else []
    named = next((item for item in layers if isinstance(item, dict) and isinstance(item.get("name"), str)
                  and isinstance(item.get("out"), int)), None)
    where = f"layers.{named['name']}.out" if named else "'layers[0].out'"
    return (f"this is a model spec (it has layers:), not a sweep file; a sweep file names it: version: 1, "
            f"spec: {path.name}, space: {{width: {{path: {where}, int: [16, 64], step: 16}}}}, "
            f"budget: {{epochs: 2}}, trials: 12 (docs/sweep.md)")


def _translate(exc: ValidationError, source: Source) -> list[Problem]:
    """pydantic's errors as located lines; a dimension's unknown keys list the keys a dimension takes."""
    problems = translate(exc, source, (), "", SweepFile)
    param_keys = ", ".join(sorted((f.alias or name) for name, f in Param.model_fields.items()))
    out = []
    for problem, err in zip(problems, _distinct(exc)):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "space":
            hint = suggest(loc[2], param_keys.split(", "))
            problem = Problem(problem.file, problem.line, problem.column, problem.path,
                              f"unknown key '{loc[2]}'{hint}; allowed: {param_keys}")
        out.append(problem)
    return out


def _distinct(exc: ValidationError) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for err in exc.errors():
        if tuple(err["loc"]) not in seen:
            seen.add(tuple(err["loc"]))
            out.append(dict(err))
    return out


def _base_spec(top: SweepFile, data: dict[str, Any], source: Source, path: Path) -> Spec:
    """The base spec: a file beside the sweep file, or the inline mapping (its errors located in the sweep file)."""
    if isinstance(top.spec, str):
        spec_path = Path(os.path.normpath(path.parent / Path(top.spec).expanduser()))
        if not spec_path.is_file():
            what = "is a directory" if spec_path.is_dir() else "no such file"
            raise SpecError([source.problem(("spec",), "spec", f"{top.spec}: {what} (looked in "
                                                               f"{path.parent.resolve()}); give a spec file or an "
                                                               f"inline spec")])
        return load_spec(spec_path)
    inner = Source(source.file, {k[1:]: v for k, v in source.values.items() if k[:1] == ("spec",)},
                   {k[1:]: v for k, v in source.keys.items() if k[:1] == ("spec",) and len(k) > 1})
    try:
        return load_spec_data(data["spec"], inner)
    except SpecError as exc:
        raise SpecError([Problem(p.file, p.line, p.column, f"spec.{p.path}" if p.path else "spec", p.message)
                         for p in exc.problems]) from None


def _rules(top: SweepFile, base: Spec, source: Source) -> dict[str, Any]:
    """The base spec's rules, then its pyproject's, then the sweep file's (per rule, later wins), as raw YAML."""
    merged: dict[str, Any] = dict(base.data.get("constraints") or {})
    start = Path(base.file).resolve().parent if Path(base.file).is_file() else Path.cwd()
    table, _ = pyproject_constraints(start)
    merged.update(table)
    if top.constraints is not None:
        try:
            Constraints.model_validate(top.constraints)
        except ValidationError as exc:
            raise SpecError(translate(exc, source, ("constraints",), "constraints", Constraints)) from None
        merged.update(top.constraints)
    return merged


def _dimensions(top: SweepFile, base: dict[str, Any], source: Source, problems: list[Problem]) -> list[Dimension]:
    dims: list[Dimension] = []
    owners: dict[tuple[Token, ...], str] = {}
    budget_fields = {k for k, v in top.budget.model_dump().items() if v is not None}

    def check(text: str, key: Key, where: str, name: str, *, at_key: bool = False) -> tuple[Token, ...] | None:
        try:
            tokens = parse_path(text)
            locate(base, tokens)
        except PathError as exc:
            problems.append(source.problem(key, where, str(exc), at_key=at_key))
            return None
        if len(tokens) == 2 and tokens[0] == "train" and tokens[1] in budget_fields:
            problems.append(source.problem(key, where, f"budget.{tokens[1]} sets {show_path(tokens)} for every "
                                                       f"trial; search it here or set it there, not both",
                                           at_key=at_key))
            return None
        if tokens in owners and owners[tokens] != name:
            problems.append(source.problem(key, where, f"{show_path(tokens)} is also set by space.{owners[tokens]}; "
                                                       f"a path belongs to one dimension", at_key=at_key))
            return None
        owners[tokens] = name
        return tokens

    for name, param in top.space.items():
        if param.labelled:
            labelled: list[tuple[str, tuple[Setting, ...]]] = []
            for label, settings in (param.choices or {}).items():  # type: ignore[union-attr]
                parsed = []
                for text, value in settings.items():
                    tokens = check(str(text), ("space", name, "choices", label, text), f"space.{name}.choices.{label}",
                                   name, at_key=True)
                    if tokens is not None:
                        parsed.append((tokens, value))
                labelled.append((str(label), tuple(parsed)))
            dims.append(Dimension(name, param, labelled=tuple(labelled)))
            continue
        texts = param.paths
        paths = []
        for i, text in enumerate(texts):
            key: Key = ("space", name, "path", *((i,) if isinstance(param.path, list) else ()))
            where = f"space.{name}.path" + (f"[{i}]" if isinstance(param.path, list) else "")
            tokens = check(text, key, where, name)
            if tokens is not None:
                paths.append(tokens)
                if tokens[-1] == "use" and param.kind == "choices":
                    _block_names(base, param, name, source, problems)
        dims.append(Dimension(name, param, paths=tuple(paths)))
    return dims


def _block_names(base: dict[str, Any], param: Param, name: str, source: Source, problems: list[Problem]) -> None:
    """Choices of a `use:` path must name blocks of the base spec (a typo would reject every candidate with it)."""
    given = base.get("blocks")
    blocks: dict[str, Any] = given if isinstance(given, dict) else {}
    for i, value in enumerate(list(param.choices or [])):
        if value not in blocks:
            known = [str(b) for b in blocks]
            problems.append(source.problem(("space", name, "choices", i), f"space.{name}.choices[{i}]",
                                           f"no block {value!r} in the spec's blocks{suggest(str(value), known)}; "
                                           f"blocks: {', '.join(known) or 'none'}"))


def _enqueue(top: SweepFile, dims: list[Dimension], source: Source, problems: list[Problem]) -> list[dict[str, Any]]:
    by_name = {d.name: d for d in dims}
    for i, entry in enumerate(top.enqueue):
        for name, value in entry.items():
            key = ("enqueue", i, name)
            if name not in by_name:
                problems.append(source.problem(key, f"enqueue[{i}].{name}", f"no dimension {name!r} in space"
                                               f"{suggest(name, list(by_name))}; dimensions: {', '.join(by_name)}",
                                               at_key=True))
                continue
            problem = by_name[name].problem(value)
            if problem:
                problems.append(source.problem(key, f"enqueue[{i}].{name}", problem))
    return [dict(entry) for entry in top.enqueue]
