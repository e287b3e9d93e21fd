"""``flatten``: a feature map (C, H, W) to a vector of C·H·W; geometry unchanged.

Traced code: ``nn.Flatten``, ``torch.flatten``, and ``view`` / ``reshape`` / ``squeeze`` calls. What they mean is
decided from the shapes by :mod:`rfcalc.inspection.follow` (to a vector: ``flatten``; other reshapes are followed
only where their meaning is known).
"""
from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, Literal

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, MethodRule, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import same_geometry
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class FlattenLayer(LayerModel):
    op: Literal["flatten"]


def _calc(layer: FlattenLayer, at: At, flow: Flow) -> list[Row]:
    return [same_geometry("flatten", at, flow, out_shape=(math.prod(flow.shape),))]


def _reshape(call: Call) -> Action:
    from rfcalc.ops.actions import Reshape  # inspect only: `check` never loads actions

    return Reshape()


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    return ({"op": "flatten"}, (math.prod(shape),)) if len(shape) == 3 else None


RESHAPE_FUNCTIONS = ("torch.flatten", "torch.reshape", "torch.squeeze")
RESHAPE_METHODS = ("flatten", "view", "reshape", "squeeze")

OP = OpDef(
    name="flatten", family="flatten", summary="a feature map to a vector (nn.Flatten)", model=FlattenLayer,
    calc=_calc, layer=lambda row: FlattenLayer(op="flatten"), leaf=lambda row, layer: Leaf(row.name, "nn.Flatten"),
    ctors=("nn.Flatten",), positive="keep", mixing="pointwise",
    inspect=InspectRules(modules={"torch.nn.Flatten": _reshape},
                         functions=(FunctionRule(RESHAPE_FUNCTIONS, "*args, **kwargs", _reshape),),
                         methods=(MethodRule(RESHAPE_METHODS, "self, *args, **kwargs", _reshape),)),
    random=_random, features={}, to_spec=lambda row, layer: {}, attach=None, fold=None, gather=None)
OPS: tuple[OpDef[FlattenLayer], ...] = (OP,)
