"""Every registered op has every piece, end to end: the test matrix is generated from the op registry.

For each op: a spec using it (drawn by the op's own random rule) loads and gives the op's rows; the built
module has exactly the report's parameters, shapes and gradient windows (the oracle), each row's module is one
of the op's declared constructors; the exported source rebuilds the same state_dict; ``rfcalc inspect`` of the
built module gives the same table, and ``--to-spec`` writes the op back. An op added to the registry without one
of these pieces fails here (or at import, when the registry is built).
"""
from __future__ import annotations

import importlib.util
import inspect
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import rfcalc
from rfcalc.inspection.api import trace_module
from rfcalc.inspection.lookup import MODULES, UNRESOLVED, module_action
from rfcalc.inspection.to_spec import spec_from_inspection
from rfcalc.model.builder import constructor
from rfcalc.model.export import HELPERS, export_source
from rfcalc.model.oracle import module_problems, positive_copy
from rfcalc.model.plan import leaf, plan_model, row_modules
from rfcalc.ops import base, registry
from rfcalc.ops.actions import AsLayer
from rfcalc.ops.activation import ACT_NAMES, ACTIVATIONS
from rfcalc.ops.base import Leaf
from rfcalc.ops.registry import FEATURES, REGISTRY, RegistryError
from rfcalc.spec.graph import Prim
from rfcalc.table.geometry import Flow
from rfcalc.table.report import INPUT_GEOMETRY, Row

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPE = (4, 12, 12)


def spec_with(name: str, seed: int = 0) -> rfcalc.Spec:
    """A small spec whose middle layer is op ``name``, drawn by the op's own random rule: on a feature map when the
    op applies to one, else on the vector after gap."""
    rng = random.Random(seed)
    definition = REGISTRY[name]
    layers: list[dict[str, Any]] = [{"op": "conv", "name": "stem", "out": SHAPE[0], "padding": 1}]
    drawn = definition.random(rng, SHAPE)
    if drawn is None:
        layers.append({"op": "gap", "name": "pool"})
        drawn = definition.random(rng, (SHAPE[0],))
        assert drawn is not None, f"op {name}'s random rule applies to neither a feature map nor a vector"
    layer, shape = drawn
    layers.append({**layer, "name": "subject"})
    if len(shape) == 3:
        layers.append({"op": "gap", "name": "head_pool"})
    layers.append({"op": "linear", "name": "fc", "out": 3})
    return rfcalc.load_spec({"version": 1, "name": f"op-{name}", "input": {"channels": 3, "size": list(SHAPE[1:])},
                             "layers": layers})


def valid_spec_with(name: str, first_seed: int = 0) -> rfcalc.Spec:
    for seed in range(first_seed, first_seed + 40):
        try:
            return spec_with(name, seed)
        except rfcalc.SpecError:
            continue
    raise AssertionError(f"op {name}: 40 draws of its random rule gave no valid spec")


