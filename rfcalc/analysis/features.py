"""Which architectural features a model uses (the vocabulary of `require` / `forbid`), with evidence rows."""
from __future__ import annotations

from collections.abc import Callable

from rfcalc.table.report import Report, Row

FeatureTest = Callable[[Row, dict[str, list[Row]]], bool]


def _conv(row: Row) -> bool:
    return row.op == "conv"


def _depthwise(row: Row) -> bool:
    return _conv(row) and row.in_shape is not None and row.groups is not None and row.groups > 1 \
        and row.groups == row.in_shape[0]


def _pointwise(row: Row) -> bool:
    return _conv(row) and row.kernel == (1, 1) and row.groups == 1


def _separable(row: Row, consumers: dict[str, list[Row]]) -> bool:
    """A depthwise conv whose output goes straight (or through its own norm/act) into a 1x1 conv."""
    if not _depthwise(row):
        return False
    frontier = [row.name]
    while frontier:
        name = frontier.pop()
        for nxt in consumers.get(name, []):
            if _pointwise(nxt):
                return True
            if nxt.attrs.get("attached_to") == row.name:
                frontier.append(nxt.name)
    return False


FEATURE_TESTS: dict[str, FeatureTest] = {
    "dilated_conv": lambda r, c: _conv(r) and r.dilation is not None and max(r.dilation) > 1,
    "depthwise_conv": lambda r, c: _depthwise(r),
    "separable_conv": _separable,
    "strided_conv": lambda r, c: _conv(r) and r.stride is not None and max(r.stride) > 1,
    "maxpool": lambda r, c: r.op == "maxpool",
    "avgpool": lambda r, c: r.op == "avgpool",
    "gap": lambda r, c: r.op == "gap",
    "residual": lambda r, c: r.op == "add",
    "concat": lambda r, c: r.op == "concat",
    "linear": lambda r, c: r.op == "linear",
    "bn": lambda r, c: r.op == "bn",
    "gn": lambda r, c: r.op == "gn",
    "ln": lambda r, c: r.op == "ln",
    "dropout": lambda r, c: r.op == "dropout" and float(r.attrs.get("p", 0)) > 0,
    "ultimus": lambda r, c: r.op == "ultimus",
}


def find_features(report: Report) -> dict[str, list[str]]:
    """Feature -> names of the rows that show it (empty list: absent)."""
    consumers: dict[str, list[Row]] = {}
    for row in report.rows:
        for source in row.inputs:
            consumers.setdefault(source, []).append(row)
    return {feature: [r.name for r in report.rows if test(r, consumers)] for feature, test in FEATURE_TESTS.items()}
