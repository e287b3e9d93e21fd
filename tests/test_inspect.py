"""``rfcalc.inspect_module``: hand-written PyTorch models against the report of the equivalent spec, and against
the gradient windows of the modules themselves.

For each model of tests/models_for_inspect.py (a chain with dilated, depthwise and strided convs, two branches
joined by concat, residual blocks with projection shortcuts, functional-style forward code, a torchvision-style
ResNet-50): the inspected report has exactly the rows of its spec (names aside): parameters, shapes, kernels,
strides, paddings, dilations, groups, RF, jump and start; and every feature-map row's window agrees with the
input support of the traced node's output in a strictly positive copy of the module (rfcalc.model.oracle).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import models_for_inspect as M
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from conftest import bundled_specs
from torch import nn

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.inspection.api import inspect_module, trace_module, traced
from rfcalc.inspection.to_spec import dropped_settings, signature, spec_from_inspection, spec_yaml
from rfcalc.model.oracle import default_units, positive_copy, window_mismatches
from rfcalc.table.report import Report

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (3, 32, 32)

PAIRS: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "chain": (M.ChainNet, M.CHAIN_SPEC),
    "two_branch": (M.TwoBranchNet, M.TWO_BRANCH_SPEC),
    "residual": (M.ResidualNet, M.RESIDUAL_SPEC),
    "functional": (M.FunctionalNet, M.FUNCTIONAL_SPEC),
}


def numbers(report: Report) -> list[tuple[Any, ...]]:
    """Every row's numbers in execution order, without names."""
    return [signature(row) for row in report.to_dict()["layers"]]


def same_table(inspected: Report, spec: Report) -> None:
    a, b = inspected.to_dict(), spec.to_dict()
    assert numbers(inspected) == numbers(spec)
    assert a["totals"] == b["totals"]
    assert a["input"] == b["input"]
    assert [d["code"] for d in a["diagnostics"]] == [d["code"] for d in b["diagnostics"]]
    assert set(a["layers"][0]) == set(b["layers"][0]) - {"attached_to"} | set(a["layers"][0])


# -- the report equals the equivalent spec's ---------------------------------------------------------------------
@pytest.mark.parametrize("name", PAIRS)
def test_report_equals_the_equivalent_spec(name: str) -> None:
    make, spec = PAIRS[name]
    model = make()
    report = rfcalc.inspect_module(model, SHAPE)
    same_table(report, rfcalc.analyze(spec))
    assert report.params == sum(p.numel() for p in model.parameters())


def test_rows_are_named_after_modules_and_nodes() -> None:
    report = inspect_module(M.ResidualNet(), SHAPE)
    names = [r.name for r in report.rows]
    # the stem Sequential(conv, bn, relu) is one spec conv: named after it, its bn and relu folded in
    assert names[:4] == ["stem", "stem.1", "stem.2", "block1.conv1"]
    assert [report.row(n).attached_to for n in names[:4]] == [None, "stem", "stem", None]
    # the block's one ReLU module is called twice: the second call gets a suffix
    assert "block1.relu" in names and "block1.relu_1" in names
    # a block's one merge is named after the block (issue 25 item 12)
    add = report.row("block2")
    assert add.op == "add" and add.inputs == ("block2.bn2", "block2.shortcut.1")
    assert report.row("block2.relu_1").inputs == ("block2",)
    # paths are the lines of the forward code that made each row
    source = Path(M.__file__).read_text(encoding="utf-8").splitlines()
    stem_line = source.index("        x = self.block3(self.block2(self.block1(self.stem(x))))") + 1
    body_line = source.index("        out = self.relu(self.bn1(self.conv1(x)))") + 1
    assert report.rows[0].path.endswith(f"models_for_inspect.py:{stem_line}")
    assert report.row("block1.conv1").path.endswith(f"models_for_inspect.py:{body_line}")


def test_json_has_exactly_the_fields_of_analyze() -> None:
    inspected = inspect_module(M.ChainNet(), SHAPE).to_dict()
    analyzed = rfcalc.analyze(M.CHAIN_SPEC).to_dict()
    assert set(inspected) == set(analyzed)
    assert set(inspected["totals"]) == set(analyzed["totals"])
    base = set.intersection(*(set(row) for row in analyzed["layers"]))
    for row in inspected["layers"]:
        assert base <= set(row) <= base | {"bias", "ceil_mode", "mode", "p", "in_shapes", "dim", "attached_to", "attrs"}