OP_NAMES = list(REGISTRY)


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_op_calculates_builds_and_agrees_with_the_gradient_oracle(name: str) -> None:
    spec = valid_spec_with(name)
    ops = {row.op for row in spec.report.rows}
    assert name in ops
    model = rfcalc.build_model(spec)
    assert module_problems(spec, model) == []
    modules = dict(model.named_modules())
    paths = row_modules(plan_model(spec.nodes, spec.report))
    allowed = tuple(constructor(c) for c in REGISTRY[name].ctors)
    for row in spec.report.rows:
        if row.op == name:
            assert type(modules[paths[row.name]]) in allowed, (row.name, type(modules[paths[row.name]]))


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_op_exports_and_the_export_rebuilds_the_same_model(name: str, tmp_path: Path) -> None:
    spec = valid_spec_with(name)
    path = tmp_path / "exported.py"
    path.write_text(export_source(spec, "Exported"), encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    exported, built = module.Exported(), rfcalc.build_model(spec)
    assert list(exported.state_dict()) == list(built.state_dict())
    built.load_state_dict(exported.state_dict())
    x = torch.randn(2, *spec.input_shape)
    exported.eval(), built.eval()
    torch.testing.assert_close(exported(x), built(x))


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_op_inspects_to_its_own_table_and_writes_itself_back(name: str) -> None:
    spec = valid_spec_with(name)
    inspection = trace_module(rfcalc.build_model(spec), spec.input_shape, name=spec.name)
    assert inspection.complete, inspection.error
    mine, theirs = spec.report.to_dict(), inspection.report.to_dict()
    assert theirs["totals"] == mine["totals"]
    assert [r["op"] for r in theirs["layers"]] == [r["op"] for r in mine["layers"]]
    written = rfcalc.analyze(spec_from_inspection(inspection)).to_dict()
    assert written["totals"] == mine["totals"]
    assert [r["op"] for r in written["layers"]] == [r["op"] for r in mine["layers"]]


def _settings(row: Row) -> tuple[Any, ...]:
    """What a row says about its op's settings, without its name."""
    return (row.op, dict(row.attrs), row.kernel, row.stride, row.padding, row.dilation, row.groups, row.out_shape)


def _layer_fields(layer: Any) -> dict[str, Any]:
    return layer.model_dump(exclude={"name", "repeat"})


@pytest.mark.parametrize("name", OP_NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_the_op_round_trips_spec_build_inspect_to_spec_with_every_setting(name: str, seed: int) -> None:
    """spec layer -> rows -> the row's own layer (``OpDef.layer``) is the same layer; -> built module -> inspect
    of that module is the same layer again; -> ``--to-spec`` -> a spec whose rows carry the same settings."""
    spec = valid_spec_with(name, first_seed=seed * 40)
    definition = REGISTRY[name]
    model = rfcalc.build_model(spec)
    modules = dict(model.named_modules())
    paths = row_modules(plan_model(spec.nodes, spec.report))
    rows = [row for row in spec.report.rows if row.op == name]
    for row in rows:
        layer = definition.layer(row)
        assert definition.calc(layer, base.At(row.name, row.path), Flow(row.in_shape or (), row.geo_in, row.inputs[0])
                               )[0] == replace(row, is_global=False, attached_to=None), row.name
        module = modules[paths[row.name]]
        assert _module_settings(module, leaf(row)) == [], row.name
        action = module_action(module)[1]
        if isinstance(action, AsLayer):  # gap and flatten answer with structural actions
            assert _layer_fields(action.layer) == _layer_fields(layer), row.name
    inspection = trace_module(model, spec.input_shape, name=spec.name)
    written = rfcalc.analyze(spec_from_inspection(inspection))
    assert [_settings(r) for r in written.rows if r.op == name] == [_settings(r) for r in rows]


def _module_settings(module: nn.Module, item: Leaf) -> list[str]:
    """Where the built module's constructor attributes differ from the leaf's arguments (its layer's settings)."""
    bound = inspect.signature(type(module)).bind(*item.args, **dict(item.kwargs)).arguments
    return [f"{key}: module {getattr(module, key)!r}, leaf {value!r}" for key, value in bound.items()
            if hasattr(module, key) and _normal(getattr(module, key), key) != _normal(value, key)]


def _normal(value: Any, key: str) -> Any:
    """A constructor argument or a module attribute, comparable: ``bias`` a flag, pairs of equal values one value,
    an activation module its spec name (``LeakyReLU`` -> ``leakyrelu``)."""
    if key == "bias" and not isinstance(value, bool):
        return value is not None
    if isinstance(value, nn.Module):
        return type(value).__name__.lower()
    if isinstance(value, str):
        return value.replace("_", "")
    if isinstance(value, (tuple, list)):
        return value[0] if len(set(value)) == 1 else tuple(value)
    return value


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_op_declares_every_piece(name: str) -> None:
    definition = REGISTRY[name]
    assert definition.summary and definition.family
    assert all(constructor(ctor) for ctor in definition.ctors)
    assert all(c.startswith("nn.") or c in HELPERS for c in definition.ctors)
    assert definition.inspect.modules or definition.inspect.functions or name in ("ln",), \
        f"op {name} is not recognised in traced code"  # ln is GroupNorm(1, C): gn's rule answers both
    for feature in definition.features:
        assert feature in FEATURES


def test_every_inspect_matcher_names_a_real_torch_object() -> None:
    assert UNRESOLVED == ()
    for definition in REGISTRY.values():
        for path in definition.inspect.modules:
            assert any(cls.__module__ + "." + cls.__qualname__ == path or path.endswith("." + cls.__name__)
                       for cls in MODULES), path


def test_positive_stand_ins_follow_the_declared_rule() -> None:
    """``positive: identity`` modules become the identity in the oracle's copy; ``avg_pool`` ones average."""
    for definition in REGISTRY.values():
        for ctor in definition.ctors:
            cls = constructor(ctor)
            if definition.positive == "identity":
                module = nn.Sequential(_instance(cls))
                assert isinstance(positive_copy(module)[0], nn.Identity), ctor


def _instance(cls: type[nn.Module]) -> nn.Module:
    for args in ((), (4,), (1, 4)):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls.__name__}")


def test_activations_are_one_table() -> None:
    assert tuple(ACTIVATIONS) == ACT_NAMES
    assert all(isinstance(getattr(nn, a.module)(), nn.Module) for a in ACTIVATIONS.values())
    for act in (*ACT_NAMES, "none", None):
        layer = {"op": "conv", "out": 2, "act": act}
        spec = rfcalc.load_spec({"version": 1, "name": "a", "input": {"channels": 1, "size": 4}, "layers": [layer]})
        ops = [row.op for row in spec.report.rows]
        assert ops == (["conv"] if act in ("none", None) else ["conv", act])


def test_an_op_without_a_rule_is_an_error_not_a_pass_through() -> None:
    from rfcalc.analysis.calculator import Calculator
    from rfcalc.ops.fields import LayerModel
    from rfcalc.spec.source import Source

    class Mystery(LayerModel):
        op: str = "mystery"

    calc = Calculator(Source("<test>"))
    with pytest.raises(LookupError, match="op 'mystery' has no calculator rule"):
        calc.prim(Prim("m", "layers[0]", (), Mystery()), Flow((3, 8, 8), INPUT_GEOMETRY, "input"))


def test_the_registry_refuses_inconsistent_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = REGISTRY["conv"]

    def build_with(*ops: base.OpDef) -> None:
        registry.checked("conv", ops)

    with pytest.raises(RegistryError, match="op 'conv' is defined twice"):
        build_with(conv, conv)
    monkeypatch.setattr(registry, "OPS", {**registry.OPS, "conv3d": "conv"})
    with pytest.raises(RegistryError, match="its model ConvLayer admits op"):
        build_with(conv, replace(conv, name="conv3d"))
    monkeypatch.undo()
    with pytest.raises(RegistryError, match="op 'conv3d' of rfcalc.ops.conv is not listed under 'conv' in OPS"):
        build_with(conv, replace(conv, name="conv3d"))
    with pytest.raises(RegistryError, match=r"rfcalc.ops.conv does not define \['conv'\], which OPS lists under it"):
        build_with()
    with pytest.raises(RegistryError, match="attach and fold go together"):
        build_with(replace(conv, attach="act"))
    with pytest.raises(RegistryError, match=r"feature tags \['fancy'\] are not in Feature"):
        build_with(replace(conv, features={"fancy": lambda row, consumers: True}))


def test_every_family_loads_and_every_feature_has_its_test() -> None:
    """The registry loads a family at the first lookup of one of its ops; all of them load consistently, every op
    of OPS is defined by the family OPS names, and each feature tag has one test."""
    tests = registry.load_all()
    assert tuple(tests) == FEATURES
    assert {name: definition.family for name, definition in REGISTRY.items()} == dict(registry.OPS)
    tagged = [f for name in REGISTRY for f in registry.feature_tests(name)] + list(registry.feature_tests("add"))
    assert sorted(tagged) == sorted(FEATURES), "a feature tag is shown by two ops, or by none"


def test_channel_shuffle_groups_must_divide_the_channels() -> None:
    with pytest.raises(rfcalc.SpecError) as exc:
        rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 6, "size": 8},
                          "layers": [{"op": "channel_shuffle", "groups": 4}]})
    assert str(exc.value) == ("<dict>:1:1: layers[0] (channel_shuffle 'channel_shuffle1'): groups 4 must divide the "
                              "channels, got 6 channels")
    with pytest.raises(rfcalc.SpecError, match="needs a feature map .* but gets a vector of 6"):
        rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 6, "size": 8},
                          "layers": [{"op": "gap"}, {"op": "channel_shuffle", "groups": 2}]})
    with pytest.raises(rfcalc.SpecError, match="layers\\[0\\].groups: required, but missing"):
        rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 6, "size": 8},
                          "layers": [{"op": "channel_shuffle"}]})


