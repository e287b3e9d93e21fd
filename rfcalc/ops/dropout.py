"""``dropout``: zeroes activations at random while training (2-D dropout on feature maps, plain on vectors).

Keeps the shape and the geometry; no parameters. The same op is a conv's ``dropout`` field.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import same_geometry
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

F = "torch.nn.functional"


class DropoutLayer(LayerModel):
    op: Literal["dropout"]
    p: Annotated[float, Field(ge=0, lt=1)] = 0.1


def rows(p: float, at: At, flow: Flow, attached_to: str | None = None) -> list[Row]:
    return [same_geometry("dropout", at, flow, attrs={"p": p}, attached_to=attached_to)]


def _calc(layer: DropoutLayer, at: At, flow: Flow) -> list[Row]:
    return rows(layer.p, at, flow)


def _layer(row: Row) -> DropoutLayer:
    return DropoutLayer(op="dropout", p=row.attrs["p"])


def _leaf(row: Row, layer: DropoutLayer) -> Leaf:
    return Leaf(row.name, "nn.Dropout2d" if row.is_feature_map else "nn.Dropout", (), (("p", layer.p),))


def _convert(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer, Pointwise  # inspect only: `check` never loads actions

    p = call.module.p if call.module is not None else call.get("p", 0.5)
    if not 0 <= p < 1:
        return Pointwise("dropout")
    return AsLayer(DropoutLayer(op="dropout", p=float(p)))


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape]:
    return {"op": "dropout"}, shape


OP = OpDef(
    name="dropout", family="dropout", summary="dropout (Dropout2d on maps, Dropout on vectors), no parameters",
    model=DropoutLayer, calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.Dropout2d", "nn.Dropout"), positive="identity",
    mixing="pointwise",
    inspect=InspectRules(
        modules={f"torch.nn.{name}": _convert for name in ("Dropout", "Dropout2d", "Dropout1d", "AlphaDropout",
                                                           "FeatureAlphaDropout")},
        functions=(FunctionRule(tuple(f"{F}.{name}" for name in ("dropout", "dropout2d", "dropout1d", "alpha_dropout",
                                                                 "feature_alpha_dropout")),
                                "input, p=0.5, training=True, inplace=False", _convert),)),
    random=_random,
    features={"dropout": lambda row, consumers: row.op == "dropout" and float(row.attrs["p"]) > 0},
    to_spec=lambda row, layer: {"p": layer.p}, attach="dropout",
    fold=lambda row, layer: {"dropout": layer.p} if row.is_feature_map else None, gather=None)
OPS: tuple[OpDef[DropoutLayer], ...] = (OP,)