@pytest.mark.slow
def test_resnet50_trunk_rf_427_jump_32() -> None:
    report = inspect_module(M.resnet50_trunk(), (3, 224, 224))
    assert report.rf == (427, 427)
    assert report.output.geo_out.jump == (32, 32)
    assert report.output.out_shape == (2048, 7, 7)
    assert report.params == 23_508_032
    same_table(report, rfcalc.analyze(M.resnet50_trunk_spec()))


@pytest.mark.slow
def test_full_resnet50_counts_like_pytorch() -> None:
    model = M.resnet50()
    report = inspect_module(model, (3, 224, 224))
    assert report.params == sum(p.numel() for p in model.parameters()) == 25_557_032
    assert report.output.out_shape == (1000,)
    assert [r.op for r in report.rows[-3:]] == ["gap", "flatten", "linear"]
    assert not report.diagnostics


# -- gradient windows --------------------------------------------------------------------------------------------
def gradient_problems(model: nn.Module, shape: tuple[int, int, int], rows: list[str] | None = None) -> list[str]:
    """Each feature-map row's window against the input support of its fx node in a positive copy of ``model``."""
    inspection = trace_module(model, shape)
    report = inspection.report
    wanted = {r.name for r in report.rows if r.is_feature_map and (rows is None or r.name in rows)}
    nodes = {inspection.row_nodes[name]: name for name in wanted}
    positive = positive_copy(model)
    gm = traced(positive)
    captured: dict[str, torch.Tensor] = {}

    class Keeper(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            if n.name in nodes:
                captured[nodes[n.name]] = result.clone()
            return result

    batch = 3
    x = torch.rand((batch, *shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    Keeper(gm).run(x)
    problems: list[str] = []
    for name in sorted(wanted):
        out = captured[name]
        units = default_units(out.shape[2], out.shape[3])
        seed = sum(out[i, :, h, w].sum() for i, (h, w) in enumerate(units))
        (grad,) = torch.autograd.grad(seed, x, retain_graph=True)
        windows = {}
        for i, unit in enumerate(units):
            support = (grad[i] != 0).any(dim=0)
            windows[unit] = (_extent(support.any(dim=1)), _extent(support.any(dim=0)))
        problems.extend(window_mismatches(report.row(name), windows, shape[1:]))
    return problems


def _extent(mask: torch.Tensor) -> tuple[int, int] | None:
    index = torch.nonzero(mask).flatten()
    return None if index.numel() == 0 else (int(index[0]), int(index[-1]))


@pytest.mark.parametrize("name", PAIRS)
def test_gradient_windows_agree(name: str) -> None:
    make = PAIRS[name][0]
    model = M.FunctionalNet(head=False) if name == "functional" else make()
    assert gradient_problems(model, SHAPE) == []


@pytest.mark.slow
def test_gradient_windows_of_resnet50_trunk() -> None:
    """A narrow ResNet-50 (same strides, kernels and paddings) on 512x512, where the middle unit's 427-pixel
    window lies inside the image: its gradient support is exactly the table's window."""
    model = M.resnet50_trunk(width=2)
    report = inspect_module(model, (3, 512, 512))
    assert report.rf == (427, 427) and report.output.geo_out.jump == (32, 32)
    lo, hi = report.output.geo_out.window(0, 7)
    assert 0 <= lo and hi <= 511
    adds = [r.name for r in report.rows if r.op == "add"]
    assert gradient_problems(model, (3, 512, 512), rows=[adds[2], adds[6], report.output.name]) == []


def test_misaligned_branches_window_is_the_union() -> None:
    class Skewed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(2, 4, 3, stride=2, padding=1)
            self.b = nn.Conv2d(2, 4, 2, stride=2)
            self.b2 = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b2(self.b(x))

    report = inspect_module(Skewed(), (2, 16, 16))
    assert [d.code for d in report.diagnostics] == ["misaligned-merge"]
    spec = rfcalc.analyze({"version": 1, "name": "s", "input": {"channels": 2, "size": 16}, "layers": [
        {"op": "parallel", "merge": "add", "paths": [
            [{"op": "conv", "out": 4, "stride": 2, "padding": 1}],
            [{"op": "conv", "out": 4, "k": 2, "stride": 2}, {"op": "conv", "out": 4, "padding": 1}]]}]})
    same_table(report, spec)
    assert gradient_problems(Skewed(), (2, 16, 16)) == []


# -- built specs round-trip ----------------------------------------------------------------------------------------
BUNDLED = bundled_specs(recursive=False)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_built_spec_inspects_to_its_own_table(path: Path) -> None:
    spec = rfcalc.load_spec(path)
    model = rfcalc.build_model(spec)
    report = inspect_module(model, spec.input_shape)
    same_table(report, spec.report)


# -- --to-spec -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PAIRS)
def test_to_spec_writes_the_same_network(name: str) -> None:
    inspection = trace_module(PAIRS[name][0](), SHAPE)
    spec = spec_from_inspection(inspection)
    written = rfcalc.analyze(spec)
    assert sorted(numbers(written)) == sorted(numbers(inspection.report))
    assert written.to_dict()["totals"] == inspection.report.to_dict()["totals"]


@pytest.mark.slow
def test_to_spec_of_resnet50_is_nested_residuals() -> None:
    spec = spec_from_inspection(trace_module(M.resnet50(), (3, 224, 224)))
    ops = [layer["op"] for layer in spec["layers"]]
    assert ops == ["conv", "maxpool"] + ["residual"] * 16 + ["gap", "flatten", "linear"]
    first = spec["layers"][2]
    assert first["act"] == "relu" and len(first["body"]) == 3 and len(first["shortcut"]) == 1
    assert first["body"][0] == {"op": "conv", "name": "layer1_0_conv1", "out": 64, "k": 1, "bias": False,
                                "norm": "bn", "act": "relu"}
    assert "shortcut" not in spec["layers"][3]


def test_to_spec_refuses_ops_without_a_spec_equivalent() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid())
    with pytest.raises(RfcalcError, match=r"cannot write a spec: '1' \(sigmoid has no spec op\)"):
        spec_from_inspection(trace_module(model, SHAPE))
    slope = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2))
    with pytest.raises(RfcalcError, match="negative_slope=0.2"):
        spec_from_inspection(trace_module(slope, SHAPE))
    flat = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    with pytest.raises(RfcalcError, match="without affine"):
        spec_from_inspection(trace_module(flat, SHAPE))