def test_channel_shuffle_permutes_channels_like_shufflenet() -> None:
    spec = rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 6, "size": 2},
                             "layers": [{"op": "channel_shuffle", "groups": 2, "name": "shuffle"}],
                             "constraints": {"require": ["channel_shuffle"]}})
    row = spec.report.row("shuffle")
    assert (row.params, row.groups, row.out_shape, row.geo_out) == (0, 2, (6, 2, 2), INPUT_GEOMETRY)
    x = torch.arange(6.0).reshape(1, 6, 1, 1).expand(1, 6, 2, 2)
    y = rfcalc.build_model(spec)(x)
    assert y[0, :, 0, 0].tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]  # channels (0 1 2)(3 4 5) -> 0 3 1 4 2 5
    assert rfcalc.check(spec).ok


def test_hardswish_everywhere_an_activation_goes() -> None:
    spec = rfcalc.load_spec({"version": 1, "name": "h", "input": {"channels": 2, "size": 8}, "layers": [
        {"op": "conv", "name": "c1", "out": 4, "padding": 1, "act": "hardswish"},
        {"op": "residual", "name": "res", "body": [{"op": "conv", "out": 4, "padding": 1}], "act": "hardswish"},
        {"op": "hardswish", "name": "h3"}]})
    assert [(r.name, r.op) for r in spec.report.rows] == [
        ("c1", "conv"), ("c1.hardswish", "hardswish"), ("res.body.conv1", "conv"), ("res", "add"),
        ("res.hardswish", "hardswish"), ("h3", "hardswish")]
    model = rfcalc.build_model(spec)
    assert isinstance(model.c1.hardswish, nn.Hardswish) and isinstance(model.res.hardswish, nn.Hardswish)
    assert module_problems(spec, model) == []


