"""``lppool``: power-average pool ``(Σ x^p)^(1/p)`` over k x k windows (``nn.LPPool2d``), ``norm_type`` = p.

A window op with PyTorch's output-size rule (no padding; ``ceil_mode`` as for the other pools): its geometry is
that of an average pool of the same kernel and stride, and it has no parameters. ``norm_type: 1`` is a sum pool;
large ``norm_type`` approaches a max pool. As in PyTorch, an odd or fractional ``norm_type`` gives NaN where a
window's sum of powers is negative (put a ReLU before it).
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel, Pair, to_pair
from rfcalc.ops.rows import compact, ctor_pair, feature_map, pair, window_sizes
from rfcalc.table.geometry import Flow, step_geometry
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class LPPoolLayer(LayerModel):
    op: Literal["lppool"]
    norm_type: Annotated[float, Field(gt=0, allow_inf_nan=False, description="the power p (> 0)")] = 2.0
    k: Pair = (2, 2)
    stride: Pair | None = None
    ceil_mode: bool = False

    @field_validator("k", "stride", mode="before")
    @classmethod
    def _positive_pair(cls, value: Any) -> Any:
        return None if value is None else to_pair(value, minimum=1)

    @property
    def stride_pair(self) -> tuple[int, int]:
        return self.stride if self.stride is not None else self.k


def _calc(layer: LPPoolLayer, at: At, flow: Flow) -> list[Row]:
    c, h, w = feature_map("lppool", flow)
    stride = layer.stride_pair
    h_out, w_out = window_sizes((h, w), layer.k, stride, (0, 0), layer.ceil_mode)
    return [Row(name=at.name, op="lppool", path=at.path, inputs=(flow.producer,), in_shape=flow.shape,
                out_shape=(c, h_out, w_out), geo_in=flow.geo, geo_out=step_geometry(flow.geo, layer.k, stride, (0, 0)),
                kernel=layer.k, stride=stride, padding=(0, 0), dilation=(1, 1),
                attrs={"norm_type": layer.norm_type, "ceil_mode": layer.ceil_mode})]


def _layer(row: Row) -> LPPoolLayer:
    assert row.kernel and row.stride
    return LPPoolLayer(op="lppool", norm_type=row.attrs["norm_type"], k=row.kernel, stride=row.stride,
                       ceil_mode=row.attrs["ceil_mode"])


def _leaf(row: Row, layer: LPPoolLayer) -> Leaf:
    kwargs: list[tuple[str, Any]] = []
    if layer.stride_pair != layer.k:
        kwargs.append(("stride", ctor_pair(layer.stride_pair)))
    if layer.ceil_mode:
        kwargs.append(("ceil_mode", True))
    return Leaf(row.name, "nn.LPPool2d", (layer.norm_type, ctor_pair(layer.k)), tuple(kwargs))


def _convert(norm_type: Any, k: Any, stride: Any, ceil_mode: Any) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    kk = pair(k)
    st = kk if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else pair(stride)
    return AsLayer(LPPoolLayer(op="lppool", norm_type=float(norm_type), k=kk, stride=st, ceil_mode=bool(ceil_mode)))


def _module(call: Call) -> Action:
    m = call.module
    return _convert(m.norm_type, m.kernel_size, m.stride, m.ceil_mode)


def _function(call: Call) -> Action:
    return _convert(call.get("norm_type"), call.get("kernel_size"), call.get("stride"), call.get("ceil_mode"))


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 3:
        return None
    layer: dict[str, Any] = {"op": "lppool", "k": rng.choice((1, 2, 2, 3)),
                             "norm_type": rng.choice((2, 4, 4))}  # even: defined for negative inputs too
    if rng.random() < 0.4:
        layer["stride"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        layer["ceil_mode"] = True
    return layer, shape  # the spatial size is the calculator's business


def _to_spec(row: Row, layer: LPPoolLayer) -> dict[str, Any]:
    out: dict[str, Any] = {"norm_type": int(layer.norm_type) if layer.norm_type.is_integer() else layer.norm_type,
                           "k": compact(layer.k)}
    if layer.stride_pair != layer.k:
        out["stride"] = compact(layer.stride_pair)
    if layer.ceil_mode:
        out["ceil_mode"] = True
    return out


OPS: tuple[OpDef[LPPoolLayer], ...] = (
    OpDef(name="lppool", family="lppool", summary="power-average pool over k x k windows (nn.LPPool2d)",
          model=LPPoolLayer, calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.LPPool2d",), positive="keep",
          mixing="window",
          inspect=InspectRules(modules={"torch.nn.LPPool2d": _module},
                               functions=(FunctionRule(("torch.nn.functional.lp_pool2d",),
                                                       "input, norm_type, kernel_size, stride=None, ceil_mode=False",
                                                       _function),)),
          random=_random, features={}, to_spec=_to_spec, attach=None, fold=None, gather=None),
)
