"""Helpers the calculator rules of the op families share: input checks, output sizes, same-geometry rows.

Every check raises :class:`~rfcalc.table.geometry.LayerError`, which the calculator turns into a located
problem for the layer (contract section 1, "Error messages").
"""
from __future__ import annotations

from typing import Any

from rfcalc.ops.base import At
from rfcalc.table.geometry import Flow, LayerError, fmt_pair, fmt_shape, output_size
from rfcalc.table.report import IntPair, Row, Shape


def feature_map(op: str, flow: Flow) -> tuple[int, int, int]:
    """(C, H, W) of the input; an error when it is a vector."""
    if len(flow.shape) != 3:
        raise LayerError(f"needs a feature map (C x H x W) input but gets {fmt_shape(flow.shape)}; "
                         f"{op} must come before gap/flatten")
    c, h, w = flow.shape
    return c, h, w


def vector(flow: Flow) -> int:
    """The length of a vector input; an error when it is a feature map."""
    if len(flow.shape) != 1:
        raise LayerError(f"needs a vector input but gets {fmt_shape(flow.shape)}; "
                         f"add {{op: gap}} or {{op: flatten}} before it")
    return flow.shape[0]


def window_sizes(hw: IntPair, k_eff: IntPair, stride: IntPair, padding: IntPair, ceil_mode: bool = False) -> IntPair:
    """The output size of a window op per axis; an error when it reaches zero."""
    out = (output_size(hw[0], k_eff[0], stride[0], padding[0], ceil_mode),
           output_size(hw[1], k_eff[1], stride[1], padding[1], ceil_mode))
    if min(out) <= 0:
        raise LayerError(f"spatial size reaches zero: input {fmt_pair(hw)} with effective kernel "
                         f"{fmt_pair(k_eff)}, padding {fmt_pair(padding)}, stride {fmt_pair(stride)} gives "
                         f"{fmt_pair(out)}; use a smaller kernel or stride, more padding, or fewer reductions")
    return out


def same_geometry(op: str, at: At, flow: Flow, *, params: int = 0, macs: int = 0, out_shape: Shape | None = None,
                  **extras: Any) -> Row:
    """A row that keeps rf, jump and start (contract section 2: element-wise ops, norms, vector ops)."""
    return Row(name=at.name, op=op, path=at.path, inputs=(flow.producer,), in_shape=flow.shape,
               out_shape=flow.shape if out_shape is None else out_shape, geo_in=flow.geo, geo_out=flow.geo,
               params=params, macs=macs, **extras)


def channels_divisible(what: str, groups: int, channels: int, unit: str = "channels") -> None:
    """``groups`` must divide ``channels``."""
    if channels % groups:
        raise LayerError(f"{what} {groups} must divide the {unit}, got {channels} {unit}")


def pair(value: Any) -> IntPair:
    """An int, or a sequence of one or two ints (a torch.Size too) -> (h, w)."""
    if isinstance(value, (list, tuple)):
        items = [int(v) for v in value]
        return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])
    return (int(value), int(value))


def compact(value: IntPair) -> int | list[int]:
    """(3, 3) -> 3; (3, 5) -> [3, 5]: how a spec writes a pair."""
    return value[0] if value[0] == value[1] else [value[0], value[1]]


def ctor_pair(value: IntPair) -> int | IntPair:
    """(3, 3) -> 3; (3, 5) -> (3, 5): how a PyTorch constructor call writes a pair."""
    return value[0] if value[0] == value[1] else value
