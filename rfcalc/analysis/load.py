"""`load_spec`: a file, a YAML string or a dict -> a validated :class:`Spec` (raises :class:`SpecError`)."""
from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rfcalc.analysis.calculator import calculate
from rfcalc.errors import Problem, SpecError
from rfcalc.spec.expand import Expander, RawLayer
from rfcalc.spec.graph import Node
from rfcalc.spec.messages import suggest, translate
from rfcalc.spec.models import LAYER_MODELS, OPS, Constraints, SpecFile
from rfcalc.spec.source import Source, parse_yaml, read_spec_text
from rfcalc.table.report import Report

if TYPE_CHECKING:
    from rfcalc.spec.train import TrainConfig


@dataclass(frozen=True)
class Spec:
    """A valid spec: its header, the expanded graph and the calculator's report."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    classes: int | None
    constraints: Constraints | None
    train: TrainConfig | None
    nodes: tuple[Node, ...]
    report: Report
    file: str
    data: dict[str, Any]

    @property
    def digest(self) -> str:
        """A short hash of the spec's content (ignores comments and key order)."""
        text = json.dumps(self.data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_spec(spec: str | Path | dict[str, Any] | Spec) -> Spec:
    """Load and validate a spec from a path, a YAML string or a dict."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return _from_data(spec, Source("<dict>"))
    if isinstance(spec, Path) or _looks_like_path(spec):
        path = Path(spec)
        text = read_spec_text(path)
        data, source = parse_yaml(text, str(spec))
        return _from_data(data, source)
    if not isinstance(spec, str):
        raise TypeError(f"load_spec takes a path, a YAML string or a dict, got {type(spec).__name__}")
    data, source = parse_yaml(spec, "<string>")
    return _from_data(data, source)


def load_spec_data(data: Any, source: Source) -> Spec:
    """A spec already parsed from YAML (e.g. a mapping inside a sweep file); ``source`` locates its errors."""
    return _from_data(data, source)


def _looks_like_path(text: object) -> bool:
    if not isinstance(text, str) or "\n" in text:
        return False
    return text.endswith((".yaml", ".yml")) or Path(text).is_file()


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects (a third of the time
    on a 10k-layer spec goes to collections that free nothing)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _from_data(data: Any, source: Source) -> Spec:
    with _no_gc():
        return _validated(data, source)


def _validated(data: Any, source: Source) -> Spec:
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "", f"the spec must be a mapping with version, name, input and "
                                                f"layers, got {type(data).__name__}")])
    try:
        top = SpecFile.model_validate(data)
    except ValidationError as exc:
        problems = translate(exc, source, (), "", SpecFile)
        unknown = sum(1 for e in exc.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
        at = len(problems) - unknown  # where pydantic lists the last field's (`train`'s) errors: before unknown keys
        problems[at:at] = _train_problems(data.get("train"), source)
        raise SpecError(problems) from None
    train = _train(top.train, source)
    problems, defaults = _check_defaults(top, source)
    expander = Expander(source, defaults, top.blocks, problems)
    layers = [RawLayer(item, ("layers", i), f"layers[{i}]") for i, item in enumerate(top.layers)]
    nodes = expander.sequence(layers, "")
    if expander.problems:
        raise SpecError(expander.problems)
    shape = (top.input.channels, *top.input.size)
    report, problems = calculate(top.name, shape, nodes, source)
    if report is None:
        raise SpecError(problems)
    if top.classes is not None and tuple(report.output.out_shape) != (top.classes,) and nodes:
        raise SpecError([_classes_problem(top.classes, report.output.out_shape, nodes[-1], source)])
    return Spec(top.name, shape, top.classes, top.constraints, train, nodes, report, source.file, data)


def _train(value: Any, source: Source) -> TrainConfig | None:
    """The `train:` section as a :class:`TrainConfig` (None when the spec has none); its model is loaded only then."""
    if value is None:
        return None
    from rfcalc.spec.train import TrainConfig

    try:
        return TrainConfig.model_validate(value)
    except ValidationError as exc:
        raise SpecError(translate(exc, source, ("train",), "train", TrainConfig)) from None


def _train_problems(value: Any, source: Source) -> list[Problem]:
    """The problems of the `train:` section (none when it is valid or absent)."""
    try:
        _train(value, source)
    except SpecError as exc:
        return list(exc.problems)
    return []


def _classes_problem(classes: int, output: tuple[int, ...], last: Node, source: Source) -> Problem:
    """`classes: N` with a model that does not end in N class scores: a spec error, located at `classes`."""
    other = f", or write classes: {output[0]}" if len(output) == 1 else ""
    return source.problem(("classes",), "classes", f"the model's output is {list(output)} per image ({last.path} "
                          f"'{last.name}' at line {source.locate(last.key)[0]}), not {classes} class scores; end the "
                          f"spec with {{op: linear, out: {classes}}} (or a conv to {classes} channels and gap){other}")


def _check_defaults(top: SpecFile, source: Source) -> tuple[list[Problem], dict[str, dict[str, Any]]]:
    """The problems of `defaults:`, and the defaults the layers get: without the fields found wrong, so that one
    bad default is one line, not one more for every layer it would be merged into."""
    problems: list[Problem] = []
    usable: dict[str, dict[str, Any]] = {}
    for op, fields in top.defaults.items():
        if op not in LAYER_MODELS:
            problems.append(source.problem(("defaults", op), f"defaults.{op}",
                                           f"unknown op '{op}'{suggest(op, OPS)}; allowed: {', '.join(OPS)}",
                                           at_key=True))
            continue
        bad_fields: set[str] = {bad for bad in ("op", "name", "repeat") if bad in fields}
        for bad in sorted(bad_fields):
            problems.append(source.problem(("defaults", op, bad), f"defaults.{op}.{bad}",
                                           f"'{bad}' cannot have a default", at_key=True))
        model = LAYER_MODELS[op]
        try:
            model.model_validate({"op": op, **fields})
        except ValidationError as exc:
            found = translate(exc, source, ("defaults", op), f"defaults.{op}", model)
            missing = {f"defaults.{op}.{e['loc'][0]}" for e in exc.errors() if e["type"] == "missing" and e["loc"]}
            # a rule across fields (norm: gn needs norm_groups) is checked on each layer, where its values meet
            problems.extend(p for p in found if p.path not in missing and p.path != f"defaults.{op}")
            bad_fields |= {str(e["loc"][0]) for e in exc.errors() if e["type"] != "missing" and e["loc"]}
        usable[op] = {k: v for k, v in fields.items() if k not in bad_fields}
    return problems, usable


def analyze(spec: str | Path | dict[str, Any] | Spec) -> Report:
    """The per-layer report of a spec (contract section 3). Torch-free."""
    return load_spec(spec).report
