"""Which architectural features a model uses (the vocabulary of `require` / `forbid`), with evidence rows.

The tests come from the op registry (each op tags the features its rows show) and the merges
(:func:`rfcalc.ops.registry.feature_tests`); this module only applies them to a report's rows.
"""
from __future__ import annotations

from rfcalc.ops.registry import FEATURES, feature_tests
from rfcalc.table.report import Report, Row


def find_features(report: Report) -> dict[str, list[str]]:
    """Feature -> names of the rows that show it (empty list: absent)."""
    consumers: dict[str, list[Row]] = {}
    for row in report.rows:
        for source in row.inputs:
            consumers.setdefault(source, []).append(row)
    found: dict[str, list[str]] = {feature: [] for feature in FEATURES}
    for row in report.rows:
        for feature, test in feature_tests(row.op).items():
            if test(row, consumers):
                found[feature].append(row.name)
    return found
