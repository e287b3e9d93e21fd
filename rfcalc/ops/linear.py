"""``linear``: a fully connected layer on a vector (the error for a feature map says to add gap or flatten)."""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import same_geometry, vector
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class LinearLayer(LayerModel):
    op: Literal["linear"]
    out: Annotated[int, Field(ge=1)]
    bias: bool = True


def _calc(layer: LinearLayer, at: At, flow: Flow) -> list[Row]:
    features = vector(flow)
    params = features * layer.out + (layer.out if layer.bias else 0)
    return [same_geometry("linear", at, flow, params=params, macs=features * layer.out, out_shape=(layer.out,),
                          attrs={"bias": layer.bias})]


def _layer(row: Row) -> LinearLayer:
    return LinearLayer(op="linear", out=row.out_shape[0], bias=row.attrs["bias"])


def _leaf(row: Row, layer: LinearLayer) -> Leaf:
    assert row.in_shape is not None
    kwargs = () if layer.bias else (("bias", False),)
    return Leaf(row.name, "nn.Linear", (row.in_shape[0], layer.out), kwargs)


def _module(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    return AsLayer(LinearLayer(op="linear", out=int(call.module.out_features), bias=call.module.bias is not None))


def _function(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer

    weight = call.get("weight")
    return AsLayer(LinearLayer(op="linear", out=int(weight.shape[0]), bias=call.get("bias") is not None))


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 1:
        return None
    out = rng.randint(2, 10)
    return {"op": "linear", "out": out}, (out,)


def _to_spec(row: Row, layer: LinearLayer) -> dict[str, Any]:
    return {"out": row.out_shape[0], **({} if layer.bias else {"bias": False})}


OP = OpDef(
    name="linear", family="linear", summary="fully connected layer on a vector (nn.Linear)", model=LinearLayer,
    calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.Linear",), positive="keep", mixing="all",
    inspect=InspectRules(modules={"torch.nn.Linear": _module},
                         functions=(FunctionRule(("torch.nn.functional.linear",), "input, weight, bias=None",
                                                 _function),)),
    random=_random, features={"linear": lambda row, c: row.op == "linear"}, to_spec=_to_spec, attach=None,
    fold=None, gather=None)
OPS: tuple[OpDef[LinearLayer], ...] = (OP,)
