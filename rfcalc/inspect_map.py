"""The lookup table of ``rfcalc inspect``: which traced PyTorch call is which spec op. Needs torch.

Every ``torch.nn`` module, ``torch`` / ``torch.nn.functional`` function and tensor method that rfcalc
understands has an entry here; :mod:`rfcalc.inspect` walks the traced graph and asks
:func:`classify` what each call is. An entry answers with an *action*:

- :class:`AsLayer` — a spec layer model (``ConvLayer``, ``PoolLayer``, ...) the calculator handles as is;
  ``spec_note`` says why the spec could not write it back exactly (``--to-spec`` refuses then);
- :class:`Pointwise` — a known element-wise op with no spec op (sigmoid, hardswish, instance norm, ...):
  passes the RF through;
- :class:`GlobalPool` / :class:`AdaptivePool` — global and adaptive pools (``gap`` or an exact pool);
- :class:`Reshape` — flatten / view / reshape / squeeze (only flattening to a vector keeps a meaning);
- :class:`Concat`, :class:`Binary` — merges (``torch.cat``, ``+``, ``*``, ...);
- :class:`Broadcast` — ``expand`` / ``expand_as``: a 1x1 map seen at every position (it stays 1x1 for the
  calculator, so the product or sum that uses it is a broadcast with a global context);
- :class:`Unsupported` — a known call whose windows the calculator cannot describe (a dilated max pool,
  asymmetric ``same`` padding, ...): the report stops there with the reason.

A call missing from the table gets :data:`None` and the generic rule of :mod:`rfcalc.inspect`.
"""
from __future__ import annotations

import inspect as _inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from rfcalc.spec_models import (ActLayer, ConvLayer, DropoutLayer, FlattenLayer, LinearLayer, NormLayer, PoolLayer,
                                PrimLayer, UltimusLayer)


# -- actions ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AsLayer:
    layer: PrimLayer
    spec_note: str | None = None


@dataclass(frozen=True)
class Pointwise:
    op: str


@dataclass(frozen=True)
class GlobalPool:
    mode: str  # "avg" | "max"


@dataclass(frozen=True)
class AdaptivePool:
    mode: str


@dataclass(frozen=True)
class Reshape:
    pass


@dataclass(frozen=True)
class Concat:
    dim: int
    tensors: str = "tensors"


@dataclass(frozen=True)
class Binary:
    op: str  # "add" | "sub" | "mul" | "div"
    operands: tuple[str, str] = ("input", "other")


@dataclass(frozen=True)
class Broadcast:
    """``expand`` / ``expand_as`` / ``broadcast_to``: the same values seen at more positions (no row of its own)."""


@dataclass(frozen=True)
class Unsupported:
    reason: str


Action = Union[AsLayer, Pointwise, GlobalPool, AdaptivePool, Reshape, Concat, Binary, Broadcast, Unsupported]


@dataclass
class Call:
    """One traced call: the module (for ``call_module``) and its arguments bound by name to concrete values."""

    name: str
    module: nn.Module | None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


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


def _conv_module(call: Call) -> Action:
    m: nn.Conv2d = call.module  # type: ignore[assignment]
    return _conv(tuple(m.weight.shape), m.bias is not None, m.stride, m.padding, m.dilation, m.groups,
                 m.padding_mode)


def _conv_function(call: Call) -> Action:
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


