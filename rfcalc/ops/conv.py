"""``conv``: a 2-D convolution, with its own norm, activation and dropout (in that order) when the layer names them.

The conv's row is followed by one row per attached op (``c1.bn``, ``c1.relu``, ``c1.dropout``), each computed
by that op's own rule (:mod:`rfcalc.ops.norm`, :mod:`rfcalc.ops.activation`, :mod:`rfcalc.ops.dropout`), so a
conv's parameters are exactly PyTorch's (contract section 2). ``separable: true`` is expanded by
:mod:`rfcalc.spec.expand` into a depthwise conv and a pointwise conv before any rule runs.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rfcalc.ops import activation, dropout, norm
from rfcalc.ops.activation import ACT_NAMES, OptionalAct
from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel, Pair, spelled, to_pair
from rfcalc.ops.norm import OptionalNorm
from rfcalc.ops.rows import channels_divisible, compact, ctor_pair, feature_map, pair, window_sizes
from rfcalc.table.geometry import Flow, LayerError, fmt_pair, step_geometry
from rfcalc.table.report import IntPair, Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class ConvLayer(LayerModel):
    op: Literal["conv"]
    out: Annotated[int, Field(ge=1)] | None = None
    k: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Pair | Literal["same", "valid"] = (0, 0)
    dilation: Pair = (1, 1)
    groups: Annotated[int, Field(ge=1)] | Literal["depthwise"] = 1
    separable: bool = False
    bias: bool = True
    norm: OptionalNorm = None
    norm_groups: Annotated[int, Field(ge=1)] | None = None
    act: OptionalAct = None
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @field_validator("k", "stride", "dilation", mode="before")
    @classmethod
    def _positive_pair(cls, value: Any) -> Any:
        return to_pair(value, minimum=1)

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any) -> Any:
        return value if value in ("same", "valid") else to_pair(value, minimum=0)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        if value == "depthwise":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= 1 or 'depthwise', got {spelled(value)}")
        if value < 1:
            raise ValueError(f"must be >= 1 or 'depthwise', got {value}")
        return value

    @model_validator(mode="after")
    def _norm_groups(self) -> ConvLayer:
        if self.norm == "gn" and self.norm_groups is None:
            raise ValueError("norm: gn needs norm_groups (the number of groups, a divisor of out)")
        if self.separable and self.groups != 1:
            raise ValueError(f"separable: true builds its own depthwise conv; leave groups at 1, got {self.groups!r}")
        return self


# -- the calculator rule ---------------------------------------------------------------------------------------
def k_eff(k: IntPair, dilation: IntPair) -> IntPair:
    """The effective kernel ``d·(k−1)+1`` per axis."""
    return (dilation[0] * (k[0] - 1) + 1, dilation[1] * (k[1] - 1) + 1)


def resolve_padding(layer: ConvLayer, kernel: IntPair) -> IntPair:
    """``same`` / ``valid`` / explicit padding -> explicit padding (``same``: stride 1, odd effective kernel)."""
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding != "same":
        return layer.padding
    for a, axis in ((0, "h"), (1, "w")):
        if layer.stride[a] != 1:
            raise LayerError(f"padding 'same' needs stride 1, got stride {fmt_pair(layer.stride)}; "
                             f"give an explicit padding")
        if kernel[a] % 2 == 0:
            raise LayerError(f"padding 'same' needs an odd effective kernel, got {kernel[a]} on axis {axis} "
                             f"(k {layer.k[a]}, dilation {layer.dilation[a]}); give an explicit padding")
    return ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)


def _calc(layer: ConvLayer, at: At, flow: Flow) -> list[Row]:
    c_in, h, w = feature_map("conv", flow)
    groups = c_in if layer.groups == "depthwise" else layer.groups
    out = layer.out if layer.out is not None else c_in
    channels_divisible("groups", groups, c_in, "input channels")
    if out % groups:
        raise LayerError(f"groups {groups} must divide out, got out {out}")
    kernel = k_eff(layer.k, layer.dilation)
    padding = resolve_padding(layer, kernel)
    h_out, w_out = window_sizes((h, w), kernel, layer.stride, padding)
    if layer.norm == "gn" and out % (layer.norm_groups or 1):
        raise LayerError(f"norm_groups {layer.norm_groups} must divide out, got out {out}")
    params = out * (c_in // groups) * layer.k[0] * layer.k[1] + (out if layer.bias else 0)
    macs = layer.k[0] * layer.k[1] * (c_in // groups) * out * h_out * w_out
    conv = Row(name=at.name, op="conv", path=at.path, inputs=(flow.producer,), in_shape=flow.shape,
               out_shape=(out, h_out, w_out), geo_in=flow.geo,
               geo_out=step_geometry(flow.geo, kernel, layer.stride, padding), params=params, macs=macs,
               kernel=layer.k, stride=layer.stride, padding=padding, dilation=layer.dilation, groups=groups,
               attrs={"bias": layer.bias})
    return [conv, *attached(conv, layer)]


def attached(conv: Row, layer: ConvLayer) -> list[Row]:
    """The conv's own norm, activation and dropout, each a row named ``<conv>.<op>`` by that op's rule."""
    rows: list[Row] = []
    flow = Flow(conv.out_shape, conv.geo_out, conv.name)

    def add(new: list[Row]) -> None:
        nonlocal flow
        rows.extend(new)
        flow = Flow(new[-1].out_shape, new[-1].geo_out, new[-1].name)

    if layer.norm is not None:
        add(norm.rows(layer.norm, layer.norm_groups, At(f"{conv.name}.{layer.norm}", conv.path), flow,
                      attached_to=conv.name, what="norm_groups"))
    if layer.act is not None:
        add(activation.rows(layer.act, At(f"{conv.name}.{layer.act}", conv.path), flow, attached_to=conv.name))
    if layer.dropout > 0:
        add(dropout.rows(layer.dropout, At(f"{conv.name}.dropout", conv.path), flow, attached_to=conv.name))
    return rows


def separable_parts(layer: ConvLayer) -> tuple[ConvLayer, ConvLayer]:
    """``separable: true`` as two plain convs: a depthwise k x k conv (stride, padding and dilation of the layer;
    no norm, act or dropout) and a 1x1 conv to ``out`` with the layer's norm, act and dropout; ``bias`` on both."""
    base: dict[str, Any] = {"name": None, "repeat": 1, "separable": False}
    depthwise = layer.model_copy(update=base | {"groups": "depthwise", "out": None, "norm": None, "norm_groups": None,
                                                "act": None, "dropout": 0.0})
    pointwise = layer.model_copy(update=base | {"k": (1, 1), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
                                                "groups": 1})
    return depthwise, pointwise