def test_lppool_carries_norm_type_to_the_module_the_json_and_back() -> None:
    spec = rfcalc.load_spec({"version": 1, "name": "lp", "input": {"channels": 2, "size": 8}, "layers": [
        {"op": "relu", "name": "r"},
        {"op": "lppool", "name": "lp", "norm_type": 3, "k": 3, "stride": 2, "ceil_mode": True}]})
    row = spec.report.row("lp")
    assert (row.out_shape, row.geo_out.rf, row.geo_out.jump, row.params, row.macs) == ((2, 4, 4), (3, 3), (2, 2), 0, 0)
    assert spec.report.to_dict()["layers"][1]["attrs"] == {"norm_type": 3.0, "ceil_mode": True}
    assert spec.report.to_dict()["layers"][1]["ceil_mode"] is True
    model = rfcalc.build_model(spec)
    assert isinstance(model.lp, nn.LPPool2d) and model.lp.norm_type == 3.0 and model.lp.ceil_mode
    x = torch.rand(1, 2, 8, 8)
    expected = x[:, :, 0:3, 0:3].pow(3).sum(dim=(2, 3)).pow(1 / 3)
    torch.testing.assert_close(model(x)[:, :, 0, 0], expected)
    assert module_problems(spec, model) == []
    written = spec_from_inspection(trace_module(model, spec.input_shape, name="lp"))
    assert written["layers"][-1] == {"op": "lppool", "name": "lp", "norm_type": 3, "k": 3, "stride": 2,
                                     "ceil_mode": True}


