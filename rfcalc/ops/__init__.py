"""The ops: one family module per kind of layer, each defining everything rfcalc does with its ops.

:mod:`~rfcalc.ops.registry` lists them in one table (``OPS``: op name -> family module; ``REGISTRY``: op name
-> :class:`~rfcalc.ops.base.OpDef`, a family loading at the first lookup of one of its ops).
:mod:`~rfcalc.ops.base` says what an op definition holds; :mod:`~rfcalc.ops.fields` the field types layer models
share; :mod:`~rfcalc.ops.rows` the calculator helpers; :mod:`~rfcalc.ops.actions` what a traced call means to
``rfcalc inspect``; :mod:`~rfcalc.ops.merges` the vocabulary of parallel / residual merges. Families:
:mod:`~rfcalc.ops.conv`, :mod:`~rfcalc.ops.pool`, :mod:`~rfcalc.ops.gap`, :mod:`~rfcalc.ops.norm`,
:mod:`~rfcalc.ops.activation` (the one activation table), :mod:`~rfcalc.ops.dropout`, :mod:`~rfcalc.ops.flatten`,
:mod:`~rfcalc.ops.linear`, :mod:`~rfcalc.ops.ultimus`, :mod:`~rfcalc.ops.channel_shuffle`.

Torch-free: inspect matchers name torch objects by dotted path; this ``__init__`` imports nothing. The families'
converters import :mod:`~rfcalc.ops.actions` when they run, so that ``check`` (a pre-commit hook) never loads it.
"""
