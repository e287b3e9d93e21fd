"""`build_model(spec)`: the ``torch.nn.Module`` of a spec (contract section 5). Needs the ``torch`` extra.

The module tree is :func:`rfcalc.model.plan.plan_model`'s, so ``print(model)`` reads like the spec:

- a top-level layer is the attribute of its name (``model.c1``, ``model.branches``);
- a conv is an ``nn.Conv2d``; with a norm, an activation or dropout it is an ``nn.Sequential`` named
  after the conv with children ``conv``, ``bn``/``gn``/``ln``, the activation (``relu``, ...), ``dropout``;
- a block use, a repeat and a separable conv are ``nn.Sequential`` (``d1.0``, ``c5.1``, ``s1.dw``, ``s1.pw``);
- ``parallel`` is :class:`Parallel` (paths ``branches.0``, ``branches.1``), ``residual`` is :class:`Residual`
  (``res.body``, ``res.shortcut``); the merge's activation is their child named after it (``branches.relu``);
- each op's module is what its registered leaf names (:mod:`rfcalc.ops`): a ``torch.nn`` class, or one of the
  helpers in :mod:`rfcalc.model.modules` (``gap`` is ``GlobalPool``, ``ultimus`` is ``Ultimus``).

Every row name is a module name; :func:`rfcalc.model.plan.row_modules` maps each row to the module
whose output is exactly that row's (``c1`` -> ``c1.conv`` when the conv carries attached ops).

"""
from __future__ import annotations

from collections import OrderedDict

from rfcalc.errors import RfcalcError
from rfcalc.extras import missing

try:
    from torch import nn
except ImportError:  # pragma: no cover - exercised in a subprocess test
    raise missing("torch", "torch", "build_model") from None

from rfcalc.analysis.load import Spec
from rfcalc.model import modules
from rfcalc.model.modules import Parallel, Residual
from rfcalc.model.plan import Item, Leaf, Seq, plan_model


class SpecModel(nn.Sequential):
    """The model of a spec: its top-level layers in order, each under its name from the spec."""

    def __init__(self, layers: OrderedDict[str, nn.Module], spec_name: str = "", input_shape: tuple[int, ...] = ()
                 ) -> None:
        super().__init__(layers)
        self.spec_name = spec_name
        self.input_shape = tuple(input_shape)

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={'x'.join(map(str, self.input_shape))}"


def constructor(ctor: str) -> type[nn.Module]:
    """The class a leaf names: ``"nn.Conv2d"`` -> ``torch.nn.Conv2d``; ``"GlobalPool"`` -> rfcalc's helper."""
    if ctor.startswith("nn."):
        found = getattr(nn, ctor.removeprefix("nn."), None)
    else:
        found = getattr(modules, ctor, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise LookupError(f"no module class {ctor!r} in torch.nn or rfcalc.model.modules")
    return found


def build_model(spec: Spec) -> SpecModel:
    """The ``nn.Module`` of a loaded spec; its parameters, shapes and receptive fields are the report's."""
    root = plan_model(spec.nodes, spec.report)
    layers = _named(root, SpecModel(OrderedDict()))
    return SpecModel(layers, spec.name, spec.input_shape)


def instantiate(item: Item) -> nn.Module:
    """One module of the plan, with its children."""
    if isinstance(item, Leaf):
        return constructor(item.ctor)(*item.args, **dict(item.kwargs))
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
