"""What rfcalc computes from a spec, torch-free and without rendering: the calculator
(:mod:`~rfcalc.analysis.calculator`), ``load_spec`` / ``analyze`` (:mod:`~rfcalc.analysis.load`), the feature
vocabulary of ``require`` / ``forbid`` (:mod:`~rfcalc.analysis.features`) and the constraint checker
(:mod:`~rfcalc.analysis.checker`). How a report is shown lives in :mod:`rfcalc.render`.
"""
