"""``maxpool`` and ``avgpool``: window pools with PyTorch's output-size rule, ``ceil_mode`` included."""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator, model_validator

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel, Pair, show_pair, to_pair
from rfcalc.ops.rows import compact, ctor_pair, feature_map, pair, window_sizes
from rfcalc.table.geometry import Flow, step_geometry
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

F = "torch.nn.functional"


class PoolLayer(LayerModel):
    op: Literal["maxpool", "avgpool"]
    k: Pair = (2, 2)
    stride: Pair | None = None
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    @field_validator("k", "stride", mode="before")
    @classmethod
    def _positive_pair(cls, value: Any) -> Any:
        return None if value is None else to_pair(value, minimum=1)

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any) -> Any:
        return to_pair(value, minimum=0)

    @model_validator(mode="after")
    def _half_kernel(self) -> PoolLayer:
        if any(2 * p > k for p, k in zip(self.padding, self.k)):
            raise ValueError(f"padding must be at most half the kernel (PyTorch's rule), got padding "
                             f"{show_pair(self.padding)} for k {show_pair(self.k)}")
        return self

    @property
    def stride_pair(self) -> tuple[int, int]:
        return self.stride if self.stride is not None else self.k


def _calc(layer: PoolLayer, at: At, flow: Flow) -> list[Row]:
    c, h, w = feature_map(layer.op, flow)
    stride = layer.stride_pair
    h_out, w_out = window_sizes((h, w), layer.k, stride, layer.padding, layer.ceil_mode)
    return [Row(name=at.name, op=layer.op, path=at.path, inputs=(flow.producer,), in_shape=flow.shape,
                out_shape=(c, h_out, w_out), geo_in=flow.geo,
                geo_out=step_geometry(flow.geo, layer.k, stride, layer.padding), kernel=layer.k, stride=stride,
                padding=layer.padding, dilation=(1, 1), attrs={"ceil_mode": layer.ceil_mode})]


def _layer(row: Row) -> PoolLayer:
    assert row.kernel and row.stride and row.padding
    return PoolLayer(op=row.op, k=row.kernel, stride=row.stride, padding=row.padding,
                     ceil_mode=row.attrs["ceil_mode"])


def _leaf(row: Row, layer: PoolLayer) -> Leaf:
    kwargs: list[tuple[str, Any]] = [("kernel_size", ctor_pair(layer.k))]
    if layer.stride_pair != layer.k:
        kwargs.append(("stride", ctor_pair(layer.stride_pair)))
    if layer.padding != (0, 0):
        kwargs.append(("padding", ctor_pair(layer.padding)))
    if layer.ceil_mode:
        kwargs.append(("ceil_mode", True))
    return Leaf(row.name, "nn.MaxPool2d" if layer.op == "maxpool" else "nn.AvgPool2d", (), tuple(kwargs))


# -- inspect ---------------------------------------------------------------------------------------------------
def _pool(op: str, k: Any, stride: Any, padding: Any, ceil_mode: bool, dilation: Any = 1,
          return_indices: bool = False, count_include_pad: Any = True, divisor_override: Any = None) -> Action:
    from rfcalc.ops.actions import AsLayer, Unsupported  # inspect only: `check` never loads actions

    if pair(dilation) != (1, 1):
        return Unsupported("a dilated max pool; rfcalc's pools have no dilation")
    if return_indices:
        return Unsupported("a max pool with return_indices=True")
    kk = pair(k)
    st = kk if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else pair(stride)
    dropped = ((() if count_include_pad else ("count_include_pad=False",))
               + (() if divisor_override is None else (f"divisor_override={divisor_override!r}",)))
    return AsLayer(PoolLayer(op=op, k=kk, stride=st, padding=pair(padding), ceil_mode=bool(ceil_mode)),
                   dropped=dropped)


def _max_module(call: Call) -> Action:
    m = call.module
    return _pool("maxpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation, m.return_indices)


def _avg_module(call: Call) -> Action:
    m = call.module
    return _pool("avgpool", m.kernel_size, m.stride, m.padding, m.ceil_mode,
                 count_include_pad=m.count_include_pad, divisor_override=m.divisor_override)


def _max_function(call: Call) -> Action:
    return _pool("maxpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False), call.get("dilation", 1), call.get("return_indices", False))


def _avg_function(call: Call) -> Action:
    return _pool("avgpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False), count_include_pad=call.get("count_include_pad", True),
                 divisor_override=call.get("divisor_override"))


_MAX_SIG = "input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False"
_AVG_SIG = ("input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
            "divisor_override=None")


# -- random layers ---------------------------------------------------------------------------------------------
def random_pool(rng: random.Random, *, keep_size: bool = False, op: str | None = None) -> dict[str, Any]:
    """A random pool layer; ``keep_size``: k 3, stride 1, padding 1."""
    op = op or rng.choice(("maxpool", "avgpool"))
    if keep_size:
        return {"op": op, "k": 3, "stride": 1, "padding": 1}
    k = rng.choice((1, 2, 2, 3))
    layer: dict[str, Any] = {"op": op, "k": k}
    if rng.random() < 0.4:
        layer["stride"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        layer["padding"] = rng.randint(0, k // 2)
    if rng.random() < 0.3:
        layer["ceil_mode"] = True
    return layer


def _random(op: str) -> Any:
    def draw(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
        return (random_pool(rng, op=op), shape) if len(shape) == 3 else None
    return draw


def _to_spec(row: Row, layer: PoolLayer) -> dict[str, Any]:
    assert row.kernel is not None and row.stride is not None and row.padding is not None
    out: dict[str, Any] = {"k": compact(row.kernel)}
    if row.stride != row.kernel:
        out["stride"] = compact(row.stride)
    if row.padding != (0, 0):
        out["padding"] = compact(row.padding)
    if layer.ceil_mode:
        out["ceil_mode"] = True
    return out


OPS: tuple[OpDef[PoolLayer], ...] = (
    OpDef(name="maxpool", family="pool", summary="max pool over k x k windows (nn.MaxPool2d)", model=PoolLayer,
          calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.MaxPool2d",), positive="avg_pool", mixing="window",
          inspect=InspectRules(modules={"torch.nn.MaxPool2d": _max_module},
                               functions=(FunctionRule((f"{F}.max_pool2d", "torch.max_pool2d"), _MAX_SIG,
                                                       _max_function),)),
          random=_random("maxpool"), features={"maxpool": lambda row, c: row.op == "maxpool"}, to_spec=_to_spec,
          attach=None, fold=None, gather=None),
    OpDef(name="avgpool", family="pool", summary="average pool over k x k windows (nn.AvgPool2d)", model=PoolLayer,
          calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.AvgPool2d",), positive="keep", mixing="window",
          inspect=InspectRules(modules={"torch.nn.AvgPool2d": _avg_module},
                               functions=(FunctionRule((f"{F}.avg_pool2d",), _AVG_SIG, _avg_function),)),
          random=_random("avgpool"), features={"avgpool": lambda row, c: row.op == "avgpool"}, to_spec=_to_spec,
          attach=None, fold=None, gather=None),
)
