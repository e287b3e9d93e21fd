"""`build_model(spec)`: the ``torch.nn.Module`` of a spec (contract section 5). Needs the ``torch`` extra.

The module tree is :func:`rfcalc.module_plan.plan_model`'s, so ``print(model)`` reads like the spec:

- a top-level layer is the attribute of its name (``model.c1``, ``model.branches``);
- a conv is an ``nn.Conv2d``; with a norm, an activation or dropout it is an ``nn.Sequential`` named
  after the conv with children ``conv``, ``bn``/``gn``/``ln``, the activation (``relu``, ...), ``dropout``;
- a block use, a repeat and a separable conv are ``nn.Sequential`` (``d1.0``, ``c5.1``, ``s1.dw``, ``s1.pw``);
- ``parallel`` is :class:`Parallel` (paths ``branches.0``, ``branches.1``), ``residual`` is :class:`Residual`
  (``res.body``, ``res.shortcut``); the merge's activation is their child named after it (``branches.relu``);
- ``gap`` is :class:`GlobalPool`, ``ultimus`` is :class:`Ultimus`; everything else is the ``torch.nn`` class.

Every row name is a module name; :func:`rfcalc.module_plan.row_modules` maps each row to the module
whose output is exactly that row's (``c1`` -> ``c1.conv`` when the conv carries attached ops).

The classes below are copied verbatim into exported files (:mod:`rfcalc.export`), so they use only
``torch``, ``nn`` and :func:`activation`.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rfcalc.errors import RfcalcError

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised in a subprocess test
    raise RfcalcError("build_model needs PyTorch: pip install 'rfcalc[torch]'") from None

from rfcalc.module_plan import Item, Leaf, Seq, plan_model
from rfcalc.spec import Spec


def activation(name: str) -> nn.Module:
    """The activation module of a spec's act name."""
    table = {"relu": nn.ReLU, "relu6": nn.ReLU6, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU}
    return table[name]()


class Parallel(nn.Module):
    """Paths from the same input (children ``0``, ``1``, ...), joined by concat (channels) or add."""

    def __init__(self, paths: list[nn.Module], merge: str = "concat", act: str = "none") -> None:
        super().__init__()
        self.merge = merge
        self.n_paths = len(paths)
        self.act = None if act == "none" else act
        for j, path in enumerate(paths):
            self.add_module(str(j), path)
        if self.act is not None:
            self.add_module(self.act, activation(self.act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [getattr(self, str(j))(x) for j in range(self.n_paths)]
        if self.merge == "concat":
            y = torch.cat(outs, dim=1)
        else:
            y = outs[0]
            for out in outs[1:]:
                y = y + out
        return y if self.act is None else getattr(self, self.act)(y)

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; no shortcut module means the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, act: str = "none") -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = None if act == "none" else act
        if self.act is not None:
            self.add_module(self.act, activation(self.act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.act is None else getattr(self, self.act)(y)


class GlobalPool(nn.Module):
    """Global average or max pool to 1x1, then flatten: (N, C, H, W) -> (N, C)."""

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if self.mode == "avg" else x.amax(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class Ultimus(nn.Module):
    """Seed 003's attention block on a vector of ``features``, one sample at a time.

    q, k, v = Q(x), K(x), V(x) (1 x dim each); A = softmax(qᵀk / √dim) over the last axis (dim x dim);
    z = v·A; out = O(z) (dim -> features). Samples in a batch never mix.
    """

    def __init__(self, features: int, dim: int = 8) -> None:
        super().__init__()
        self.q = nn.Linear(features, dim, bias=False)
        self.k = nn.Linear(features, dim, bias=False)
        self.v = nn.Linear(features, dim, bias=False)
        self.out = nn.Linear(dim, features)
        self.scale = dim ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        attention = torch.softmax(q.unsqueeze(2) * k.unsqueeze(1) * self.scale, dim=-1)
        z = torch.einsum("ni,nij->nj", v, attention)
        return self.out(z)


class SpecModel(nn.Sequential):
    """The model of a spec: its top-level layers in order, each under its name from the spec."""

    def __init__(self, layers: OrderedDict[str, nn.Module], spec_name: str = "", input_shape: tuple[int, ...] = ()
                 ) -> None:
        super().__init__(layers)
        self.spec_name = spec_name
        self.input_shape = tuple(input_shape)

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={'x'.join(map(str, self.input_shape))}"


CONSTRUCTORS: dict[str, Callable[..., nn.Module]] = {
    "nn.Conv2d": nn.Conv2d, "nn.MaxPool2d": nn.MaxPool2d, "nn.AvgPool2d": nn.AvgPool2d,
    "nn.BatchNorm2d": nn.BatchNorm2d, "nn.BatchNorm1d": nn.BatchNorm1d, "nn.GroupNorm": nn.GroupNorm,
    "nn.Dropout2d": nn.Dropout2d, "nn.Dropout": nn.Dropout, "nn.Flatten": nn.Flatten, "nn.Linear": nn.Linear,
    "nn.ReLU": nn.ReLU, "nn.ReLU6": nn.ReLU6, "nn.LeakyReLU": nn.LeakyReLU, "nn.GELU": nn.GELU, "nn.SiLU": nn.SiLU,
    "GlobalPool": GlobalPool, "Ultimus": Ultimus,
}


def build_model(spec: Spec) -> SpecModel:
    """The ``nn.Module`` of a loaded spec; its parameters, shapes and receptive fields are the report's."""
    root = plan_model(spec.nodes, spec.report)
    layers = _named(root, SpecModel(OrderedDict()))
    return SpecModel(layers, spec.name, spec.input_shape)


def instantiate(item: Item) -> nn.Module:
    """One module of the plan, with its children."""
    if isinstance(item, Leaf):
        return CONSTRUCTORS[item.ctor](*item.args, **dict(item.kwargs))
    if isinstance(item, Seq):
        return nn.Sequential(_named(item, nn.Sequential()))
    paths = [instantiate(branch) for branch in item.branches]
    if item.kind == "parallel":
        return Parallel(paths, item.merge, item.act)
    shortcut = None if item.shortcut is None else instantiate(item.shortcut)
    return Residual(paths[0], shortcut, item.act)


def _named(seq: Seq, probe: nn.Module) -> OrderedDict[str, nn.Module]:
    """The children of ``seq``, built; a name that the container already uses is a one-line error."""
    for name, _ in seq.children:
        if hasattr(probe, name):
            where = f"{seq.name}.{name}" if seq.name else name
            raise RfcalcError(f"layer name '{where}' clashes with the attribute '{name}' of "
                              f"{type(probe).__name__}; give the layer another name")
    return OrderedDict((name, instantiate(child)) for name, child in seq.children)


def count_parameters(model: nn.Module) -> int:
    """What PyTorch counts: ``sum(p.numel() for p in model.parameters())``."""
    return sum(p.numel() for p in model.parameters())


def load_weights(model: nn.Module, checkpoint: Any) -> None:
    """Load a trainer checkpoint (a dict with ``"model"``) or a bare state_dict; one-line error on mismatch."""
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict):
        raise RfcalcError(f"the checkpoint holds a {type(state).__name__}, not a state_dict "
                          f"(expected a dict with key 'model' or a bare state_dict)")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes differ
        sizes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise RfcalcError(f"the checkpoint does not fit this spec: {_few(sizes) if sizes else exc}") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {_few(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"unexpected {_few(result.unexpected_keys)}")
    if problems:
        raise RfcalcError(f"the checkpoint does not fit this spec: {'; '.join(problems)}")


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:3])
    return f"{shown} (+{len(keys) - 3} more)" if len(keys) > 3 else shown