def test_lppool_from_the_functional_call_and_its_errors() -> None:
    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.lp_pool2d(x, 1.5, 2)

    inspection = trace_module(Net(), (3, 8, 8))
    row = inspection.report.rows[0]
    assert (row.op, dict(row.attrs), row.out_shape) == ("lppool", {"norm_type": 1.5, "ceil_mode": False}, (3, 4, 4))
    assert spec_from_inspection(inspection)["layers"] == [{"op": "lppool", "name": "lp_pool2d", "norm_type": 1.5,
                                                           "k": 2}]
    with pytest.raises(rfcalc.SpecError, match=r"layers\[0\]\.norm_type: must be > 0.0, got 0$"):
        rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 1, "size": 8},
                          "layers": [{"op": "lppool", "norm_type": 0}]})
    with pytest.raises(rfcalc.SpecError, match=r"layers\[0\]\.padding: unknown key"):
        rfcalc.load_spec({"version": 1, "name": "s", "input": {"channels": 1, "size": 8},
                          "layers": [{"op": "lppool", "padding": 1}]})


def test_hardsigmoid_is_an_activation_everywhere_and_inspects_as_one() -> None:
    spec = rfcalc.load_spec({"version": 1, "name": "h", "input": {"channels": 2, "size": 8}, "layers": [
        {"op": "conv", "name": "c1", "out": 4, "padding": 1, "act": "hardsigmoid"},
        {"op": "hardsigmoid", "name": "h2"}]})
    assert [r.op for r in spec.report.rows] == ["conv", "hardsigmoid", "hardsigmoid"]
    model = rfcalc.build_model(spec)
    assert isinstance(model.c1.hardsigmoid, nn.Hardsigmoid) and isinstance(model.h2, nn.Hardsigmoid)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.hardsigmoid(self.c(x))

    inspection = trace_module(Net(), (2, 8, 8))
    assert [r.op for r in inspection.report.rows] == ["conv", "hardsigmoid"]
    assert spec_from_inspection(inspection)["layers"] == [{"op": "conv", "name": "c", "out": 4, "k": 3,
                                                           "act": "hardsigmoid"}]


def _se_spec(se: dict[str, Any]) -> rfcalc.Spec:
    return rfcalc.load_spec({"version": 1, "name": "se", "input": {"channels": 3, "size": 32}, "layers": [
        {"op": "conv", "name": "c1", "out": 16, "stride": 2, "padding": 1, "act": "relu"},
        {"op": "se", "name": "se", **se},
        {"op": "conv", "name": "c2", "out": 8, "padding": 1}, {"op": "gap"}, {"op": "linear", "out": 10}]})


