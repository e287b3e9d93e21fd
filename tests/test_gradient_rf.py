"""Gradient receptive fields: the table's window of every feature-map row against the module itself.

Every path is made strictly positive (rfcalc.model.oracle.positive_copy), one output unit is back-propagated,
and the input pixels it depends on are read off: inside the image their extremes equal
``start + u·jump ± (rf−1)/2`` exactly; where the image edge clips the window they stay inside it.
First, middle and last unit of every row that outputs a feature map.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import bundled_specs

import rfcalc
from rfcalc.model.oracle import (
    GradientProbe,
    gradient_windows,
    module_problems,
    positive_copy,
)

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = bundled_specs()


pytestmark = pytest.mark.usefixtures("one_thread")


def spec_of(layers: list[dict], size: int | list[int] = 16, channels: int = 2) -> rfcalc.Spec:
    return rfcalc.load_spec({"version": 1, "name": "t", "input": {"channels": channels, "size": size},
                             "layers": layers})


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.slow
def test_bundled_spec_gradient_windows(path: Path) -> None:
    spec = rfcalc.load_spec(path)  # a bundled spec is valid: a SpecError fails the test
    assert module_problems(spec) == []


def test_contract_example_with_every_op() -> None:
    assert module_problems(rfcalc.load_spec(ROOT / "tests" / "specs" / "every_op.yaml")) == []


EDGE_CASES = {
    "dilation leaves holes at the edge": [{"op": "conv", "k": 3, "dilation": 3, "padding": 1, "stride": 2},
                                          {"op": "conv", "k": 3, "dilation": 2, "padding": 2}],
    "even kernels, half-pixel centres": [{"op": "conv", "k": 2}, {"op": "conv", "k": 4, "stride": 2, "padding": 1},
                                         {"op": "avgpool", "k": 2}],
    "padding wider than the kernel": [{"op": "conv", "k": 1, "padding": 3}, {"op": "conv", "k": 3, "stride": 3}],
    "ceil_mode pools": [{"op": "maxpool", "k": 3, "stride": 2, "ceil_mode": True},
                        {"op": "avgpool", "k": 2, "padding": 1, "ceil_mode": True}],
    "rectangular everything": [{"op": "conv", "k": [1, 5], "stride": [2, 1], "padding": [0, 2],
                                "dilation": [1, 2]}, {"op": "maxpool", "k": [3, 1], "stride": [1, 2]}],
    "misaligned concat": [{"op": "parallel", "paths": [[{"op": "conv", "k": 3, "padding": 2}],
                                                       [{"op": "conv", "k": 5, "padding": 3}]]}],
    "strided residual with a shortcut conv": [
        {"op": "conv", "out": 4, "padding": 1},
        {"op": "residual", "body": [{"op": "conv", "out": 8, "stride": 2, "padding": 1, "norm": "bn", "act": "relu"},
                                    {"op": "conv", "out": 8, "padding": "same", "dilation": 2}],
         "shortcut": [{"op": "conv", "out": 8, "k": 1, "stride": 2}], "act": "silu"}],
    "depthwise and separable": [{"op": "conv", "groups": "depthwise", "out": 4, "k": 5, "padding": 1},
                                {"op": "conv", "separable": True, "out": 3, "dilation": 2, "stride": 2}],
    "global pool after feature maps": [{"op": "conv", "k": 3}, {"op": "gap", "mode": "max"},
                                       {"op": "linear", "out": 3}],
    "a strided 1x1 conv skips pixels: not global": [{"op": "conv", "k": 1, "stride": 2}, {"op": "gap"},
                                                    {"op": "linear", "out": 2}],
    "flatten then linear sees every pixel": [{"op": "conv", "k": 3, "padding": 1, "stride": 2}, {"op": "flatten"},
                                             {"op": "linear", "out": 3}],
    "wide dense windows are global": [{"op": "conv", "k": 17, "padding": 8}, {"op": "conv", "k": 17, "padding": 8}],
    "wide dilated windows keep holes": [{"op": "conv", "k": 3, "dilation": 8, "padding": 8},
                                        {"op": "conv", "k": 3, "dilation": 8, "padding": 8}],
}
# Branches whose windows have different centres: the merged RF is the union of the windows, which the seeds'
# hand tables get wrong (they take the larger RF). On an even input a ceil-mode 3x3 pool (unit 0 sees [0, 2])
# beside a padded strided 3x3 conv ([-1, 1]) gives the union [-1, 2]: RF 4, wider than either branch.
OFF_CENTRE = {
    "ceil-mode pool beside a padded strided conv": [
        {"op": "conv", "out": 2, "k": 1},
        {"op": "parallel", "merge": "concat", "paths": [
            [{"op": "maxpool", "k": 3, "stride": 2, "ceil_mode": True}],
            [{"op": "conv", "out": 2, "k": 3, "stride": 2, "padding": 1}]]},
        {"op": "conv", "out": 2, "k": 3, "padding": 1}],
    "residual with a strided 2x2 shortcut": [
        {"op": "residual", "body": [{"op": "conv", "out": 3, "k": 3, "stride": 2, "padding": 1, "act": "relu"}],
         "shortcut": [{"op": "conv", "out": 3, "k": 2, "stride": 2}]}],
    "residual with a ceil-mode pool shortcut": [
        {"op": "conv", "out": 3, "k": 1},
        {"op": "residual", "body": [{"op": "conv", "out": 3, "k": 3, "stride": 2, "padding": 1, "norm": "bn"}],
         "shortcut": [{"op": "avgpool", "k": 3, "stride": 2, "ceil_mode": True}], "act": "relu"}],
    "the narrower, off-centre branch first": [
        {"op": "parallel", "merge": "add", "paths": [
            [{"op": "conv", "out": 2, "k": 2, "stride": 2}],
            [{"op": "conv", "out": 2, "k": 3, "stride": 2, "padding": 1}]]},
        {"op": "conv", "out": 2, "k": 3, "padding": 1}],
}


@pytest.mark.parametrize("layers", list(EDGE_CASES.values()), ids=list(EDGE_CASES))
def test_edge_cases(layers: list[dict]) -> None:
    assert module_problems(spec_of(layers, size=[13, 16])) == []


@pytest.mark.parametrize("layers", list(OFF_CENTRE.values()), ids=list(OFF_CENTRE))
def test_off_centre_merges(layers: list[dict]) -> None:
    assert module_problems(spec_of(layers, size=[12, 16])) == []


def test_union_of_an_off_centre_merge_by_hand() -> None:
    spec = spec_of(OFF_CENTRE["ceil-mode pool beside a padded strided conv"], size=12)
    merge = spec.report.row("parallel2")
    assert (merge.geo_out.rf, merge.geo_out.start2) == ((4, 4), (1, 1))  # [-1, 2]: RF 4 centred on 0.5
    assert [d.code for d in spec.report.diagnostics] == ["misaligned-merge"]


NOT_NESTED = ["ceil-mode pool beside a padded strided conv", "residual with a ceil-mode pool shortcut"]


@pytest.mark.parametrize("name", NOT_NESTED)
def test_the_oracle_catches_max_instead_of_union(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeds' mistake as a mutation of the calculator: the merged window is the larger branch's window (the
    first branch's when they tie). Where the branches' windows are off-centre and not nested, the union is wider
    than either, and the gradient oracle must see the mutation. (Nested windows: max and union agree.)"""
    from rfcalc.analysis import calculator
    from rfcalc.table.report import Geometry

    def larger(geos: list[Geometry]) -> Geometry:
        widest = max(geos, key=lambda g: g.rf)
        return Geometry(widest.rf, geos[0].jump, geos[0].start2 if geos[0].rf == widest.rf else widest.start2)

    honest = spec_of(OFF_CENTRE[name], size=[12, 16])
    monkeypatch.setattr(calculator, "union_geometry", larger)
    mutated = spec_of(OFF_CENTRE[name], size=[12, 16])
    assert mutated.report.to_dict() != honest.report.to_dict()
    assert module_problems(mutated) != []


