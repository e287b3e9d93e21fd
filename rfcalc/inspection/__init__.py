"""``rfcalc inspect``: the table of an ``nn.Module`` that exists as PyTorch code, traced with torch.fx.

:mod:`~rfcalc.inspection.api` is the entry (``inspect_module``, ``trace_module``); :mod:`~rfcalc.inspection.target`
loads ``FILE.py:NAME`` (torch only when it runs); :mod:`~rfcalc.inspection.tracing` traces and runs the graph;
:mod:`~rfcalc.inspection.lookup` is the table of which call is which op; :mod:`~rfcalc.inspection.walk` visits
the nodes, :mod:`~rfcalc.inspection.follow`, :mod:`~rfcalc.inspection.merges` and :mod:`~rfcalc.inspection.mixing`
say what rows each becomes (reading each tensor's :mod:`~rfcalc.inspection.layout`, torch-free; what each run of
channels sees, :mod:`~rfcalc.inspection.segments`; upsampling, :mod:`~rfcalc.inspection.upsample`) and
:mod:`~rfcalc.inspection.record` records them with the calculator; :mod:`~rfcalc.inspection.to_spec` writes the
equivalent spec back (torch-free); :mod:`~rfcalc.inspection.check` runs the gradient oracle on an inspected
module. This ``__init__`` imports nothing, so ``import rfcalc.inspection.target`` stays torch-free.
"""
