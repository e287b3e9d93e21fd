"""How rfcalc shows a report, torch-free: the table in rich, markdown, csv and json
(:mod:`~rfcalc.render.report`) and the RF plot (:mod:`~rfcalc.render.plot`, matplotlib, imported lazily).

Rendering reads what :mod:`rfcalc.analysis` computed and never the reverse: the computing layers below import
neither rich nor matplotlib (``tests/test_layout.py``).
"""