# -- the module --------------------------------------------------------------------------------------------------
def _layer(row: Row) -> ConvLayer:
    """The conv of a row alone (its own norm, activation and dropout are rows of their own), padding resolved."""
    assert row.kernel and row.stride and row.padding and row.dilation and row.groups
    return ConvLayer(op="conv", out=row.out_shape[0], k=row.kernel, stride=row.stride, padding=row.padding,
                     dilation=row.dilation, groups=row.groups, bias=row.attrs["bias"])


def _leaf(row: Row, layer: ConvLayer) -> Leaf:
    assert row.in_shape is not None and isinstance(layer.padding, tuple)
    kwargs: list[tuple[str, Any]] = [("kernel_size", ctor_pair(layer.k))]
    for key, value, default in (("stride", layer.stride, (1, 1)), ("padding", layer.padding, (0, 0)),
                                ("dilation", layer.dilation, (1, 1))):
        if value != default:
            kwargs.append((key, ctor_pair(value)))
    if layer.groups != 1:
        kwargs.append(("groups", layer.groups))
    if not layer.bias:
        kwargs.append(("bias", False))
    return Leaf(row.name, "nn.Conv2d", (row.in_shape[0], layer.out), tuple(kwargs))


# -- inspect -------------------------------------------------------------------------------------------------------
def _from_call(weight_shape: tuple[int, ...], has_bias: bool, stride: Any, padding: Any, dilation: Any, groups: int,
               padding_mode: str = "zeros") -> Action:
    from rfcalc.ops.actions import AsLayer, Unsupported  # inspect only: `check` never loads actions

    if len(weight_shape) != 4:
        return Unsupported(f"a {len(weight_shape) - 2}-d convolution; rfcalc follows 2-d convolutions only")
    out, _, kh, kw = weight_shape
    dil = pair(dilation)
    kernel = k_eff((kh, kw), dil)
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0)
        elif any(k % 2 == 0 for k in kernel):
            return Unsupported(f"padding='same' with an even effective kernel {kernel[0]}x{kernel[1]} pads one "
                               f"side more than the other; give an explicit padding")
        else:
            pad = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    else:
        pad = pair(padding)
    note = None if padding_mode == "zeros" else f"padding_mode={padding_mode!r}; the spec pads with zeros"
    layer = ConvLayer(op="conv", out=out, k=(kh, kw), stride=pair(stride), padding=pad, dilation=dil,
                      groups=int(groups), bias=has_bias)
    return AsLayer(layer, note)


def _module(call: Call) -> Action:
    m = call.module
    return _from_call(tuple(m.weight.shape), m.bias is not None, m.stride, m.padding, m.dilation, m.groups,
                      m.padding_mode)


def _function(call: Call) -> Action:
    weight = call.get("weight")
    return _from_call(tuple(weight.shape), call.get("bias") is not None, call.get("stride", 1), call.get("padding", 0),
                      call.get("dilation", 1), call.get("groups", 1))


# -- random layers ---------------------------------------------------------------------------------------------
def random_norm(rng: random.Random, layer: dict[str, Any], channels: int) -> None:
    """Maybe give ``layer`` a norm (gn with a group count that divides ``channels``)."""
    name = rng.choice(("none", "none", "bn", "gn", "ln"))
    if name == "gn":
        layer["norm_groups"] = norm.random_groups(rng, channels)
    if name != "none":
        layer["norm"] = name


