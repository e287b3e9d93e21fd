"""What a command-line argument names: a spec file, or a PyTorch module as ``FILE.py:NAME``.

Its own module, free of :mod:`rfcalc.inspection`, so that `check` and `suggest` of a spec never import inspect's
modules (:mod:`rfcalc.inspection.target` loads such a target).
"""
from __future__ import annotations


def is_code_target(arg: str) -> bool:
    """Whether a command-line argument names a PyTorch module (``FILE.py:NAME``) rather than a spec file."""
    head, sep, _ = arg.rpartition(":")
    return bool(sep) and head.endswith(".py")
