"""The table's data: :class:`~rfcalc.table.report.Row` / :class:`~rfcalc.table.report.Report` (what every number
means, contract section 3) and the geometry formulas of contract section 2 (:mod:`rfcalc.table.geometry`).

The bottom layer: imports nothing of rfcalc but :mod:`rfcalc.errors` and :mod:`rfcalc.quantities`. Torch-free.
"""
