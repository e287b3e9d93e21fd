"""``se``: squeeze-and-excitation on a feature map of C channels, one row.

``x * gate(expand(act(reduce(mean of x over H x W))))``: ``reduce`` is a 1x1 conv C -> hidden and ``expand`` a
1x1 conv hidden -> C, both with biases (as torchvision's and timm's), so the row has ``2·C·hidden + hidden + C``
parameters and ``2·C·hidden`` MACs (two 1x1 convs on a 1x1 map). ``hidden`` is given, or ``C // reduction``
(``reduction`` 4 by default). The output keeps the input's shape and each unit's window (rf, jump and start, as
for an element-wise op), and every unit also depends on every pixel that any unit of the input sees, through the
gate (``mixing="gated"``): after a map whose units together see the whole image, the row is ``global``.

Traced code computes the block as several rows (an average pool to 1x1, two 1x1 convs or linear layers with an
activation between them, a sigmoid or hardsigmoid, a product with the map); :func:`_gather` finds them, so that
``rfcalc inspect --to-spec`` writes them back as one ``se`` layer. rfcalc's own ``SqueezeExcite`` module
(:mod:`rfcalc.model.modules`) inspects as one row.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from rfcalc.ops.activation import ACT_NAMES, ACTIVATIONS, ActName
from rfcalc.ops.base import At, Gathered, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import feature_map, same_geometry
from rfcalc.table.geometry import Flow, LayerError
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

GateName = Literal["sigmoid", "hardsigmoid"]
GATES: tuple[str, ...] = get_args(GateName)
_GATE_MODULES = {"Sigmoid": "sigmoid", "Hardsigmoid": "hardsigmoid"}
DEFAULT_REDUCTION = 4


class SELayer(LayerModel):
    """``reduction`` or ``hidden`` (not both); neither: reduction 4."""

    op: Literal["se"]
    reduction: Annotated[int, Field(ge=1, description="hidden = channels // reduction")] | None = None
    hidden: Annotated[int, Field(ge=1, description="the hidden channels (instead of reduction)")] | None = None
    act: ActName = "relu"
    gate: GateName = "sigmoid"

    @model_validator(mode="after")
    def _one_width(self) -> SELayer:
        if self.reduction is not None and self.hidden is not None:
            raise ValueError(f"give reduction or hidden, not both (got reduction {self.reduction}, "
                             f"hidden {self.hidden})")
        return self

    def hidden_for(self, channels: int) -> int:
        if self.hidden is not None:
            return self.hidden
        reduction = self.reduction or DEFAULT_REDUCTION
        if channels // reduction < 1:
            raise LayerError(f"reduction {reduction} leaves no hidden channel for {channels} channels; give a "
                             f"reduction of at most {channels}, or hidden")
        return channels // reduction


def _calc(layer: SELayer, at: At, flow: Flow) -> list[Row]:
    c, _, _ = feature_map("se", flow)
    hidden = layer.hidden_for(c)
    return [same_geometry("se", at, flow, params=2 * c * hidden + hidden + c, macs=2 * c * hidden,
                          attrs={"hidden": hidden, "act": layer.act, "gate": layer.gate})]


def _layer(row: Row) -> SELayer:
    return SELayer(op="se", hidden=row.attrs["hidden"], act=row.attrs["act"], gate=row.attrs["gate"])


def _leaf(row: Row, layer: SELayer) -> Leaf:
    return Leaf(row.name, "SqueezeExcite", (row.out_shape[0], layer.hidden_for(row.out_shape[0])),
                (("act", layer.act), ("gate", layer.gate)))


# -- inspect -----------------------------------------------------------------------------------------------------
_ACT_OF_MODULE = {act.module: name for name, act in ACTIVATIONS.items()}


def _own(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    m = call.module
    return AsLayer(SELayer(op="se", hidden=int(m.reduce.out_channels), act=_ACT_OF_MODULE[type(m.act).__name__],
                           gate=_GATE_MODULES[type(m.gate).__name__]))


# Rows of traced code that only reshape a gate's values (``.view(b, c)``, ``.view(b, c, 1, 1)``, ``flatten``)
_RESHAPES = ("flatten", "view", "reshape", "squeeze", "unsqueeze")


def _is_fc(row: Row, c_in: int, c_out: int) -> bool:
    """A 1x1 conv with a bias on a 1x1 map, or a linear layer with a bias on a vector, ``c_in`` -> ``c_out``."""
    if row.attrs.get("bias") is not True or row.in_shape is None:
        return False
    if row.op == "linear":
        return row.in_shape == (c_in,) and row.out_shape == (c_out,)
    return (row.op == "conv" and row.kernel == (1, 1) and row.stride == (1, 1) and row.padding == (0, 0)
            and row.dilation == (1, 1) and row.groups == 1 and row.in_shape == (c_in, 1, 1)
            and row.out_shape == (c_out, 1, 1))


def _pooled(shape: Shape, channels: int) -> bool:
    return shape in ((channels,), (channels, 1, 1))


def _gather(row: Row, rows: Mapping[str, Row], consumers: Mapping[str, Sequence[str]]) -> Gathered | None:
    """A product of a map with a gate computed from it: a pool to 1x1 (or ``gap``) -> 1x1 conv (or linear) ->
    activation -> 1x1 conv (or linear) -> sigmoid or hardsigmoid, reshapes between them; every row of the gate
    read only by the next one."""
    if row.op != "mul" or len(row.inputs) != 2 or not row.is_feature_map:
        return None
    for source, gate in (row.inputs, row.inputs[::-1]):
        found = _chain(row, source, gate, rows, consumers)
        if found is not None:
            return found
    return None


def _chain(row: Row, source: str, gate: str, rows: Mapping[str, Row],
           consumers: Mapping[str, Sequence[str]]) -> Gathered | None:
    if source not in rows or rows[source].out_shape != row.out_shape:
        return None
    x, channels = rows[source], row.out_shape[0]
    inner: list[Row] = []

    def producer(name: str) -> Row | None:
        found = rows.get(name)
        while found is not None and found.op in _RESHAPES and len(found.inputs) == 1 and found.params == 0:
            inner.append(found)
            found = rows.get(found.inputs[0])
        if found is not None:
            inner.append(found)
        return found

    g = producer(gate)
    expand = producer(g.inputs[0]) if g is not None and len(g.inputs) == 1 else None
    act = producer(expand.inputs[0]) if expand is not None and len(expand.inputs) == 1 else None
    reduce = producer(act.inputs[0]) if act is not None and len(act.inputs) == 1 else None
    pool = producer(reduce.inputs[0]) if reduce is not None and len(reduce.inputs) == 1 else None
    if g is None or expand is None or act is None or reduce is None or pool is None or pool.inputs != (source,):
        return None
    hidden = reduce.out_shape[0]
    if not (g.op in GATES and _pooled(g.out_shape, channels) and _is_fc(expand, hidden, channels)
            and act.op in ACT_NAMES and _pooled(act.out_shape, hidden) and _is_fc(reduce, channels, hidden)
            and pool.op in ("avgpool", "gap") and pool.kernel == x.out_shape[1:]
            and pool.stride in (pool.kernel, (1, 1)) and pool.padding == (0, 0) and _pooled(pool.out_shape, channels)):
        return None
    inner.reverse()
    names = {r.name for r in inner} | {row.name}
    if any(len(consumers.get(r.name, ())) != 1 or consumers[r.name][0] not in names for r in inner):
        return None
    if inner[-1].name not in row.inputs or len(inner) != len(names) - 1:
        return None
    return Gathered(row.name, tuple(r.name for r in inner), source,
                    SELayer(op="se", hidden=hidden, act=act.op, gate=g.op))


# -- random layers and write-back ----------------------------------------------------------------------------------
def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 3:
        return None
    layer: dict[str, Any] = {"op": "se"}
    if rng.random() < 0.5:
        layer["reduction"] = rng.choice([r for r in (1, 2, 4) if r <= shape[0]])
    else:
        layer["hidden"] = rng.randint(1, 8)
    if rng.random() < 0.5:
        layer["act"] = rng.choice(ACT_NAMES)
    if rng.random() < 0.5:
        layer["gate"] = "hardsigmoid"
    return layer, shape


def _to_spec(row: Row, layer: SELayer) -> dict[str, Any]:
    channels, hidden = row.out_shape[0], layer.hidden_for(row.out_shape[0])
    out: dict[str, Any] = {"reduction": channels // hidden} if channels % hidden == 0 else {"hidden": hidden}
    return out | {"act": layer.act, "gate": layer.gate}


OPS: tuple[OpDef[SELayer], ...] = (
    OpDef(name="se", family="se", summary="squeeze-and-excitation: x times a gate computed from its channel means "
                                          "(rfcalc's SqueezeExcite)",
          model=SELayer, calc=_calc, layer=_layer, leaf=_leaf, ctors=("SqueezeExcite",), positive="keep",
          mixing="gated", inspect=InspectRules(modules={"rfcalc.model.modules.SqueezeExcite": _own}),
          random=_random, features={}, to_spec=_to_spec, attach=None, fold=None, gather=_gather),
)