def test_se_numbers_json_module_and_oracle() -> None:
    spec = _se_spec({"reduction": 4})
    row = spec.report.row("se")
    # two 1x1 convs with biases, 16 -> 4 -> 16, on a 1x1 map: 2·16·4 + 4 + 16 parameters, 2·16·4 MACs
    assert (row.params, row.macs, row.out_shape) == (148, 128, (16, 16, 16))
    # the window stays c1's; through the gate every unit sees every pixel
    assert (row.geo_out, row.is_global, spec.report.row("c1").is_global) == (spec.report.row("c1").geo_out, True, False)
    assert spec.report.row("c2").geo_out.rf == (7, 7) and spec.report.row("c2").is_global
    layer = spec.report.to_dict()["layers"][2]
    assert layer["attrs"] == {"hidden": 4, "act": "relu", "gate": "sigmoid"} and layer["global"] is True
    model = rfcalc.build_model(spec)
    assert sum(p.numel() for p in model.se.parameters()) == 148
    x = torch.rand(2, 16, 5, 5)
    gate = torch.sigmoid(model.se.expand(torch.relu(model.se.reduce(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(model.se(x), x * gate)
    assert module_problems(spec, model) == []
    other = _se_spec({"hidden": 3, "act": "silu", "gate": "hardsigmoid"}).report.row("se")
    assert (other.params, other.macs, dict(other.attrs)) == (2 * 16 * 3 + 3 + 16, 96, {"hidden": 3, "act": "silu",
                                                                                      "gate": "hardsigmoid"})


def test_se_errors_are_located_lines() -> None:
    with pytest.raises(rfcalc.SpecError) as exc:
        _se_spec({"reduction": 4, "hidden": 2})
    assert str(exc.value).endswith("layers[1]: give reduction or hidden, not both (got reduction 4, hidden 2)")
    with pytest.raises(rfcalc.SpecError) as exc:
        _se_spec({"reduction": 32})
    assert str(exc.value).endswith("layers[1] (se 'se'): reduction 32 leaves no hidden channel for 16 channels; "
                                   "give a reduction of at most 16, or hidden")
    with pytest.raises(rfcalc.SpecError, match=r"layers\[1\]\.gate: .*'sigmoid' or 'hardsigmoid'"):
        _se_spec({"gate": "tanh"})


class _HandSE(nn.Module):
    """A squeeze-and-excitation block written by hand: the pool as a mean, the gate as a function, ``x * s``."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 3, 1)
        self.fc2 = nn.Conv2d(3, 8, 1)
        self.head = nn.Conv2d(8, 4, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c(x))
        s = torch.sigmoid(self.fc2(nn.functional.gelu(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)))))
        return self.head(x * s)


class _LinearSE(nn.Module):
    """The original SE-ResNet spelling: linear layers on the pooled vector, viewed back and expanded."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(16, 4)
        self.fc2 = nn.Linear(4, 16)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c(x)
        b, c, _, _ = x.size()
        y = nn.functional.adaptive_avg_pool2d(x, 1).view(b, c)
        y = torch.sigmoid(self.fc2(torch.relu(self.fc1(y)))).view(b, c, 1, 1)
        x = x * y.expand_as(x)
        return self.head(torch.flatten(x.mean([2, 3], keepdim=True), 1))


@pytest.mark.parametrize("model, shape, se", [
    (_HandSE, (3, 12, 12), {"hidden": 3, "act": "gelu", "gate": "sigmoid"}),
    (_LinearSE, (3, 16, 16), {"reduction": 4, "act": "relu", "gate": "sigmoid"}),
    ("SENet", (3, 32, 32), {"reduction": 4, "act": "relu", "gate": "hardsigmoid"}),  # torchvision's, `scale * x`
])
def test_inspect_to_spec_of_a_hand_written_se_net_writes_one_se_layer(model: Any, shape: tuple[int, ...],
                                                                      se: dict[str, Any]) -> None:
    import models_for_inspect as M

    from rfcalc.inspection.check import inspection_problems

    net = getattr(M, model)() if isinstance(model, str) else model()
    inspection = trace_module(net, shape)
    assert inspection_problems(net, shape, inspection=inspection) == []  # the table against the gradient oracle
    written = spec_from_inspection(inspection)
    layers = [layer for layer in written["layers"] if layer["op"] == "se"]
    assert len(layers) == 1 and {k: v for k, v in layers[0].items() if k not in ("op", "name")} == se
    spec = rfcalc.load_spec(written)
    assert spec.report.to_dict()["totals"] == inspection.report.to_dict()["totals"]
    assert module_problems(spec) == []  # the written spec's own module against the oracle


def test_a_gate_from_another_map_is_not_an_se_layer() -> None:
    """The product of a map with a gate pooled from a different map is no ``se``: --to-spec still refuses it."""
    from rfcalc.errors import RfcalcError

    class Other(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)
            self.d = nn.Conv2d(3, 8, 1)
            self.fc1 = nn.Conv2d(8, 2, 1)
            self.fc2 = nn.Conv2d(2, 8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = torch.sigmoid(self.fc2(torch.relu(self.fc1(nn.functional.adaptive_avg_pool2d(self.d(x), 1)))))
            return self.c(x) * s

    with pytest.raises(RfcalcError, match="sigmoid has no spec op"):
        spec_from_inspection(trace_module(Other(), (3, 8, 8)))
