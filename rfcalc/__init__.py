"""rfcalc: exact receptive-field tables, constraint checks and PyTorch modules from a YAML spec.

The core (``load_spec``, ``analyze``, ``check``) never imports torch; ``build_model`` and
``inspect_module`` import it lazily and need the ``torch`` extra.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rfcalc.errors import Problem, RfcalcError, SpecError
from rfcalc.report import Report, Row
from rfcalc.spec import Spec, analyze, load_spec

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rfcalc.checker import CheckResult

__all__ = ["Problem", "Report", "RfcalcError", "Row", "Spec", "SpecError", "__version__", "analyze", "build_model",
           "check", "inspect_module", "load_spec"]


def check(spec: Any, **overrides: Any) -> CheckResult:
    """The constraint verdict of a spec (torch-free); see :func:`rfcalc.checker.check_spec`."""
    from rfcalc.checker import check_spec

    return check_spec(load_spec(spec), overrides=overrides or None)


def build_model(spec: Any) -> Any:
    """A ``torch.nn.Module`` whose parameters, shapes and receptive fields are exactly the report's."""
    from rfcalc.builder import build_model as _build

    return _build(load_spec(spec))


def inspect_module(module: Any, input_shape: Any) -> Report:
    """The report of an existing ``nn.Module`` traced with torch.fx (same JSON and meaning as ``analyze``)."""
    from rfcalc.inspect import inspect_module as _inspect

    return _inspect(module, input_shape)