def test_the_oracle_sees_a_wrong_table() -> None:
    """A module checked against a table with the same shapes but other windows disagrees: the check bites."""
    plain = spec_of([{"op": "conv", "k": 3, "padding": 1}, {"op": "conv", "k": 3, "padding": 1}])
    dilated = spec_of([{"op": "conv", "k": 3, "padding": 1}, {"op": "conv", "k": 3, "padding": 2, "dilation": 2}])
    assert module_problems(plain) == []
    problems = module_problems(dilated, rfcalc.build_model(plain))
    assert problems and all("gradient" in p for p in problems)
    assert any(p.startswith("conv2 unit (7, 7) axis h: table [4, 10]") for p in problems)


def test_the_oracle_sees_a_wrong_global_flag() -> None:
    """A 2x2 stride-2 conv sees every pixel, a 1x1 one every other: checked against the other's table, the
    global flag is caught both ways."""
    dense = spec_of([{"op": "conv", "k": 2, "stride": 2}, {"op": "gap"}])
    holes = spec_of([{"op": "conv", "k": 1, "stride": 2}, {"op": "gap"}])
    assert dense.report.is_global and not holes.report.is_global
    assert module_problems(dense) == [] and module_problems(holes) == []
    wrong = module_problems(dense, rfcalc.build_model(holes))
    assert any("the table says global, but" in p for p in wrong)
    wrong = module_problems(holes, rfcalc.build_model(dense))
    assert any("the table says not global, but it depends on every pixel" in p for p in wrong)


def test_measured_windows_by_hand() -> None:
    spec = spec_of([{"op": "conv", "name": "a", "k": 3, "stride": 2}, {"op": "conv", "name": "b", "k": 3}],
                   size=12, channels=1)
    windows = gradient_windows(rfcalc.build_model(spec), spec.input_shape, "b")
    # b is 3x3; unit u sees input pixels [2u, 2u + 6]
    assert windows == {(0, 0): ((0, 6), (0, 6)), (1, 1): ((2, 8), (2, 8)), (2, 2): ((4, 10), (4, 10))}


def test_positive_copy_leaves_the_model_alone() -> None:
    spec = spec_of([{"op": "conv", "norm": "bn", "act": "relu", "dropout": 0.5}, {"op": "maxpool"}])
    model = rfcalc.build_model(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    positive = positive_copy(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all((p > 0).all() and p.dtype == torch.float64 for p in positive.parameters())
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.BatchNorm2d))
                   for m in positive.modules())


def test_probe_rejects_a_vector_output() -> None:
    spec = spec_of([{"op": "gap"}])
    probe = GradientProbe(rfcalc.build_model(spec), spec.input_shape, ["gap1"])
    with pytest.raises(ValueError, match="not a feature map"):
        probe.windows("gap1")
