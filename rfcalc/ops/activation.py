"""Activations: the one table of every activation rfcalc knows (``ACTIVATIONS``), and an op for each.

An activation is element-wise: it keeps the shape, the RF, the jump and the centre, and has no parameters.
The table gives, per name, the ``torch.nn`` class that computes it and how traced code spells it. The same
names are the values of a conv's ``act`` field and of a merge's ``act`` (``None`` = no activation).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, MethodRule, OpDef
from rfcalc.ops.fields import LayerModel, optional_choice
from rfcalc.ops.rows import same_geometry
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

ActName = Literal["relu", "relu6", "leaky_relu", "gelu", "silu", "hardswish", "hardsigmoid"]
F = "torch.nn.functional"


@dataclass(frozen=True)
class Activation:
    """One activation: the ``torch.nn`` class that computes it and the traced calls that mean it."""

    module: str                         # the torch.nn class, e.g. "ReLU"
    functions: tuple[str, ...]          # dotted functions that compute it in traced code
    methods: tuple[str, ...] = ()       # tensor methods that compute it
    signature: str = "input, *args, **kwargs"
    # a note when the traced call's settings differ from the spec's activation (--to-spec then refuses)
    note: Callable[[Call], str | None] | None = None


def _leaky_note(call: Call) -> str | None:
    slope = call.module.negative_slope if call.module is not None else call.get("negative_slope", 0.01)
    return None if slope == 0.01 else f"leaky_relu with negative_slope={slope} (the spec's is 0.01)"


def _gelu_note(call: Call) -> str | None:
    approximate = call.module.approximate if call.module is not None else call.get("approximate", "none")
    return None if approximate == "none" else f"gelu with approximate={approximate!r}"


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("ReLU", (f"{F}.relu", "torch.relu", f"{F}.relu_", "torch.relu_"), ("relu", "relu_")),
    "relu6": Activation("ReLU6", (f"{F}.relu6",)),
    "leaky_relu": Activation("LeakyReLU", (f"{F}.leaky_relu",), (), "input, negative_slope=0.01, inplace=False",
                             _leaky_note),
    "gelu": Activation("GELU", (f"{F}.gelu",), (), "input, approximate='none'", _gelu_note),
    "silu": Activation("SiLU", (f"{F}.silu",)),
    "hardswish": Activation("Hardswish", (f"{F}.hardswish",)),
    "hardsigmoid": Activation("Hardsigmoid", (f"{F}.hardsigmoid",)),
}
ACT_NAMES: tuple[str, ...] = get_args(ActName)
if tuple(ACTIVATIONS) != ACT_NAMES:  # pragma: no cover - an import-time guard for whoever adds one
    raise ImportError(f"rfcalc.ops.activation: ActName {ACT_NAMES} and ACTIVATIONS {tuple(ACTIVATIONS)} differ")

_CHOICE = optional_choice(ACT_NAMES, "an activation, or none")
# A field that names an activation or none; "none", null and false become None.
OptionalAct = Annotated[ActName | None, _CHOICE[0], _CHOICE[1]]


class ActLayer(LayerModel):
    """A standalone activation."""

    op: ActName


def ctor(name: str) -> str:
    """The constructor of activation ``name``: ``"nn.ReLU"``."""
    return f"nn.{ACTIVATIONS[name].module}"


def rows(op: str, at: At, flow: Flow, attached_to: str | None = None) -> list[Row]:
    """The row of activation ``op``; ``attached_to`` names the conv or merge it belongs to."""
    return [same_geometry(op, at, flow, attached_to=attached_to)]


def _calc(layer: ActLayer, at: At, flow: Flow) -> list[Row]:
    return rows(layer.op, at, flow)


def _converter(name: str) -> Any:
    note = ACTIVATIONS[name].note

    def convert(call: Call) -> Action:
        from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

        return AsLayer(ActLayer(op=name), note(call) if note is not None else None)
    return convert


def _random(name: str) -> Any:
    def draw(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape]:
        return {"op": name}, shape
    return draw


def _op(name: str) -> OpDef[ActLayer]:
    act = ACTIVATIONS[name]
    convert = _converter(name)
    methods = (MethodRule(act.methods, "self, *args, **kwargs", convert),) if act.methods else ()
    return OpDef(
        name=name, family="activation", summary=f"{name} activation (torch.nn.{act.module}), element-wise",
        model=ActLayer, calc=_calc, layer=lambda row: ActLayer(op=row.op),
        leaf=lambda row, layer: Leaf(row.name, ctor(layer.op)), ctors=(ctor(name),),
        positive="identity", mixing="pointwise",
        inspect=InspectRules(modules={f"torch.nn.{act.module}": convert},
                             functions=(FunctionRule(act.functions, act.signature, convert),), methods=methods),
        random=_random(name), features={}, to_spec=lambda row, layer: {}, attach="act",
        fold=lambda row, layer: {"act": row.op}, gather=None)


OPS: tuple[OpDef[ActLayer], ...] = tuple(_op(name) for name in ACT_NAMES)
