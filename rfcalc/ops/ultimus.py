"""``ultimus``: seed 003's attention block on a vector of D features (one sample at a time).

Q, K, V = Linear(D→dim, no bias); A = softmax(QᵀK/√dim) over the last axis; Z = V·A; out = Linear(dim→D).
Parameters ``3·D·dim + dim·D + D``; MACs ``3·D·dim + dim·D + 2·dim²``.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from rfcalc.ops.base import At, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import same_geometry, vector
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class UltimusLayer(LayerModel):
    op: Literal["ultimus"]
    dim: Annotated[int, Field(ge=1)] = 8


def _calc(layer: UltimusLayer, at: At, flow: Flow) -> list[Row]:
    d, dim = vector(flow), layer.dim
    params = 3 * d * dim + dim * d + d
    macs = 3 * d * dim + dim * d + 2 * dim * dim
    return [same_geometry("ultimus", at, flow, params=params, macs=macs, attrs={"dim": dim})]


def _own(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    return AsLayer(UltimusLayer(op="ultimus", dim=int(call.module.q.out_features)))


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    return ({"op": "ultimus", "dim": rng.randint(1, 4)}, shape) if len(shape) == 1 else None


OP = OpDef(
    name="ultimus", family="ultimus", summary="seed 003's attention block on a vector (rfcalc's Ultimus)",
    model=UltimusLayer, calc=_calc, layer=lambda row: UltimusLayer(op="ultimus", dim=row.attrs["dim"]),
    leaf=lambda row, layer: Leaf(row.name, "Ultimus", (row.out_shape[0],), (("dim", layer.dim),)), ctors=("Ultimus",),
    positive="keep", mixing="all", inspect=InspectRules(modules={"rfcalc.model.modules.Ultimus": _own}), random=_random,
    features={"ultimus": lambda row, c: row.op == "ultimus"}, to_spec=lambda row, layer: {"dim": layer.dim},
    attach=None, fold=None, gather=None)
OPS: tuple[OpDef[UltimusLayer], ...] = (OP,)
