"""``gap``: global average (or max) pool to 1x1, then flatten: (C, H, W) -> a vector of C.

Geometrically a kernel over the whole input (contract section 2). Traced code spells it many ways:
``AdaptiveAvgPool2d(1)``, ``F.adaptive_*_pool2d(x, 1)``, ``x.mean((2, 3))``, ``amax``, rfcalc's own
``GlobalPool``; ``rfcalc inspect`` makes them ``gap`` when their result is only flattened (or is a vector
already), also through element-wise ops such as dropout, and an exact pool otherwise
(:mod:`rfcalc.inspection.follow`).
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Literal

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, MethodRule, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.rows import feature_map
from rfcalc.table.geometry import Flow, step_geometry
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

F = "torch.nn.functional"


class GapLayer(LayerModel):
    op: Literal["gap"]
    mode: Literal["avg", "max"] = "avg"


def _calc(layer: GapLayer, at: At, flow: Flow) -> list[Row]:
    c, h, w = feature_map("gap", flow)
    return [Row(name=at.name, op="gap", path=at.path, inputs=(flow.producer,), in_shape=flow.shape, out_shape=(c,),
                geo_in=flow.geo, geo_out=step_geometry(flow.geo, (h, w), (1, 1), (0, 0)), kernel=(h, w),
                stride=(1, 1), padding=(0, 0), dilation=(1, 1), attrs={"mode": layer.mode})]


# -- inspect ---------------------------------------------------------------------------------------------------
def _own(call: Call) -> Action:
    from rfcalc.ops.actions import GlobalPool  # inspect only: `check` never loads actions

    return GlobalPool(str(getattr(call.module, "mode", "avg")))


def _adaptive(mode: str) -> Any:
    def convert(call: Call) -> Action:
        from rfcalc.ops.actions import AdaptivePool, Unsupported

        if call.get("return_indices", False) or getattr(call.module, "return_indices", False):
            return Unsupported("an adaptive max pool with return_indices=True")
        return AdaptivePool(mode)
    return convert


def _mean(mode: str) -> Any:
    """``x.mean(dims)`` / ``amax``: a reduction; over the image's rows and columns of a map it is a global
    pool (``gap``, or an exact pool), which :mod:`rfcalc.inspection.mixing` decides from the tensor's layout."""
    def convert(call: Call) -> Action:
        from rfcalc.ops.actions import Reduce, Unsupported

        dims = call.get("dim")
        if dims is None:
            return Unsupported("a reduction over every dimension (the batch too)")
        dims = (dims,) if isinstance(dims, int) else tuple(int(d) for d in dims)
        return Reduce("mean" if mode == "avg" else "amax", dims, bool(call.get("keepdim", False)))
    return convert


_ADAPTIVE_SIG = "input, output_size, return_indices=False"
_MEAN_SIG = "input, dim=None, keepdim=False, *args, **kwargs"


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 3:
        return None
    return ({"op": "gap"} if rng.random() < 0.5 else {"op": "gap", "mode": "max"}), (shape[0],)


OP = OpDef(
    name="gap", family="gap", summary="global average (or max) pool to 1x1, then flatten (rfcalc's GlobalPool)",
    model=GapLayer, calc=_calc, layer=lambda row: GapLayer(op="gap", mode=row.attrs["mode"]),
    leaf=lambda row, layer: Leaf(row.name, "GlobalPool", (layer.mode,)),
    ctors=("GlobalPool",), positive="avg_pool", mixing="window",
    inspect=InspectRules(
        modules={"rfcalc.model.modules.GlobalPool": _own, "torch.nn.AdaptiveAvgPool2d": _adaptive("avg"),
                 "torch.nn.AdaptiveMaxPool2d": _adaptive("max")},
        functions=(FunctionRule((f"{F}.adaptive_avg_pool2d",), _ADAPTIVE_SIG, _adaptive("avg")),
                   FunctionRule((f"{F}.adaptive_max_pool2d",), _ADAPTIVE_SIG, _adaptive("max")),
                   FunctionRule(("torch.mean",), _MEAN_SIG, _mean("avg")),
                   FunctionRule(("torch.amax",), _MEAN_SIG, _mean("max"))),
        methods=(MethodRule(("mean",), _MEAN_SIG, _mean("avg")),
                 MethodRule(("amax",), _MEAN_SIG, _mean("max")))),
    random=_random, features={"gap": lambda row, c: row.op == "gap"},
    to_spec=lambda row, layer: {"mode": layer.mode} if layer.mode != "avg" else {}, attach=None, fold=None, gather=None)
OPS: tuple[OpDef[GapLayer], ...] = (OP,)
