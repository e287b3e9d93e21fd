"""What an op is: an :class:`OpDef` holds everything rfcalc does with one spec op, in one place.

An op family module (``rfcalc/ops/conv.py``, ``pool.py``, ...) defines its pydantic layer model, its calculator
rule, its module-plan leaf, its inspect matchers, its random-spec generator, its feature tags and how its rows
are written back as a spec, and hands one :class:`OpDef` per op name to the registry (:mod:`rfcalc.ops`).
Every field of :class:`OpDef` is required: an op missing a piece fails when the registry is built, at import.

Torch-free. The inspect matchers name torch objects by their dotted paths (``"torch.nn.Conv2d"``); the torch
side (:mod:`rfcalc.inspection.lookup`) resolves them, and the converters read modules and arguments by
attribute, so nothing here imports torch.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from rfcalc.ops.fields import LayerModel
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:  # what inspect's converters return: loaded by inspect only
    from rfcalc.ops.actions import Converter


@dataclass(frozen=True)
class At:
    """Where rows are computed: the op's full dotted name and its path in the spec (for messages)."""

    name: str
    path: str


L = TypeVar("L", bound=LayerModel)

# (layer, where, input) -> the rows of that op; raises rfcalc.table.geometry.LayerError for a located problem
CalcRule = Callable[[L, At, Flow], list[Row]]

# a row of this op -> its own layer back (the settings `calc` put in the row's common fields and `attrs`): the
# carrier that takes every setting from the spec to the module, the export and the write-back
LayerRule = Callable[[Row], L]


@dataclass(frozen=True)
class Leaf:
    """One module made by one constructor call, e.g. ``nn.Conv2d(3, 16, kernel_size=3, padding=1)``.

    ``ctor`` is ``"nn.<Class>"`` for a ``torch.nn`` class, or the name of a helper class in
    :mod:`rfcalc.model.modules` (``"GlobalPool"``), which exported files carry verbatim.
    """

    row: str
    ctor: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


# (row, its layer) -> its leaf (a conv's own norm/act/dropout rows get leaves of their own ops)
LeafRule = Callable[[Row, L], Leaf]


@dataclass(frozen=True)
class FunctionRule:
    """Traced calls of these functions (dotted paths, e.g. ``"torch.nn.functional.conv2d"``), their arguments
    bound to ``signature`` (a Python parameter list), are converted by ``convert``."""

    functions: tuple[str, ...]
    signature: str
    convert: Converter


@dataclass(frozen=True)
class MethodRule:
    """Traced tensor methods of these names, bound to ``signature``, converted by ``convert``."""

    methods: tuple[str, ...]
    signature: str
    convert: Converter


@dataclass(frozen=True)
class InspectRules:
    """How ``rfcalc inspect`` recognises this op in traced PyTorch code.

    ``modules``: dotted class path -> converter (subclasses match too); rfcalc's own helper modules are named
    ``"rfcalc.model.modules.<Class>"`` and stay whole when tracing.
    """

    modules: dict[str, Converter] = field(default_factory=dict)
    functions: tuple[FunctionRule, ...] = ()
    methods: tuple[MethodRule, ...] = ()


# A random layer for property tests: (rng, input shape) -> (layer dict, output shape), or None when the op does
# not apply to that input (a linear on a feature map, say). Layers must stay small: channels <= 8.
RandomRule = Callable[[random.Random, Shape], "tuple[dict[str, Any], Shape] | None"]

# Feature tags this op shows in `require` / `forbid`: feature -> test(row, consumers of each row by name), applied
# to the rows of this op (rfcalc.analysis.features)
FeatureTest = Callable[[Row, dict[str, list[Row]]], bool]

# A row of this op written back as a spec layer (inspect --to-spec): (row, the layer it was computed from) -> the
# op's fields besides op and name
SpecRule = Callable[[Row, L], dict[str, Any]]

# Where a standalone row of this op can fold into a conv just before it (inspect --to-spec and the spec's own
# `norm` / `act` / `dropout` fields): its order after the conv and the conv fields it sets.
AttachStage = Literal["norm", "act", "dropout"]
ATTACH_ORDER: tuple[AttachStage, ...] = ("norm", "act", "dropout")


def stage_number(stage: AttachStage) -> int:
    """Where a folded row goes after its conv: 1 (norm), 2 (activation), 3 (dropout)."""
    return ATTACH_ORDER.index(stage) + 1


FoldRule = Callable[[Row, L], "dict[str, Any] | None"]  # None: this row cannot fold

@dataclass(frozen=True)
class Gathered:
    """Rows of traced code that one layer of an op computes together (``inspect --to-spec``): ``last`` is the row
    whose output the layer gives, ``inner`` the other rows it replaces, ``source`` the row it reads."""

    last: str
    inner: tuple[str, ...]
    source: str
    layer: LayerModel


# (a row, every row by name, each row's consumers by name) -> the layer of this op that the rows ending at that row
# compute (a squeeze-and-excitation gate spelled as pool, convs, activations and a product), or None. Only for ops
# that traced code spells as several rows; None for the others.
GatherRule = Callable[[Row, Mapping[str, Row], Mapping[str, Sequence[str]]], "Gathered | None"]


# How a row's output units depend on its input's units (rfcalc.table.reach): through a window (conv, pools,
# gap: the row's kernel, stride, padding and dilation), unit by unit (element-wise ops, norms, 1x1 maps of
# channels), every output unit on all of them (linear and ultimus on a vector), or gated.
# "gated": unit by unit like pointwise, plus a gate computed from every unit of the input (squeeze-and-excitation):
# the window stays the unit's own, and each unit sees everything any input unit sees.
Mixing = Literal["window", "pointwise", "all", "gated"]

# How the gradient oracle's positive copy treats this op's modules: keep them, replace them by the identity
# (norms, activations, dropout: they may cancel gradients), or by an average pool (max pools).
Positive = Literal["keep", "identity", "avg_pool"]


@dataclass(frozen=True, kw_only=True)
class OpDef(Generic[L]):
    """One spec op: every piece rfcalc needs, all required, typed on its layer model ``L``."""

    name: str                       # the spec's `op:` value
    family: str                     # the module that defines it (conv, pool, norm, activation, ...)
    summary: str                    # one line for docs and error messages
    model: type[L]                  # the pydantic model of the layer (its `op` Literal includes `name`)
    calc: CalcRule[L]               # contract section 2: the rows of this op (their `attrs`: its settings)
    layer: LayerRule[L]             # a row of this op -> its layer back (the inverse of calc, row by row)
    leaf: LeafRule[L]               # the module that computes a row of this op, from the row and its layer
    ctors: tuple[str, ...]          # every constructor `leaf` may name (torch side resolves and checks them)
    positive: Positive              # the gradient oracle's stand-in
    mixing: Mixing                  # which input units each output unit sees (the `global` flag)
    inspect: InspectRules           # how traced code is recognised as this op
    random: RandomRule              # random layers for property tests
    features: dict[str, FeatureTest]  # the feature tags this op shows
    to_spec: SpecRule[L]            # the row back as spec fields (inspect --to-spec)
    attach: AttachStage | None      # whether a standalone row folds into the conv before it
    fold: FoldRule[L] | None        # the conv fields such a fold sets (None when attach is None)
    gather: GatherRule | None       # rows of traced code written back as one layer of this op (None: one row each)

    def leaf_of(self, row: Row) -> Leaf:
        """The module of a row of this op: its leaf rule on the row and the row's own layer."""
        return self.leaf(row, self.layer(row))
