"""Which architectural features a model uses (the vocabulary of `require` / `forbid`), with evidence rows.

The tests come from the op registry (each op tags the features it shows) and the merges
(:data:`rfcalc.ops.registry.FEATURE_TESTS`); this module only applies them to a report.
"""
from __future__ import annotations

from rfcalc.ops.registry import FEATURE_TESTS
from rfcalc.table.report import Report, Row


def find_features(report: Report) -> dict[str, list[str]]:
    """Feature -> names of the rows that show it (empty list: absent)."""
    consumers: dict[str, list[Row]] = {}
    for row in report.rows:
        for source in row.inputs:
            consumers.setdefault(source, []).append(row)
    return {feature: [r.name for r in report.rows if test(r, consumers)] for feature, test in FEATURE_TESTS.items()}
