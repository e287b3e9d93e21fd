"""The lookup table of ``rfcalc inspect``: which traced PyTorch call is which op. Needs torch.

Built once, at import, from two sources:

- every registered op's :class:`~rfcalc.ops.base.InspectRules` (:mod:`rfcalc.ops`): the modules, functions and
  methods that mean that op, with their converters;
- the structural entries below, which are no spec op: ``torch.cat`` (a concat merge), ``+ - * /`` (merges, or a
  pass-through with a constant), ``expand`` / ``broadcast_to``, and element-wise calls that have no spec op
  (sigmoid, tanh, instance norm, ...), which pass the RF through under their own name.

Modules match by class (and subclass), functions by identity, methods by name; each function and method entry
carries the signature its arguments are bound to. A call missing from the table gets ``None`` and the generic
rule of :mod:`rfcalc.inspection.follow`.
"""
from __future__ import annotations

import importlib
import inspect as _inspect
from typing import Any

import torch
from torch import nn

from rfcalc.ops.actions import Action, Binary, Broadcast, Call, Concat, Converter, Pointwise
from rfcalc.ops.flatten import RESHAPE_FUNCTIONS, RESHAPE_METHODS
from rfcalc.ops.registry import REGISTRY

Entry = tuple[_inspect.Signature, Converter]


def resolve(path: str) -> Any:
    """``"torch.nn.functional.conv2d"`` -> that object; LookupError when this torch has no such name."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        return obj
    raise LookupError(f"{path} does not exist in torch {torch.__version__}")


def _signature(text: str) -> _inspect.Signature:
    namespace: dict[str, Any] = {}
    exec(f"def stub({text}): pass", namespace)  # noqa: S102 - our own constant strings
    return _inspect.signature(namespace["stub"])


# -- the structural entries ------------------------------------------------------------------------------------
def _pointwise(op: str) -> Converter:
    return lambda call: Pointwise(op)


def _binary(op: str) -> Converter:
    return lambda call: Binary(op)


def _cat(call: Call) -> Action:
    return Concat(int(call.get("dim", 0)))


def _broadcast(call: Call) -> Action:
    return Broadcast()


# Element-wise modules and functions without a spec op: they pass the RF through under their own name.
POINTWISE_MODULES: dict[str, str] = {
    "Identity": "identity", "Sigmoid": "sigmoid", "Tanh": "tanh", "Hardsigmoid": "hardsigmoid", "ELU": "elu",
    "SELU": "selu", "CELU": "celu", "Mish": "mish", "Softplus": "softplus", "PReLU": "prelu", "Hardtanh": "hardtanh",
    "Softsign": "softsign", "Tanhshrink": "tanhshrink", "Hardshrink": "hardshrink", "Softshrink": "softshrink",
    "Threshold": "threshold", "RReLU": "rrelu", "LogSigmoid": "logsigmoid", "Softmax2d": "softmax2d",
    # normalisations the spec has no op for; like the spec's gn/ln they count as leaving the RF unchanged
    "InstanceNorm2d": "instance_norm", "LayerNorm": "layer_norm", "LocalResponseNorm": "local_response_norm",
}
_F = "torch.nn.functional"
_POINTWISE_FUNCTIONS: dict[str, str] = {
    "torch.sigmoid": "sigmoid", f"{_F}.sigmoid": "sigmoid", "torch.tanh": "tanh", f"{_F}.tanh": "tanh",
    f"{_F}.hardsigmoid": "hardsigmoid", f"{_F}.elu": "elu", f"{_F}.selu": "selu", f"{_F}.celu": "celu",
    f"{_F}.mish": "mish", f"{_F}.softplus": "softplus", f"{_F}.hardtanh": "hardtanh", f"{_F}.prelu": "prelu",
    "torch.exp": "exp", "torch.abs": "abs", "torch.clamp": "clamp", "torch.clip": "clamp", "operator.neg": "neg",
    "torch.neg": "neg", f"{_F}.instance_norm": "instance_norm", f"{_F}.layer_norm": "layer_norm",
    f"{_F}.local_response_norm": "local_response_norm",
}
_POINTWISE_METHODS = ("sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "abs", "neg", "clamp", "clamp_", "clamp_min",
                      "clamp_max", "clip", "contiguous", "clone", "float", "double", "half", "detach", "type_as")
_BINARY_SIG = "input, other, *, alpha=1, out=None, rounding_mode=None"
_STRUCTURAL_FUNCTIONS: list[tuple[tuple[str, ...], str, Converter]] = [
    (("torch.cat", "torch.concat", "torch.concatenate"), "tensors, dim=0, *, out=None", _cat),
    (("torch.broadcast_to",), "input, size", _broadcast),
    (("operator.add", "operator.iadd", "torch.add"), _BINARY_SIG, _binary("add")),
    (("operator.sub", "operator.isub", "torch.sub", "torch.subtract"), _BINARY_SIG, _binary("sub")),
    (("operator.mul", "operator.imul", "torch.mul", "torch.multiply"), _BINARY_SIG, _binary("mul")),
    (("operator.truediv", "operator.itruediv", "torch.div", "torch.divide"), _BINARY_SIG, _binary("div")),
    *[((path,), "*args, **kwargs", _pointwise(op)) for path, op in _POINTWISE_FUNCTIONS.items()],
]
_STRUCTURAL_METHODS: list[tuple[tuple[str, ...], str, Converter]] = [
    (("expand", "expand_as", "broadcast_to"), "input, *args, **kwargs", _broadcast),
    (("add", "add_", "__add__", "__radd__", "__iadd__"), "input, other, *, alpha=1", _binary("add")),
    (("sub", "sub_", "__sub__", "__isub__"), "input, other, *, alpha=1", _binary("sub")),
    (("mul", "mul_", "__mul__", "__rmul__", "__imul__"), "input, other", _binary("mul")),
    (("div", "div_", "__truediv__", "__itruediv__"), "input, other, *, rounding_mode=None", _binary("div")),
    *[((name,), "self, *args, **kwargs", _pointwise(name.rstrip("_"))) for name in _POINTWISE_METHODS],
]


# -- the table -------------------------------------------------------------------------------------------------
class _Table:
    def __init__(self) -> None:
        self.modules: dict[type, Converter] = {}
        self.functions: dict[Any, Entry] = {}
        self.methods: dict[str, Entry] = {}
        self.own: list[type] = []
        self.unresolved: list[str] = []

    def _resolved(self, path: str) -> Any:
        try:
            return resolve(path)
        except LookupError:
            self.unresolved.append(path)
            return None

    def module(self, path: str, convert: Converter, owner: str) -> None:
        cls = self._resolved(path)
        if cls is None:
            return
        if cls in self.modules:
            raise ImportError(f"rfcalc inspect: {path} is claimed twice (again by {owner})")
        self.modules[cls] = convert
        if path.startswith("rfcalc."):
            self.own.append(cls)

    def function(self, paths: tuple[str, ...], signature: str, convert: Converter, owner: str) -> None:
        bound = _signature(signature)
        for path in paths:
            fn = self._resolved(path)
            if fn is None:
                continue
            if fn in self.functions and self.functions[fn][1] is not convert:  # aliases (F.conv2d is torch.conv2d)
                raise ImportError(f"rfcalc inspect: {path} is claimed twice (again by {owner})")
            self.functions[fn] = (bound, convert)

    def method(self, names: tuple[str, ...], signature: str, convert: Converter, owner: str) -> None:
        bound = _signature(signature)
        for name in names:
            if name in self.methods:
                raise ImportError(f"rfcalc inspect: tensor method .{name}() is claimed twice (again by {owner})")
            self.methods[name] = (bound, convert)


def _build() -> _Table:
    table = _Table()
    for name, op in REGISTRY.items():
        for path, convert in op.inspect.modules.items():
            table.module(path, convert, f"op {name}")
        for rule in op.inspect.functions:
            table.function(rule.functions, rule.signature, rule.convert, f"op {name}")
        for method in op.inspect.methods:
            table.method(method.methods, method.signature, method.convert, f"op {name}")
    for paths, signature, convert in _STRUCTURAL_FUNCTIONS:
        table.function(paths, signature, convert, "the structural entries")
    for names, signature, convert in _STRUCTURAL_METHODS:
        table.method(names, signature, convert, "the structural entries")
    for class_name, op_name in POINTWISE_MODULES.items():
        table.module(f"torch.nn.{class_name}", _pointwise(op_name), "the point-wise modules")
    return table


_TABLE = _build()
MODULES: dict[type, Converter] = _TABLE.modules
FUNCTIONS: dict[Any, Entry] = _TABLE.functions
METHODS: dict[str, Entry] = _TABLE.methods
# Dotted names this torch does not have (tests/test_ops.py keeps it empty for the pinned torch).
UNRESOLVED: tuple[str, ...] = tuple(_TABLE.unresolved)


def rfcalc_leaf_types() -> tuple[type, ...]:
    """rfcalc's own helper modules that the tracer keeps whole (``GlobalPool``, ``Ultimus``)."""
    return tuple(_TABLE.own)