def random_conv(rng: random.Random, channels: int, *, stride: Any = None, keep_size: bool = False,
                out: int | None = None) -> tuple[dict[str, Any], int]:
    """A random conv layer and its output channels. ``keep_size``: stride 1 and a size-preserving padding;
    ``out``: the caller needs these output channels (plain or separable)."""
    k, dil = rng.choice((1, 1, 2, 3, 3, 5)), rng.choice((1, 1, 1, 2, 3))
    layer: dict[str, Any] = {"op": "conv", "k": k}
    if dil != 1:
        layer["dilation"] = dil
    kernel = dil * (k - 1) + 1
    if keep_size:
        if kernel % 2 == 0:
            k, kernel = k + 1, dil * k + 1
            layer["k"] = k
        layer["padding"] = rng.choice(("same", (kernel - 1) // 2))
    else:
        s = stride if stride is not None else rng.choice((1, 1, 1, 2, 2, 3, [1, 2]))
        if s != 1:
            layer["stride"] = s
        layer["padding"] = rng.choice((0, 1, 2, "valid", _random_pair(rng, 0, 3)))
    kind = rng.random()
    if out is not None:
        out_ch = out
        layer["out"] = out
        if kind < 0.2:
            layer["separable"] = True
    elif kind < 0.15:
        layer["groups"] = "depthwise"
        out_ch = channels
        if rng.random() < 0.5:
            out_ch = channels * rng.randint(1, 2)
            layer["out"] = out_ch
    elif kind < 0.25 and channels > 1:
        groups = norm.random_groups(rng, channels)
        out_ch = groups * rng.randint(1, max(1, 8 // groups))
        layer.update(groups=groups, out=out_ch)
    elif kind < 0.35:
        layer["separable"] = True
        out_ch = rng.randint(1, 8)
        layer["out"] = out_ch
    else:
        out_ch = rng.randint(1, 8)
        layer["out"] = out_ch
    random_norm(rng, layer, out_ch)
    act = rng.choice(("none", *ACT_NAMES))
    if act != "none":
        layer["act"] = act
    if rng.random() < 0.15:
        layer["dropout"] = 0.2
    if rng.random() < 0.3:
        layer["bias"] = False
    return layer, out_ch


def _random_pair(rng: random.Random, low: int, high: int) -> int | list[int]:
    if rng.random() < 0.2:
        return [rng.randint(low, high), rng.randint(low, high)]
    return rng.randint(low, high)


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 3:
        return None
    layer, out = random_conv(rng, shape[0])
    return layer, (out, *shape[1:])  # the spatial size is the calculator's business; loading tells


# -- features and write-back -----------------------------------------------------------------------------------
def is_depthwise(row: Row) -> bool:
    return row.op == "conv" and row.in_shape is not None and row.groups is not None and row.groups > 1 \
        and row.groups == row.in_shape[0]


def _is_pointwise(row: Row) -> bool:
    return row.op == "conv" and row.kernel == (1, 1) and row.groups == 1


def _separable(row: Row, consumers: dict[str, list[Row]]) -> bool:
    """A depthwise conv whose output goes straight (or through its own norm/act) into a 1x1 conv."""
    if not is_depthwise(row):
        return False
    frontier = [row.name]
    while frontier:
        name = frontier.pop()
        for nxt in consumers.get(name, []):
            if _is_pointwise(nxt):
                return True
            if nxt.attached_to == row.name:
                frontier.append(nxt.name)
    return False


def _to_spec(row: Row, layer: ConvLayer) -> dict[str, Any]:
    assert row.kernel is not None
    c_in = row.in_shape[0] if row.in_shape else 0
    out: dict[str, Any] = {"out": row.out_shape[0], "k": compact(row.kernel)}
    for key, value, default in (("stride", row.stride, (1, 1)), ("padding", row.padding, (0, 0)),
                                ("dilation", row.dilation, (1, 1))):
        if value is not None and value != default:
            out[key] = compact(value)
    if row.groups != 1:
        out["groups"] = "depthwise" if row.groups == c_in == row.out_shape[0] else row.groups
    if not layer.bias:
        out["bias"] = False
    return out


OP = OpDef(
    name="conv", family="conv", summary="2-D convolution (nn.Conv2d) with optional norm, activation and dropout",
    model=ConvLayer, calc=_calc, layer=_layer, leaf=_leaf, ctors=("nn.Conv2d",), positive="keep", mixing="window",
    inspect=InspectRules(
        modules={"torch.nn.Conv2d": _module},
        functions=(FunctionRule(("torch.nn.functional.conv2d", "torch.conv2d"),
                                "input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1", _function),)),
    random=_random,
    features={
        "dilated_conv": lambda row, c: row.op == "conv" and row.dilation is not None and max(row.dilation) > 1,
        "depthwise_conv": lambda row, c: is_depthwise(row),
        "separable_conv": _separable,
        "strided_conv": lambda row, c: row.op == "conv" and row.stride is not None and max(row.stride) > 1,
    },
    to_spec=_to_spec, attach=None, fold=None, gather=None)
OPS: tuple[OpDef[ConvLayer], ...] = (OP,)
