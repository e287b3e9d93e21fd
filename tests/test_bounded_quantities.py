"""The registry of bounded quantities (rfcalc.quantities.QUANTITIES): every registered quantity has each of its
pieces, tested per quantity, so that one added to the registry without a constraints key, a flag, a measure,
a checker rule, the edits that move it or a sweep path fails here by name."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from rfcalc.analysis.checker import evaluate_rules
from rfcalc.analysis.load import load_spec
from rfcalc.cli.app import app
from rfcalc.quantities import BOUNDED, QUANTITIES, Lever, Quantity
from rfcalc.spec.models import Bound, Constraints
from rfcalc.suggest import suggest
from rfcalc.suggest.candidates import Generator
from rfcalc.suggest.goals import Direction, distance, goal_of
from rfcalc.suggest.result import Status
from rfcalc.suggest.sites import find_sites, node_keys
from rfcalc.sweep.paths import allowed_keys, apply, parse_path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
EACH = pytest.mark.parametrize("quantity", QUANTITIES, ids=[q.name for q in QUANTITIES])


def _data() -> dict[str, Any]:
    """The quickstart spec without its own rules."""
    data = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    data.pop("constraints", None)
    return dict(data)


def _values(quantity: Quantity) -> tuple[int, ...]:
    return quantity.measure(load_spec(_data()).report)


def test_the_registry_is_keyed_by_name() -> None:
    assert list(BOUNDED) == [q.name for q in QUANTITIES]
    assert len({q.flag for q in QUANTITIES}) == len(QUANTITIES)
    assert len({q.label for q in QUANTITIES}) == len(QUANTITIES)


@EACH
def test_a_quantity_is_described(quantity: Quantity) -> None:
    assert quantity.flag == f"--{quantity.name.replace('_', '-')}"
    assert quantity.label and quantity.help and quantity.unit
    assert isinstance(quantity.lever, Lever)


@EACH
def test_a_quantity_is_a_constraints_key_in_both_forms(quantity: Quantity) -> None:
    assert quantity.name in Constraints.model_fields
    bound = getattr(Constraints.model_validate({quantity.name: ">=1k"}), quantity.name)
    assert isinstance(bound, Bound) and bound.items() == [("ge", 1000)]
    assert getattr(Constraints.model_validate({quantity.name: {"lt": 5}}), quantity.name).items() == [("lt", 5)]
    with pytest.raises(ValidationError):
        Constraints.model_validate({quantity.name: "about 5"})


@EACH
def test_a_quantity_measures_what_the_json_report_says(quantity: Quantity) -> None:
    """The registry's measure against the `table --format json` totals (the contract's numbers)."""
    report = load_spec(_data()).report
    values = quantity.measure(report)
    total = report.to_dict()["totals"][quantity.name]
    assert list(values) == (total if quantity.per_axis else [total])
    assert len(values) == (2 if quantity.per_axis else 1)
    assert all(isinstance(v, int) and v > 0 for v in values)


@EACH
def test_check_bounds_a_quantity(quantity: Quantity) -> None:
    report = load_spec(_data()).report
    values = quantity.measure(report)
    passing, failing = (evaluate_rules(report, Constraints.model_validate({quantity.name: bound}))
                        for bound in ({"le": max(values)}, {"lt": min(values)}))
    assert [(r.kind, r.ok) for r in passing] == [(quantity.name, True)]
    assert [(r.kind, r.ok, r.op) for r in failing] == [(quantity.name, False, "lt")]
    rule = failing[0]
    assert rule.message.startswith(f"{quantity.label} {quantity.show(values)} < ")
    assert rule.value == (list(values) if quantity.per_axis else values[0])
    assert distance(rule) == max(values) - min(values) + 1


@EACH
@pytest.mark.parametrize("command", ["check", "suggest"])
def test_a_quantity_is_a_flag_of_check_and_suggest(quantity: Quantity, command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    options = {opt: param for param in click_command.params for opt in getattr(param, "opts", ())}
    assert quantity.flag in options
    assert options[quantity.flag].help == quantity.help


@EACH
def test_the_flag_becomes_the_quantity_s_rule(quantity: Quantity) -> None:
    result = CliRunner().invoke(app, ["check", str(QUICKSTART), quantity.flag, ">=1", "--format", "json"])
    rules = json.loads(result.stdout)["results"][0]["rules"]
    assert [r["kind"] for r in rules if r["rule"].startswith(quantity.label + " ")] == [quantity.name]
    bad = CliRunner().invoke(app, ["check", str(QUICKSTART), quantity.flag, "about 5"])
    assert bad.exit_code == 2 and bad.output.startswith(f"{quantity.flag}: ")


@EACH
@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_suggest_moves_a_quantity_both_ways(quantity: Quantity, direction: Direction) -> None:
    """The registry's lever gives edits each way, and the search fixes a bound 20% away."""
    data = _data()
    values = _values(quantity)
    bound = {"gt": int(max(values) * 1.2)} if direction is Direction.UP else {"lt": int(min(values) * 0.8)}
    constraints = Constraints.model_validate({quantity.name: bound})
    spec = load_spec(data)
    rule = evaluate_rules(spec.report, constraints)[0]
    goal = goal_of(rule)
    assert goal is not None and goal.quantity == quantity.name and goal.direction is direction
    names, keys = node_keys(spec.nodes)
    generator = Generator(find_sites(data, names), keys, spec.report)
    assert generator.ladders(goal)
    result = suggest(spec, constraints)
    assert result.status is Status.FIXED, quantity.name


@EACH
def test_a_quantity_is_a_sweep_path(quantity: Quantity) -> None:
    prefix = ("constraints", quantity.name)
    assert allowed_keys(prefix, {}, {}) == tuple(Bound.model_fields)
    data = apply(_data(), [(parse_path(f"constraints.{quantity.name}.ge"), 1)])
    assert data["constraints"] == {quantity.name: {"ge": 1}}
    assert getattr(Constraints.model_validate(copy.deepcopy(data["constraints"])), quantity.name).items() == [("ge", 1)]