def module_action(module: nn.Module) -> tuple[str, Action | None]:
    """(display name, action) of a leaf module; the action is None when it is not in the table."""
    for cls in type(module).__mro__:
        if cls in MODULES:
            return type(module).__name__, MODULES[cls](Call(type(module).__name__, module))
    return type(module).__name__, None


_RESHAPES: tuple[Any, ...] = tuple(resolve(path) for path in RESHAPE_FUNCTIONS)


def is_reshape(kind: str, target: Any, module: nn.Module | None, args: tuple[Any, ...] = ()) -> bool:
    """Whether a traced call flattens (flatten/view/reshape/squeeze) or only reads the size (``x.size(0)``,
    ``x.shape``): the users that let a global pool be ``gap``."""
    if kind == "call_module":
        return isinstance(module, nn.Flatten)
    if kind == "call_method":
        return target in (*RESHAPE_METHODS, "size", "dim", "numel")
    if kind == "call_function" and target is getattr:
        return len(args) > 1 and args[1] in ("shape", "ndim", "dtype", "device")
    return kind == "call_function" and (target in _RESHAPES or target is len)


def bind(signature: _inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Arguments bound to the stub's names (None when they do not fit the stub)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


__all__ = ["FUNCTIONS", "METHODS", "MODULES", "POINTWISE_MODULES", "UNRESOLVED", "bind", "is_reshape",
           "module_action", "resolve", "rfcalc_leaf_types"]
