"""What rfcalc computes from a spec, torch-free: the calculator (:mod:`~rfcalc.analysis.calculator`),
``load_spec`` / ``analyze`` (:mod:`~rfcalc.analysis.load`), the feature vocabulary of ``require`` / ``forbid``
(:mod:`~rfcalc.analysis.features`), the constraint checker (:mod:`~rfcalc.analysis.checker`) and the renderings
of a report (:mod:`~rfcalc.analysis.render`; :mod:`~rfcalc.analysis.plot` draws with matplotlib, lazily).
"""
