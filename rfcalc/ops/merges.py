"""The merges of the spec's ``parallel`` and ``residual`` layers: their vocabulary and their feature tags.

A merge is not a registered op (it joins branches; the calculator's ``merge`` computes its row: channels
stacked by ``concat``, element-wise ``add``, the union of the inputs' windows). Traced code adds ``sub``,
``mul`` and ``div`` rows (``rfcalc inspect``), which the spec cannot write.
"""
from __future__ import annotations

from typing import Literal, get_args

from rfcalc.ops.base import FeatureTest

SpecMerge = Literal["concat", "add"]
MergeOp = Literal["concat", "add", "sub", "mul", "div"]
MERGE_OPS: tuple[str, ...] = get_args(MergeOp)

FEATURES: dict[str, FeatureTest] = {
    "residual": lambda row, consumers: row.op == "add",
    "concat": lambda row, consumers: row.op == "concat",
}
