"""The converters of ``rfcalc inspect``'s lookup table: one traced call's arguments -> its action. Needs torch.

Each ``convert_*`` function reads a bound :class:`~rfcalc.inspection.actions.Call` (a module's attributes, or a
function's arguments by name) and answers with an action; each ``as_*`` function makes a converter for a
fixed op. :mod:`rfcalc.inspection.lookup` says which call gets which converter.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rfcalc.inspection.actions import (Action, AdaptivePool, AsLayer, Binary, Broadcast, Call, Concat, GlobalPool,
                                    Handler, Pointwise, Reshape, Unsupported)
from rfcalc.spec.models import ActLayer, ConvLayer, DropoutLayer, LinearLayer, NormLayer, PoolLayer


def pair(value: Any) -> tuple[int, int]:
    """An int or a 1- or 2-sequence -> (h, w)."""
    if isinstance(value, (list, tuple, torch.Size)):
        items = [int(v) for v in value]
        return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])
    return (int(value), int(value))


# -- conv ------------------------------------------------------------------------------------------------------
def _conv(weight_shape: tuple[int, ...], has_bias: bool, stride: Any, padding: Any, dilation: Any, groups: int,
          padding_mode: str = "zeros") -> Action:
    if len(weight_shape) != 4:
        return Unsupported(f"a {len(weight_shape) - 2}-d convolution; rfcalc follows 2-d convolutions only")
    out, _, kh, kw = weight_shape
    dil = pair(dilation)
    k_eff = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0)
        elif any(k % 2 == 0 for k in k_eff):
            return Unsupported(f"padding='same' with an even effective kernel {k_eff[0]}x{k_eff[1]} pads one "
                               f"side more than the other; give an explicit padding")
        else:
            pad = ((k_eff[0] - 1) // 2, (k_eff[1] - 1) // 2)
    else:
        pad = pair(padding)
    note = None if padding_mode == "zeros" else f"padding_mode={padding_mode!r}; the spec pads with zeros"
    layer = ConvLayer(op="conv", out=out, k=(kh, kw), stride=pair(stride), padding=pad, dilation=dil,
                      groups=int(groups), bias=has_bias)
    return AsLayer(layer, note)


def convert_conv_module(call: Call) -> Action:
    m: nn.Conv2d = call.module  # type: ignore[assignment]
    return _conv(tuple(m.weight.shape), m.bias is not None, m.stride, m.padding, m.dilation, m.groups,
                 m.padding_mode)


def convert_conv_function(call: Call) -> Action:
    weight = call.get("weight")
    return _conv(tuple(weight.shape), call.get("bias") is not None, call.get("stride", 1), call.get("padding", 0),
                 call.get("dilation", 1), call.get("groups", 1))


# -- pools -----------------------------------------------------------------------------------------------------
def _pool(op: str, k: Any, stride: Any, padding: Any, ceil_mode: bool, dilation: Any = 1,
          return_indices: bool = False) -> Action:
    if pair(dilation) != (1, 1):
        return Unsupported("a dilated max pool; rfcalc's pools have no dilation")
    if return_indices:
        return Unsupported("a max pool with return_indices=True")
    kk = pair(k)
    st = kk if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else pair(stride)
    return AsLayer(PoolLayer(op=op, k=kk, stride=st, padding=pair(padding), ceil_mode=bool(ceil_mode)))


def convert_maxpool_module(call: Call) -> Action:
    m: nn.MaxPool2d = call.module  # type: ignore[assignment]
    return _pool("maxpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation, m.return_indices)


def convert_avgpool_module(call: Call) -> Action:
    m: nn.AvgPool2d = call.module  # type: ignore[assignment]
    return _pool("avgpool", m.kernel_size, m.stride, m.padding, m.ceil_mode)


def convert_maxpool_function(call: Call) -> Action:
    return _pool("maxpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False), call.get("dilation", 1), call.get("return_indices", False))


def convert_avgpool_function(call: Call) -> Action:
    return _pool("avgpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False))


def as_mean(mode: str) -> Handler:
    """``x.mean(dims)`` / ``amax``: a global pool over (H, W); over channels only the generic rule (None)."""
    def convert(call: Call) -> Action:
        dims = call.get("dim")
        if dims is None:
            return Unsupported("a reduction over every dimension (the batch too)")
        dims = {d % 4 for d in ((dims,) if isinstance(dims, int) else dims)}
        if dims == {2, 3}:
            return GlobalPool(mode)
        if 0 in dims or dims & {2, 3}:
            return Unsupported(f"a reduction over dims {sorted(dims)}; rfcalc follows global pools over (H, W) only")
        return None  # type: ignore[return-value]  # over channels only: the generic rule (a point-wise op)
    return convert


def as_adaptive(mode: str) -> Handler:
    def convert(call: Call) -> Action:
        if call.get("return_indices", False) or getattr(call.module, "return_indices", False):
            return Unsupported("an adaptive max pool with return_indices=True")
        return AdaptivePool(mode)
    return convert


# -- norms, activations, dropout, linear -----------------------------------------------------------------------
def _norm_note(affine: bool) -> str | None:
    return None if affine else "a norm without affine parameters (the spec's norms are affine)"


def convert_batchnorm_module(call: Call) -> Action:
    m: nn.BatchNorm2d = call.module  # type: ignore[assignment]
    return AsLayer(NormLayer(op="bn"), _norm_note(m.affine))


def convert_groupnorm_module(call: Call) -> Action:
    m: nn.GroupNorm = call.module  # type: ignore[assignment]
    layer = NormLayer(op="ln") if m.num_groups == 1 else NormLayer(op="gn", groups=m.num_groups)
    return AsLayer(layer, _norm_note(m.affine))


def convert_batchnorm_function(call: Call) -> Action:
    affine = call.get("weight") is not None and call.get("bias") is not None
    return AsLayer(NormLayer(op="bn"), _norm_note(affine))


def convert_groupnorm_function(call: Call) -> Action:
    groups = int(call.get("num_groups"))
    affine = call.get("weight") is not None and call.get("bias") is not None
    layer = NormLayer(op="ln") if groups == 1 else NormLayer(op="gn", groups=groups)
    return AsLayer(layer, _norm_note(affine))


def as_act(op: str) -> Handler:
    return lambda call: AsLayer(ActLayer(op=op))


def convert_leaky_relu(call: Call) -> Action:
    slope = call.module.negative_slope if call.module is not None else call.get("negative_slope", 0.01)
    note = None if slope == 0.01 else f"leaky_relu with negative_slope={slope} (the spec's is 0.01)"
    return AsLayer(ActLayer(op="leaky_relu"), note)


def convert_gelu(call: Call) -> Action:
    approximate = call.module.approximate if call.module is not None else call.get("approximate", "none")
    note = None if approximate == "none" else f"gelu with approximate={approximate!r}"
    return AsLayer(ActLayer(op="gelu"), note)


def convert_dropout(call: Call) -> Action:
    p = call.module.p if call.module is not None else call.get("p", 0.5)
    if not 0 <= p < 1:
        return Pointwise("dropout")
    return AsLayer(DropoutLayer(op="dropout", p=float(p)))


def convert_linear_module(call: Call) -> Action:
    m: nn.Linear = call.module  # type: ignore[assignment]
    return AsLayer(LinearLayer(op="linear", out=m.out_features, bias=m.bias is not None))


def convert_linear_function(call: Call) -> Action:
    weight = call.get("weight")
    return AsLayer(LinearLayer(op="linear", out=int(weight.shape[0]), bias=call.get("bias") is not None))


# -- element-wise ops, reshapes, merges ------------------------------------------------------------------------
def as_pointwise(op: str) -> Handler:
    return lambda call: Pointwise(op)


def convert_reshape(call: Call) -> Action:
    return Reshape()


def convert_broadcast(call: Call) -> Action:
    return Broadcast()


def convert_cat(call: Call) -> Action:
    return Concat(int(call.get("dim", 0)))


def as_binary(op: str, operands: tuple[str, str] = ("input", "other")) -> Handler:
    return lambda call: Binary(op, operands)
