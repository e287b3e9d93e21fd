"""The lookup table of ``rfcalc inspect``: which traced PyTorch call is which op. Needs torch.

Built once, at import, from two sources:

- every registered op's :class:`~rfcalc.ops.base.InspectRules` (:mod:`rfcalc.ops`): the modules, functions and
  methods that mean that op, with their converters;
- the structural entries below, which are no spec op: ``torch.cat`` (a concat merge), ``+ - * /`` (merges, or a
  pass-through with a constant), ``expand`` / ``broadcast_to``, element-wise calls that have no spec op
  (sigmoid, tanh, instance norm, layer norm, ...), which pass the RF through under their own name, and the
  calls read with the tensor's layout (:mod:`rfcalc.inspection.layout`): permutes and transposes, reductions,
  softmax, indexing, chunk / split, matmul and ``nn.MultiheadAttention``.

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

from rfcalc.ops.actions import (
    Action,
    Along,
    AsLayer,
    Attention,
    Binary,
    Broadcast,
    Call,
    Concat,
    Converter,
    Copy,
    Index,
    MatMul,
    Permute,
    Pointwise,
    Reduce,
    Reshape,
    Split,
    Unsupported,
)
from rfcalc.ops.base import stage_number
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
    exec(f"def stub({text}): pass", namespace)  # our own constant strings
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


def _copy(call: Call) -> Action:
    return Copy()


def _reshape(call: Call) -> Action:
    return Reshape()


def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and isinstance(value[0], (list, tuple)):
            value = value[0]
        return tuple(int(v) for v in value)
    return (int(value),)


def _permute(call: Call) -> Action:
    return Permute(order=_ints(call.get("dims")))


def _transpose(call: Call) -> Action:
    return Permute(swap=(int(call.get("dim0")), int(call.get("dim1"))))


def _movedim(call: Call) -> Action:
    source, destination = _ints(call.get("source")), _ints(call.get("destination"))
    if len(source) != 1 or len(destination) != 1:
        return Unsupported("moves several dimensions at once; rfcalc follows permute for that")
    return Permute(order=(-1, source[0], destination[0]))  # decoded by rfcalc.inspection.mixing


def _reduce(op: str) -> Converter:
    def convert(call: Call) -> Action:
        dims = call.get("dim")
        if dims is None:
            return Unsupported(f"{op} over every dimension (the batch too)")
        return Reduce(op, _ints(dims), bool(call.get("keepdim", False)))
    return convert


def _along(op: str) -> Converter:
    def convert(call: Call) -> Action:
        dim = call.module.dim if call.module is not None else call.get("dim")
        if dim is None:
            return Unsupported(f"{op} without a dim (PyTorch's implicit choice); give dim=")
        return Along(op, int(dim))
    return convert


def _index(call: Call) -> Action:
    return Index(call.get("index"))


def _narrow(call: Call) -> Action:
    dim, start, length = int(call.get("dim")), int(call.get("start")), int(call.get("length"))
    piece = slice(start, start + length) if start >= 0 else slice(start, start + length or None)
    if dim < 0:
        return Index((Ellipsis, piece) + (slice(None),) * (-dim - 1))
    return Index((slice(None),) * dim + (piece,))


def _chunk(call: Call) -> Action:
    return Split(int(call.get("dim", 0)), chunks=int(call.get("chunks")))


def _split(call: Call) -> Action:
    sizes = call.get("split_size_or_sections")
    dim = int(call.get("dim", 0))
    if isinstance(sizes, int):
        return Split(dim, chunks=-sizes)  # a piece size: decoded with the tensor's size
    return Split(dim, sizes=_ints(sizes))


def _unbind(call: Call) -> Action:
    return Split(int(call.get("dim", 0)))


def _matmul(call: Call) -> Action:
    return MatMul()


def _pad(call: Call) -> Action:
    pads = call.get("pad")
    if isinstance(pads, (list, tuple)) and not any(pads):
        return Copy()  # Swin's pad to a multiple of the window when the map is one already
    return Unsupported(f"pads the feature map by {list(pads) if isinstance(pads, (list, tuple)) else pads} "
                       f"({call.get('mode', 'constant')}); rfcalc follows padding as a conv's or pool's padding= only")


def _sdpa(call: Call) -> Action:
    return Attention()  # F.scaled_dot_product_attention: rfcalc.inspection.mixing.follow_sdpa


def _attention(call: Call) -> Action:
    if not getattr(call.module, "batch_first", False):
        return Unsupported("nn.MultiheadAttention with batch_first=False (sequence first); rfcalc follows "
                           "batch_first=True")
    return Attention()


# Element-wise modules and functions without a spec op: they pass the RF through under their own name.
POINTWISE_MODULES: dict[str, str] = {
    "Identity": "identity", "Sigmoid": "sigmoid", "Tanh": "tanh", "Hardsigmoid": "hardsigmoid", "ELU": "elu",
    "SELU": "selu", "CELU": "celu", "Mish": "mish", "Softplus": "softplus", "PReLU": "prelu", "Hardtanh": "hardtanh",
    "Softsign": "softsign", "Tanhshrink": "tanhshrink", "Hardshrink": "hardshrink", "Softshrink": "softshrink",
    "Threshold": "threshold", "RReLU": "rrelu", "LogSigmoid": "logsigmoid", "Softmax2d": "softmax2d",
    # normalisations the spec has no op for; like the spec's gn/ln they count as leaving the RF unchanged
    # (their statistics are not counted: rfcalc.table.reach)
    "InstanceNorm2d": "instance_norm", "LayerNorm": "layer_norm", "LocalResponseNorm": "local_response_norm",
}
_F = "torch.nn.functional"
_POINTWISE_FUNCTIONS: dict[str, str] = {
    "torch.sigmoid": "sigmoid", f"{_F}.sigmoid": "sigmoid", "torch.tanh": "tanh", f"{_F}.tanh": "tanh",
    f"{_F}.hardsigmoid": "hardsigmoid", f"{_F}.elu": "elu", f"{_F}.selu": "selu", f"{_F}.celu": "celu",
    f"{_F}.mish": "mish", f"{_F}.softplus": "softplus", f"{_F}.hardtanh": "hardtanh", f"{_F}.prelu": "prelu",
    "torch.exp": "exp", "torch.abs": "abs", "torch.clamp": "clamp", "torch.clip": "clamp", "operator.neg": "neg",
    "torch.neg": "neg", f"{_F}.instance_norm": "instance_norm", f"{_F}.layer_norm": "layer_norm",
    f"{_F}.local_response_norm": "local_response_norm", "torch.sqrt": "sqrt", "torch.rsqrt": "rsqrt",
    "torch.pow": "pow", "operator.pow": "pow", "torch.square": "square", "torch.log": "log",
    "torch.erf": "erf", "torch.reciprocal": "reciprocal", "torch.addcmul": "addcmul",  # ResMLP's affine
}
_POINTWISE_METHODS = ("sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "abs", "neg", "clamp", "clamp_", "clamp_min",
                      "clamp_max", "clip", "float", "double", "half", "type_as", "pow", "sqrt", "rsqrt", "square",
                      "log", "erf", "reciprocal")
_REDUCTIONS = ("sum", "var", "std", "amin", "prod", "logsumexp", "norm")
_REDUCE_SIG = "input, dim=None, *args, keepdim=False, **kwargs"
_BINARY_SIG = "input, other, *, alpha=1, out=None, rounding_mode=None"
_STRUCTURAL_FUNCTIONS: list[tuple[tuple[str, ...], str, Converter]] = [
    (("torch.cat", "torch.concat", "torch.concatenate"), "tensors, dim=0, *, out=None", _cat),
    (("torch.broadcast_to",), "input, size", _broadcast),
    (("operator.add", "operator.iadd", "torch.add"), _BINARY_SIG, _binary("add")),
    (("operator.sub", "operator.isub", "torch.sub", "torch.subtract"), _BINARY_SIG, _binary("sub")),
    (("operator.mul", "operator.imul", "torch.mul", "torch.multiply"), _BINARY_SIG, _binary("mul")),
    (("operator.truediv", "operator.itruediv", "torch.div", "torch.divide"), _BINARY_SIG, _binary("div")),
    (("torch.permute",), "input, *dims", _permute),
    (("torch.transpose", "torch.swapaxes", "torch.swapdims"), "input, dim0, dim1", _transpose),
    (("torch.movedim", "torch.moveaxis"), "input, source, destination", _movedim),
    (("torch.unsqueeze", "torch.unflatten"), "*args, **kwargs", _reshape),
    (("torch.clone", "torch.detach"), "input, *args, **kwargs", _copy),
    *[((f"torch.{op}",), _REDUCE_SIG, _reduce(op)) for op in _REDUCTIONS],
    ((f"{_F}.softmax", "torch.softmax"), "input, dim=None, *args, **kwargs", _along("softmax")),
    ((f"{_F}.log_softmax", "torch.log_softmax"), "input, dim=None, *args, **kwargs", _along("log_softmax")),
    (("operator.getitem",), "input, index", _index),
    (("torch.chunk",), "input, chunks, dim=0", _chunk),
    (("torch.narrow",), "input, dim, start, length", _narrow),
    (("torch.split",), "tensor, split_size_or_sections, dim=0", _split),
    (("torch.unbind",), "input, dim=0", _unbind),
    (("torch.matmul", "torch.bmm", "operator.matmul"), "input, other, *, out=None", _matmul),
    ((f"{_F}.pad",), "input, pad, mode='constant', value=None", _pad),
    ((f"{_F}.normalize",), "input, p=2.0, dim=1, eps=1e-12, out=None", _along("normalize")),
    ((f"{_F}.scaled_dot_product_attention",),
     "query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False", _sdpa),
]
_STRUCTURAL_METHODS: list[tuple[tuple[str, ...], str, Converter]] = [
    (("expand", "expand_as", "broadcast_to"), "input, *args, **kwargs", _broadcast),
    (("add", "add_", "__add__", "__radd__", "__iadd__"), "input, other, *, alpha=1", _binary("add")),
    (("sub", "sub_", "__sub__", "__isub__"), "input, other, *, alpha=1", _binary("sub")),
    (("mul", "mul_", "__mul__", "__rmul__", "__imul__"), "input, other", _binary("mul")),
    (("div", "div_", "__truediv__", "__itruediv__"), "input, other, *, rounding_mode=None", _binary("div")),
    (("permute",), "input, *dims", _permute),
    (("transpose", "swapaxes", "swapdims"), "input, dim0, dim1", _transpose),
    (("movedim", "moveaxis"), "input, source, destination", _movedim),
    (("unsqueeze", "unflatten", "view_as", "reshape_as"), "self, *args, **kwargs", _reshape),
    (("contiguous", "clone", "detach"), "self, *args, **kwargs", _copy),
    *[((op,), _REDUCE_SIG, _reduce(op)) for op in _REDUCTIONS],
    (("softmax",), "input, dim=None, *args, **kwargs", _along("softmax")),
    (("log_softmax",), "input, dim=None, *args, **kwargs", _along("log_softmax")),
    (("chunk",), "input, chunks, dim=0", _chunk),
    (("narrow",), "input, dim, start, length", _narrow),
    (("split",), "tensor, split_size_or_sections, dim=0", _split),
    (("unbind",), "input, dim=0", _unbind),
    (("matmul", "bmm", "__matmul__"), "input, other", _matmul),
]
_STRUCTURAL_MODULES: dict[str, Converter] = {
    "torch.nn.Softmax": _along("softmax"), "torch.nn.LogSoftmax": _along("log_softmax"),
    "torch.nn.MultiheadAttention": _attention,
}


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

    # `yields`: the generic point-wise entries give way to a registered op that claims the same object (an
    # activation added to the op registry, such as hardsigmoid, needs no edit here).
    def module(self, path: str, convert: Converter, owner: str, yields: bool = False) -> None:
        cls = self._resolved(path)
        if cls is None or (yields and cls in self.modules):
            return
        if cls in self.modules:
            raise ImportError(f"rfcalc inspect: {path} is claimed twice (again by {owner})")
        self.modules[cls] = convert
        if path.startswith("rfcalc."):
            self.own.append(cls)

    def function(self, paths: tuple[str, ...], signature: str, convert: Converter, owner: str,
                 yields: bool = False) -> None:
        bound = _signature(signature)
        for path in paths:
            fn = self._resolved(path)
            if fn is None or (yields and fn in self.functions):
                continue
            if fn in self.functions and self.functions[fn][1] is not convert:  # aliases (F.conv2d is torch.conv2d)
                raise ImportError(f"rfcalc inspect: {path} is claimed twice (again by {owner})")
            self.functions[fn] = (bound, convert)

    def method(self, names: tuple[str, ...], signature: str, convert: Converter, owner: str,
               yields: bool = False) -> None:
        bound = _signature(signature)
        for name in names:
            if yields and name in self.methods:
                continue
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
    for path, op_name in _POINTWISE_FUNCTIONS.items():
        table.function((path,), "*args, **kwargs", _pointwise(op_name), "the point-wise functions", yields=True)
    for name in _POINTWISE_METHODS:
        table.method((name,), "self, *args, **kwargs", _pointwise(name.rstrip("_")), "the point-wise methods",
                     yields=True)
    for class_name, op_name in POINTWISE_MODULES.items():
        table.module(f"torch.nn.{class_name}", _pointwise(op_name), "the point-wise modules", yields=True)
    for path, convert in _STRUCTURAL_MODULES.items():
        table.module(path, convert, "the structural entries")
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


def classify(n: Any, gm: Any) -> Action | None:
    """What an fx node's call is, read from its module or its constant arguments only (before it runs); None
    when the table cannot tell without the values."""
    try:
        if n.op == "call_module":
            return module_action(gm.get_submodule(str(n.target)))[1]
        entry = FUNCTIONS.get(n.target) if n.op == "call_function" else METHODS.get(str(n.target)) \
            if n.op == "call_method" else None
        if entry is None:
            return None
        values = bind(entry[0], tuple(n.args), dict(n.kwargs))
        return None if values is None else entry[1](Call(str(n.target), None, values))
    except _NOT_YET:  # a converter that reads a tensor's values (an fx node stands for them before it runs)
        return None


# What a converter raises when it reads a value that is still an fx node (``int(node)``, ``node.shape``, ``x[0]``);
# anything else is a bug in rfcalc and reaches the internal-error path.
_NOT_YET = (TypeError, ValueError, AttributeError, LookupError)


_SIZE_METHODS = ("size", "dim", "numel")


def flattens_after(n: Any, gm: Any, depth: int = 0) -> bool:
    """Whether the 1x1 result of a global pool, read by node ``n``, is only flattened (or its size read),
    possibly through element-wise ops, copies and permutes (``AdaptiveAvgPool2d(1)`` -> ``Dropout`` ->
    ``flatten``): then the pool is ``gap``."""
    if n.op == "call_method" and n.target in _SIZE_METHODS:
        return True
    if n.op == "call_function" and (n.target is getattr or n.target is len):
        return True
    action = classify(n, gm)
    if isinstance(action, Reshape) or (n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)),
                                                                            nn.Flatten)):
        return True
    per_unit = isinstance(action, (Pointwise, Copy, Permute)) or (
        isinstance(action, AsLayer) and REGISTRY[action.layer.op].mixing == "pointwise"
        and REGISTRY[action.layer.op].attach is not None)
    if not per_unit or depth > 8 or not n.users:
        return False
    return all(flattens_after(u, gm, depth + 1) for u in n.users)


def attach_stage(n: Any, gm: Any, modules: dict[str, Any] | None = None) -> int | None:
    """The stage (1 norm, 2 activation, 3 dropout) at which node ``n``'s call folds into a conv before it, or
    None (:data:`rfcalc.ops.base.ATTACH_ORDER`). Known per module class and per function: a norm is a norm
    whatever its settings."""
    if n.op == "call_module":
        key: Any = type(modules[str(n.target)] if modules is not None else gm.get_submodule(str(n.target)))
    else:
        key = (n.op, n.target)
    if key not in _STAGES:
        action = classify(n, gm)
        stage = REGISTRY[action.layer.op].attach if isinstance(action, AsLayer) else None
        _STAGES[key] = None if stage is None else stage_number(stage)
    return _STAGES[key]


_STAGES: dict[Any, int | None] = {}


def bind(signature: _inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Arguments bound to the stub's names (None when they do not fit the stub)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


__all__ = ["FUNCTIONS", "METHODS", "MODULES", "POINTWISE_MODULES", "UNRESOLVED", "attach_stage", "bind", "classify",
           "flattens_after", "module_action", "resolve", "rfcalc_leaf_types"]
