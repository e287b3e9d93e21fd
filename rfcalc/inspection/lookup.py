"""The lookup table of ``rfcalc inspect``: which traced PyTorch call is which spec op. Needs torch.

Every ``torch.nn`` module, ``torch`` / ``torch.nn.functional`` function and tensor method that rfcalc
understands has an entry here: modules by class (:data:`MODULES`, :data:`POINTWISE_MODULES`), functions by
identity and methods by name, each with the signature its arguments are bound to (:data:`FUNCTIONS`,
:data:`METHODS`). An entry's converter (:mod:`rfcalc.inspection.convert`) answers with an action
(:mod:`rfcalc.inspection.actions`). A call missing from the table gets :data:`None` and the generic rule of
:mod:`rfcalc.inspection.follow`.
"""
from __future__ import annotations

import inspect as _inspect
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rfcalc.inspection.actions import Action, AsLayer, Call, GlobalPool, Handler, Pointwise
from rfcalc.inspection.convert import (as_act, as_adaptive, as_binary, as_mean, as_pointwise, convert_avgpool_function,
                                    convert_avgpool_module, convert_batchnorm_function, convert_batchnorm_module,
                                    convert_broadcast, convert_cat, convert_conv_function, convert_conv_module,
                                    convert_dropout, convert_gelu, convert_groupnorm_function,
                                    convert_groupnorm_module, convert_leaky_relu, convert_linear_function,
                                    convert_linear_module, convert_maxpool_function, convert_maxpool_module,
                                    convert_reshape)
from rfcalc.spec.models import UltimusLayer

MODULES: dict[type, Handler] = {
    nn.Conv2d: convert_conv_module,
    nn.MaxPool2d: convert_maxpool_module, nn.AvgPool2d: convert_avgpool_module,
    nn.AdaptiveAvgPool2d: as_adaptive("avg"), nn.AdaptiveMaxPool2d: as_adaptive("max"),
    nn.BatchNorm2d: convert_batchnorm_module, nn.BatchNorm1d: convert_batchnorm_module,
    nn.SyncBatchNorm: convert_batchnorm_module,
    nn.GroupNorm: convert_groupnorm_module,
    nn.ReLU: as_act("relu"), nn.ReLU6: as_act("relu6"), nn.LeakyReLU: convert_leaky_relu, nn.GELU: convert_gelu,
    nn.SiLU: as_act("silu"),
    nn.Dropout: convert_dropout, nn.Dropout2d: convert_dropout, nn.Dropout1d: convert_dropout,
    nn.AlphaDropout: convert_dropout, nn.FeatureAlphaDropout: convert_dropout,
    nn.Linear: convert_linear_module,
    nn.Flatten: convert_reshape,
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
    ([F.conv2d, torch.conv2d], _CONV_SIG, convert_conv_function),
    ([F.max_pool2d, torch.max_pool2d], _MAXPOOL_SIG, convert_maxpool_function),
    ([F.avg_pool2d], _AVGPOOL_SIG, convert_avgpool_function),
    ([F.adaptive_avg_pool2d], _ADAPTIVE_SIG, as_adaptive("avg")),
    ([F.adaptive_max_pool2d], _ADAPTIVE_SIG, as_adaptive("max")),
    ([torch.mean], _MEAN_SIG, as_mean("avg")),
    ([torch.amax], _MEAN_SIG, as_mean("max")),
    ([F.batch_norm], _BN_SIG, convert_batchnorm_function),
    ([F.group_norm], _GN_SIG, convert_groupnorm_function),
    ([F.relu, torch.relu, F.relu_, torch.relu_], _ACT_SIG, as_act("relu")),
    ([F.relu6], _ACT_SIG, as_act("relu6")),
    ([F.leaky_relu], _LEAKY_SIG, convert_leaky_relu),
    ([F.gelu], _GELU_SIG, convert_gelu),
    ([F.silu], _ACT_SIG, as_act("silu")),
    ([F.dropout, F.dropout2d, F.dropout1d, F.alpha_dropout, F.feature_alpha_dropout], _DROPOUT_SIG, convert_dropout),
    ([F.linear], _LINEAR_SIG, convert_linear_function),
    ([torch.flatten, torch.reshape, torch.squeeze], _ANY_SIG, convert_reshape),
    ([torch.cat, torch.concat, torch.concatenate], _CAT_SIG, convert_cat),
    ([torch.broadcast_to], "input, size", convert_broadcast),
    ([operator.add, operator.iadd, torch.add], _BINARY_SIG, as_binary("add")),
    ([operator.sub, operator.isub, torch.sub, torch.subtract], _BINARY_SIG, as_binary("sub")),
    ([operator.mul, operator.imul, torch.mul, torch.multiply], _BINARY_SIG, as_binary("mul")),
    ([operator.truediv, operator.itruediv, torch.div, torch.divide], _BINARY_SIG, as_binary("div")),
    *[([fn], _ANY_SIG, as_pointwise(op)) for fn, op in _POINTWISE_FUNCTIONS.items()],
])

_POINTWISE_METHODS = ("sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "abs", "neg", "clamp", "clamp_", "clamp_min",
                      "clamp_max", "clip", "contiguous", "clone", "float", "double", "half", "detach", "type_as")

METHODS: dict[str, tuple[_inspect.Signature, Handler]] = _entries([
    (["relu", "relu_"], "self, *args, **kwargs", as_act("relu")),
    (["flatten", "view", "reshape", "squeeze"], "self, *args, **kwargs", convert_reshape),
    (["expand", "expand_as", "broadcast_to"], "input, *args, **kwargs", convert_broadcast),
    (["mean"], "input, dim=None, keepdim=False, *args, **kwargs", as_mean("avg")),
    (["amax"], "input, dim=None, keepdim=False, *args, **kwargs", as_mean("max")),
    (["add", "add_", "__add__", "__radd__", "__iadd__"], "input, other, *, alpha=1", as_binary("add")),
    (["sub", "sub_", "__sub__", "__isub__"], "input, other, *, alpha=1", as_binary("sub")),
    (["mul", "mul_", "__mul__", "__rmul__", "__imul__"], "input, other", as_binary("mul")),
    (["div", "div_", "__truediv__", "__itruediv__"], "input, other, *, rounding_mode=None", as_binary("div")),
    *[([name], "self, *args, **kwargs", as_pointwise(name.rstrip("_"))) for name in _POINTWISE_METHODS],
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
        from rfcalc.model.builder import GlobalPool as SpecGlobalPool, Ultimus
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