def _maxpool_module(call: Call) -> Action:
    m: nn.MaxPool2d = call.module  # type: ignore[assignment]
    return _pool("maxpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, m.dilation, m.return_indices)


def _avgpool_module(call: Call) -> Action:
    m: nn.AvgPool2d = call.module  # type: ignore[assignment]
    return _pool("avgpool", m.kernel_size, m.stride, m.padding, m.ceil_mode)


def _maxpool_function(call: Call) -> Action:
    return _pool("maxpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False), call.get("dilation", 1), call.get("return_indices", False))


def _avgpool_function(call: Call) -> Action:
    return _pool("avgpool", call.get("kernel_size"), call.get("stride"), call.get("padding", 0),
                 call.get("ceil_mode", False))


def _mean_dims(call: Call, mode: str) -> Action:
    dims = call.get("dim")
    if dims is None:
        return Unsupported("a reduction over every dimension (the batch too)")
    dims = {d % 4 for d in ((dims,) if isinstance(dims, int) else dims)}
    if dims == {2, 3}:
        return GlobalPool(mode)
    if 0 in dims or dims & {2, 3}:
        return Unsupported(f"a reduction over dims {sorted(dims)}; rfcalc follows global pools over (H, W) only")
    return None  # type: ignore[return-value]  # over channels only: the generic rule (a point-wise op)


# -- norms, activations, dropout, linear -----------------------------------------------------------------------
def _norm_note(affine: bool) -> str | None:
    return None if affine else "a norm without affine parameters (the spec's norms are affine)"


def _batchnorm_module(call: Call) -> Action:
    m: nn.BatchNorm2d = call.module  # type: ignore[assignment]
    return AsLayer(NormLayer(op="bn"), _norm_note(m.affine))


def _groupnorm_module(call: Call) -> Action:
    m: nn.GroupNorm = call.module  # type: ignore[assignment]
    layer = NormLayer(op="ln") if m.num_groups == 1 else NormLayer(op="gn", groups=m.num_groups)
    return AsLayer(layer, _norm_note(m.affine))


def _batchnorm_function(call: Call) -> Action:
    affine = call.get("weight") is not None and call.get("bias") is not None
    return AsLayer(NormLayer(op="bn"), _norm_note(affine))


def _groupnorm_function(call: Call) -> Action:
    groups = int(call.get("num_groups"))
    affine = call.get("weight") is not None and call.get("bias") is not None
    layer = NormLayer(op="ln") if groups == 1 else NormLayer(op="gn", groups=groups)
    return AsLayer(layer, _norm_note(affine))


def _act(op: str) -> Callable[[Call], Action]:
    return lambda call: AsLayer(ActLayer(op=op))


def _leaky(call: Call) -> Action:
    slope = call.module.negative_slope if call.module is not None else call.get("negative_slope", 0.01)
    note = None if slope == 0.01 else f"leaky_relu with negative_slope={slope} (the spec's is 0.01)"
    return AsLayer(ActLayer(op="leaky_relu"), note)


def _gelu(call: Call) -> Action:
    approximate = call.module.approximate if call.module is not None else call.get("approximate", "none")
    note = None if approximate == "none" else f"gelu with approximate={approximate!r}"
    return AsLayer(ActLayer(op="gelu"), note)


def _dropout(call: Call) -> Action:
    p = call.module.p if call.module is not None else call.get("p", 0.5)
    if not 0 <= p < 1:
        return Pointwise("dropout")
    return AsLayer(DropoutLayer(op="dropout", p=float(p)))


def _linear_module(call: Call) -> Action:
    m: nn.Linear = call.module  # type: ignore[assignment]
    return AsLayer(LinearLayer(op="linear", out=m.out_features, bias=m.bias is not None))


def _linear_function(call: Call) -> Action:
    weight = call.get("weight")
    return AsLayer(LinearLayer(op="linear", out=int(weight.shape[0]), bias=call.get("bias") is not None))


def _adaptive(mode: str) -> Callable[[Call], Action]:
    def handler(call: Call) -> Action:
        if call.get("return_indices", False) or getattr(call.module, "return_indices", False):
            return Unsupported("an adaptive max pool with return_indices=True")
        return AdaptivePool(mode)
    return handler


def _pointwise(op: str) -> Callable[[Call], Action]:
    return lambda call: Pointwise(op)


def _reshape(call: Call) -> Action:
    return Reshape()


def _cat(call: Call) -> Action:
    return Concat(int(call.get("dim", 0)))


def _binary(op: str, operands: tuple[str, str] = ("input", "other")) -> Callable[[Call], Action]:
    return lambda call: Binary(op, operands)


# -- the table -------------------------------------------------------------------------------------------------
Handler = Callable[[Call], Action]

MODULES: dict[type, Handler] = {
    nn.Conv2d: _conv_module,
    nn.MaxPool2d: _maxpool_module, nn.AvgPool2d: _avgpool_module,
    nn.AdaptiveAvgPool2d: _adaptive("avg"), nn.AdaptiveMaxPool2d: _adaptive("max"),
    nn.BatchNorm2d: _batchnorm_module, nn.BatchNorm1d: _batchnorm_module, nn.SyncBatchNorm: _batchnorm_module,
    nn.GroupNorm: _groupnorm_module,
    nn.ReLU: _act("relu"), nn.ReLU6: _act("relu6"), nn.LeakyReLU: _leaky, nn.GELU: _gelu, nn.SiLU: _act("silu"),
    nn.Dropout: _dropout, nn.Dropout2d: _dropout, nn.Dropout1d: _dropout, nn.AlphaDropout: _dropout,
    nn.FeatureAlphaDropout: _dropout,
    nn.Linear: _linear_module,
    nn.Flatten: _reshape,
}

# Element-wise modules without a spec op: they pass the RF through under their own name.
POINTWISE_MODULES: dict[type, str] = {
    nn.Identity: "identity", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid", nn.ELU: "elu", nn.SELU: "selu", nn.CELU: "celu", nn.Mish: "mish",
    nn.Softplus: "softplus", nn.PReLU: "prelu", nn.Hardtanh: "hardtanh", nn.Softsign: "softsign",
    nn.Tanhshrink: "tanhshrink", nn.Hardshrink: "hardshrink", nn.Softshrink: "softshrink", nn.Threshold: "threshold",
    nn.RReLU: "rrelu", nn.LogSigmoid: "logsigmoid", nn.Softmax2d: "softmax2d",
    # normalisations the spec has no op for; like the spec's gn/ln they count as leaving the RF unchanged
    nn.InstanceNorm2d: "instance_norm", nn.LayerNorm: "layer_norm", nn.LocalResponseNorm: "local_response_norm",
}

_CONV_SIG = "input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1"
_MAXPOOL_SIG = "input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False"
_AVGPOOL_SIG = ("input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
                "divisor_override=None")
_BN_SIG = ("input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-05, "
           "*args, **kwargs")
_GN_SIG = "input, num_groups, weight=None, bias=None, eps=1e-05"
_ACT_SIG = "input, *args, **kwargs"
_LEAKY_SIG = "input, negative_slope=0.01, inplace=False"
_GELU_SIG = "input, approximate='none'"
_DROPOUT_SIG = "input, p=0.5, training=True, inplace=False"
_LINEAR_SIG = "input, weight, bias=None"
_ADAPTIVE_SIG = "input, output_size, return_indices=False"
_MEAN_SIG = "input, dim=None, keepdim=False, *args, **kwargs"
_CAT_SIG = "tensors, dim=0, *, out=None"
_BINARY_SIG = "input, other, *, alpha=1, out=None, rounding_mode=None"
_ANY_SIG = "*args, **kwargs"


def _signature(text: str) -> _inspect.Signature:
    namespace: dict[str, Any] = {}
    exec(f"def stub({text}): pass", namespace)  # noqa: S102 - our own constant strings
    return _inspect.signature(namespace["stub"])


def _entries(pairs: list[tuple[list[Any], str, Handler]]) -> dict[Any, tuple[_inspect.Signature, Handler]]:
    out: dict[Any, tuple[_inspect.Signature, Handler]] = {}
    for keys, sig, handler in pairs:
        signature = _signature(sig)
        for key in keys:
            out[key] = (signature, handler)
    return out


_POINTWISE_FUNCTIONS: dict[Any, str] = {
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid", F.elu: "elu", F.selu: "selu", F.celu: "celu", F.mish: "mish",
    F.softplus: "softplus", F.hardtanh: "hardtanh", F.prelu: "prelu", torch.exp: "exp", torch.abs: "abs",
    torch.clamp: "clamp", torch.clip: "clamp", operator.neg: "neg", torch.neg: "neg",
    F.instance_norm: "instance_norm", F.layer_norm: "layer_norm", F.local_response_norm: "local_response_norm",
}

FUNCTIONS: dict[Any, tuple[_inspect.Signature, Handler]] = _entries([
    ([F.conv2d, torch.conv2d], _CONV_SIG, _conv_function),
    ([F.max_pool2d, torch.max_pool2d], _MAXPOOL_SIG, _maxpool_function),
    ([F.avg_pool2d], _AVGPOOL_SIG, _avgpool_function),
    ([F.adaptive_avg_pool2d], _ADAPTIVE_SIG, _adaptive("avg")),
    ([F.adaptive_max_pool2d], _ADAPTIVE_SIG, _adaptive("max")),
    ([torch.mean], _MEAN_SIG, lambda call: _mean_dims(call, "avg")),
    ([torch.amax], _MEAN_SIG, lambda call: _mean_dims(call, "max")),
    ([F.batch_norm], _BN_SIG, _batchnorm_function),
    ([F.group_norm], _GN_SIG, _groupnorm_function),
    ([F.relu, torch.relu, F.relu_, torch.relu_], _ACT_SIG, _act("relu")),
    ([F.relu6], _ACT_SIG, _act("relu6")),
    ([F.leaky_relu], _LEAKY_SIG, _leaky),
    ([F.gelu], _GELU_SIG, _gelu),
    ([F.silu], _ACT_SIG, _act("silu")),
    ([F.dropout, F.dropout2d, F.dropout1d, F.alpha_dropout, F.feature_alpha_dropout], _DROPOUT_SIG, _dropout),
    ([F.linear], _LINEAR_SIG, _linear_function),
    ([torch.flatten, torch.reshape, torch.squeeze], _ANY_SIG, _reshape),
    ([torch.cat, torch.concat, torch.concatenate], _CAT_SIG, _cat),
    ([torch.broadcast_to], "input, size", lambda call: Broadcast()),
    ([operator.add, operator.iadd, torch.add], _BINARY_SIG, _binary("add")),
    ([operator.sub, operator.isub, torch.sub, torch.subtract], _BINARY_SIG, _binary("sub")),
    ([operator.mul, operator.imul, torch.mul, torch.multiply], _BINARY_SIG, _binary("mul")),
    ([operator.truediv, operator.itruediv, torch.div, torch.divide], _BINARY_SIG, _binary("div")),
    *[([fn], _ANY_SIG, _pointwise(op)) for fn, op in _POINTWISE_FUNCTIONS.items()],
])

_POINTWISE_METHODS = ("sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "abs", "neg", "clamp", "clamp_", "clamp_min",
                      "clamp_max", "clip", "contiguous", "clone", "float", "double", "half", "detach", "type_as")

METHODS: dict[str, tuple[_inspect.Signature, Handler]] = _entries([
    (["relu", "relu_"], "self, *args, **kwargs", _act("relu")),
    (["flatten", "view", "reshape", "squeeze"], "self, *args, **kwargs", _reshape),
    (["expand", "expand_as", "broadcast_to"], "input, *args, **kwargs", lambda call: Broadcast()),
    (["mean"], "input, dim=None, keepdim=False, *args, **kwargs", lambda call: _mean_dims(call, "avg")),
    (["amax"], "input, dim=None, keepdim=False, *args, **kwargs", lambda call: _mean_dims(call, "max")),
    (["add", "add_", "__add__", "__radd__", "__iadd__"], "input, other, *, alpha=1", _binary("add")),
    (["sub", "sub_", "__sub__", "__isub__"], "input, other, *, alpha=1", _binary("sub")),
    (["mul", "mul_", "__mul__", "__rmul__", "__imul__"], "input, other", _binary("mul")),
    (["div", "div_", "__truediv__", "__itruediv__"], "input, other, *, rounding_mode=None", _binary("div")),
    *[([name], "self, *args, **kwargs", _pointwise(name.rstrip("_"))) for name in _POINTWISE_METHODS],
])

RESHAPES: tuple[Any, ...] = (torch.flatten, torch.reshape, torch.squeeze, "flatten", "view", "reshape", "squeeze",
                             nn.Flatten)


def is_reshape(kind: str, target: Any, module: nn.Module | None, args: tuple[Any, ...] = ()) -> bool:
    """Whether a traced call flattens (flatten/view/reshape/squeeze) or only reads the size (``x.size(0)``,
    ``x.shape``): the users that let a global pool be ``gap``."""
    if kind == "call_module":
        return isinstance(module, nn.Flatten)
    if kind == "call_method":
        return target in ("flatten", "view", "reshape", "squeeze", "size", "dim", "numel")
    if kind == "call_function" and target is getattr:
        return len(args) > 1 and args[1] in ("shape", "ndim", "dtype", "device")
    return kind == "call_function" and target in (torch.flatten, torch.reshape, torch.squeeze, len)


def rfcalc_leaf_types() -> tuple[type, ...]:
    """The builder's own modules that the tracer keeps whole (rfcalc's ``gap`` and ``ultimus``)."""
    try:
        from rfcalc.builder import GlobalPool as SpecGlobalPool, Ultimus
    except Exception:  # pragma: no cover - the builder failed to import; trace through instead
        return ()
    return (SpecGlobalPool, Ultimus)


def leaf_action(module: nn.Module) -> Action | None:
    """Actions for rfcalc's own leaf modules."""
    for cls in rfcalc_leaf_types():
        if isinstance(module, cls):
            if cls.__name__ == "Ultimus":
                return AsLayer(UltimusLayer(op="ultimus", dim=module.q.out_features))  # type: ignore[union-attr]
            return GlobalPool(str(getattr(module, "mode", "avg")))
    return None


def module_action(module: nn.Module) -> tuple[str, Action | None]:
    """(display name, action) of a leaf module; the action is None when it is not in the table."""
    own = leaf_action(module)
    if own is not None:
        return type(module).__name__, own
    for cls in type(module).__mro__:
        if cls in MODULES:
            return type(module).__name__, MODULES[cls](Call(type(module).__name__, module))
        if cls in POINTWISE_MODULES:
            return type(module).__name__, Pointwise(POINTWISE_MODULES[cls])
    return type(module).__name__, None


def bind(signature: _inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Arguments bound to the stub's names (None when they do not fit the stub)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)