def test_to_spec_notes_every_setting_it_drops() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, eps=1e-3),
                          nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    inspection = trace_module(model, SHAPE)
    spec = spec_from_inspection(inspection)  # written: the RF is the same
    assert [layer["op"] for layer in spec["layers"]] == ["conv", "avgpool"]
    lines = dropped_settings(inspection)
    assert len(lines) == 2
    assert lines[0].startswith("module '1' (bn): eps=0.001 is not in the spec")
    assert lines[1] == ("module '2' (avgpool): count_include_pad=False is not in the spec (its avgpool has the "
                        "default; the RF is the same)")
    text = spec_yaml(inspection)
    assert "# dropped: module '2' (avgpool): count_include_pad=False" in text
    plain = trace_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AvgPool2d(2)), SHAPE)
    assert dropped_settings(plain) == []

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.weight = nn.Parameter(torch.ones(4))
            self.bias = nn.Parameter(torch.zeros(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.group_norm(self.conv(x), 2, self.weight, self.bias, eps=1e-3)
            return F.avg_pool2d(y, 3, 1, 1, count_include_pad=False, divisor_override=4)

    found = dropped_settings(trace_module(Functional(), SHAPE))
    assert [line.split(" is not")[0].split(": ")[1] for line in found] == [
        "eps=0.001", "count_include_pad=False", "divisor_override=4"]


def test_classify_lets_an_unexpected_error_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from rfcalc.inspection import lookup

    def broken(call: Any) -> Any:
        raise ZeroDivisionError("a bug in a converter")

    monkeypatch.setitem(lookup.MODULES, nn.AvgPool2d, broken)
    gm = fx.symbolic_trace(nn.Sequential(nn.AvgPool2d(2)))
    node = next(n for n in gm.graph.nodes if n.op == "call_module")
    with pytest.raises(ZeroDivisionError):
        lookup.classify(node, gm)


def test_to_spec_refuses_graphs_that_are_not_nested_blocks() -> None:
    class Dense(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, padding=1)
            self.c2 = nn.Conv2d(7, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.c1(x)
            b = self.c2(torch.cat([x, a], 1))
            return torch.cat([x, a, b], 1)

    inspection = trace_module(Dense(), SHAPE)
    assert inspection.complete
    with pytest.raises(RfcalcError, match="not a nesting of parallel and residual blocks"):
        spec_from_inspection(inspection)


# -- what maps and what stops --------------------------------------------------------------------------------------
class Upsampler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.d = nn.Conv2d(8, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.d(self.up(self.c(x)))


def test_unknown_shape_change_is_an_error_naming_the_node() -> None:
    with pytest.raises(RfcalcError) as info:
        inspect_module(Upsampler(), SHAPE)
    message = str(info.value)
    assert "\n" not in message
    assert "test_inspect.py:" in message
    assert "'up' (Upsample) resamples 32x32 to 64x64 at jump 1x1" in message


def test_partial_report_stops_at_the_unknown_node() -> None:
    report = inspect_module(Upsampler(), SHAPE, partial=True)
    assert [r.name for r in report.rows] == ["c"]
    error = report.diagnostics[-1]
    assert error.severity == "error" and error.code == "cannot-follow" and "'up'" in error.message


@pytest.mark.parametrize("layer, text", [
    (nn.ZeroPad2d(1), "changes the shape from 8x30x30 to 8x32x32"),
    (nn.PixelShuffle(2), "resamples 30x30 to 60x60 at jump 1x1"),
    (nn.ConvTranspose2d(8, 8, 2, stride=2), "resamples 30x30 to 60x60 at jump 1x1: the output's units would be a "
                                            "fraction of a pixel apart"),
    (nn.MaxPool2d(2, dilation=2), "a dilated max pool"),
    (nn.Softmax(dim=-1), "mixes neighbouring pixels"),
    (nn.AdaptiveAvgPool2d(7), "windows of varying size"),
    (nn.Conv2d(8, 8, 2, padding="same"), "pads one side more than the other"),
])
def test_what_rfcalc_cannot_follow(layer: nn.Module, text: str) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), layer)
    with pytest.raises(RfcalcError, match=text):
        inspect_module(model, SHAPE)


def test_tracing_failure_is_one_line() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return self.c(x)
            return x

    line = Branchy.forward.__code__.co_firstlineno + 1
    with pytest.raises(RfcalcError, match=rf"^tests/test_inspect\.py:{line}: cannot trace Branchy with torch\.fx: "
                                          r"`if x\.sum\(\) > 0:` branches on a value computed from the input"):
        inspect_module(Branchy(), SHAPE)


def test_bad_input_shapes() -> None:
    model = nn.Conv2d(3, 4, 3)
    with pytest.raises(RfcalcError, match="without the batch dimension"):
        inspect_module(model, (1, 3, 32, 32))
    with pytest.raises(RfcalcError, match="must be CxHxW"):
        inspect_module(model, "3x32")
    assert inspect_module(model, "3x32x32").output.out_shape == (4, 30, 30)
    with pytest.raises(RfcalcError, match=r"forward pass on a 1x32x32 input failed at node"):
        inspect_module(model, (1, 32, 32))


def test_elementwise_modules_pass_the_rf_through() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Hardswish(), nn.Softmin(dim=1), nn.Softmax(dim=1),
                          nn.Conv2d(8, 8, 3), nn.Identity())
    report = inspect_module(model, SHAPE)
    assert [r.op for r in report.rows] == ["conv", "hardswish", "softmin", "softmax", "conv", "identity"]
    assert report.rf == (5, 5)
    # nn.Softmin is not in the table: passed through after the one-pixel test, with an info diagnostic;
    # nn.Softmax along the channels is in it (a softmax along units is read with the tensor's layout)
    assert [(d.severity, d.code) for d in report.diagnostics] == [("info", "pointwise-op")]
    assert "'2' (Softmin)" in report.diagnostics[0].message


def test_functional_odds_and_ends() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)
            self.scale = nn.Parameter(torch.ones(1, 8, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.c(x) * self.scale + 1.0
            a, b = torch.chunk(x, 2, dim=1)
            x = torch.cat([F.max_pool2d(a, 3, 1, 1), b[:, :2]], 1)
            x = F.adaptive_avg_pool2d(x, 8)
            return x.contiguous().sigmoid()

    model = Odd()
    report = inspect_module(model, SHAPE)
    ops = [r.op for r in report.rows]
    # .contiguous() is the same values: no row
    assert ops == ["conv", "mul_const", "add_const", "chunk", "chunk", "maxpool", "getitem", "concat",
                   "avgpool", "sigmoid"]
    assert report.row("adaptive_avg_pool2d").kernel == (4, 4)
    assert report.output.out_shape == (6, 8, 8)
    assert report.rf == (3 + 2 + 3, 3 + 2 + 3)
    assert report.params == sum(p.numel() for p in model.parameters())


def test_squeeze_excitation_makes_every_unit_global() -> None:
    class SE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(8, 2, 1)
            self.fc2 = nn.Conv2d(2, 8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.c(x)
            s = torch.sigmoid(self.fc2(F.relu(self.fc1(self.pool(x)))))
            return x * s

    report = inspect_module(SE(), SHAPE)
    assert report.row("pool").op == "avgpool" and report.row("pool").kernel == (32, 32)
    assert report.output.op == "mul" and report.output.inputs == ("c", "sigmoid")
    # the window stays the conv's; through the 1x1 gate every unit sees every pixel
    assert report.rf == (3, 3)
    assert [(r.name, r.is_global) for r in report.rows] == [("c", False), ("pool", True), ("fc1", True),
                                                            ("relu", True), ("fc2", True), ("sigmoid", True),
                                                            ("mul", True)]
    assert report.to_dict()["totals"]["global"] is True
    assert not report.diagnostics


def test_global_pool_then_view_is_gap() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3)
            self.fc = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.adaptive_max_pool2d(self.c(x), 1)
            return self.fc(y.view(y.shape[0], -1))

    report = inspect_module(Head(), SHAPE)
    assert [(r.op, r.out_shape) for r in report.rows] == [("conv", (8, 30, 30)), ("gap", (8,)), ("flatten", (8,)),
                                                          ("linear", (4,))]
    assert report.row("adaptive_max_pool2d").attrs["mode"] == "max"


def test_shared_and_unused_parameters() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(4, 4, 3, padding=1)
            self.unused = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(self.c(x))

    report = inspect_module(Shared(), (4, 16, 16))
    assert [r.name for r in report.rows] == ["c", "c_1"]
    assert [r.params for r in report.rows] == [148, 0]
    assert report.rf == (5, 5)
    assert [d.code for d in report.diagnostics] == ["shared-parameters", "unused-parameters"]


def test_module_state_is_restored() -> None:
    model = M.ChainNet().train()
    inspect_module(model, SHAPE)
    assert all(m.training for m in model.modules())
    assert model.bn1.num_batches_tracked.item() == 0


@pytest.mark.slow
def test_statement_order_does_not_change_the_table() -> None:
    """Computing the projection shortcut before the body changes what forward hooks see, not the network."""
    usual = inspect_module(M.resnet50_trunk(width=4), (3, 224, 224))
    first = inspect_module(M.resnet50_trunk(width=4, shortcut_first=True), (3, 224, 224))
    assert sorted(numbers(usual)) == sorted(numbers(first))
    assert usual.to_dict()["totals"] == first.to_dict()["totals"]
    assert first.rf == (427, 427)


def test_squeeze_excitation_with_linear_layers_and_expand_as() -> None:
    class SE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 16, 3, stride=2, padding=1, padding_mode="reflect")
            self.fc1 = nn.Linear(16, 4)
            self.fc2 = nn.Linear(4, 16)
            self.head = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.c(x)
            b, c, _, _ = x.size()
            y = F.adaptive_avg_pool2d(x, 1).view(b, c)
            y = torch.sigmoid(self.fc2(F.relu(self.fc1(y)))).view(b, c, 1, 1)
            x = x * y.expand_as(x)
            return self.head(x.mean([2, 3], keepdim=True).squeeze())

    inspection = trace_module(SE(), SHAPE)
    report = inspection.report
    assert [r.op for r in report.rows] == ["conv", "gap", "flatten", "linear", "relu", "linear", "sigmoid", "view",
                                           "mul", "gap", "flatten", "linear"]
    assert report.row("mul").inputs == ("c", "view_1")
    assert report.row("view_1").out_shape == (16, 1, 1)
    assert report.rf == (3 + 2 * 15, 3 + 2 * 15)
    assert not report.diagnostics
    assert report.row("mul").is_global and not report.row("c").is_global
    assert inspection.spec_notes["c"] == "padding_mode='reflect'; the spec pads with zeros"
