"""rfcalc: exact receptive-field tables, constraint checks and PyTorch modules from a YAML spec.

The core (``load_spec``, ``analyze``, ``check``) never imports torch; ``build_model`` and
``inspect_module`` import it lazily and need the ``torch`` extra. Attributes load on first use,
so ``import rfcalc`` (and the pre-commit hooks) start fast.

The package, bottom layer first (``docs/EXTENDING.md`` says where to add what):

- :mod:`rfcalc.errors`, :mod:`rfcalc.quantities`  located problems, exit codes; "200k" and ">44"
- :mod:`rfcalc.lines`, :mod:`rfcalc.extras`  where long lines break; the install hint for a missing extra
- :mod:`rfcalc.table`       the table's data (Row, Report, Geometry) and contract section 2's formulas
- :mod:`rfcalc.ops`         the op registry: each op (model, calculator rule, module, inspect matchers,
                            random layers, features, write-back) defined once in its family module
- :mod:`rfcalc.spec`        YAML with line:col, the spec models, expansion into the graph, error wording,
                            the JSON Schema, random specs
- :mod:`rfcalc.analysis`    the calculator, ``load_spec``/``analyze``, features, the checker
- :mod:`rfcalc.render`      the table in rich, markdown, csv and json; the RF plot (matplotlib)
- :mod:`rfcalc.suggest`     ``rfcalc suggest``: the least edits of a raw spec that make its rules pass
- :mod:`rfcalc.model`       the module plan, ``build_model``, export, checkpoints, ERF, the gradient oracle
- :mod:`rfcalc.inspection`  ``rfcalc inspect``: torch.fx tracing walked by the same calculator
- :mod:`rfcalc.trainer`     ``rfcalc train`` / ``evaluate`` / ``lr-find``, one process or many (torchrun)
- :mod:`rfcalc.sweep`       ``rfcalc sweep``: Optuna studies over spec variants (torch-free; trials train in
                            ``rfcalc train`` child processes)
- :mod:`rfcalc.cli`         the command line (parse, call, render)

The pure core (table, ops, spec, analysis, suggest) never imports torch nor the CLI; nothing imports in a circle.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rfcalc.analysis.checker import CheckResult
    from rfcalc.analysis.load import Spec, analyze, load_spec
    from rfcalc.errors import Problem, RfcalcError, SpecError
    from rfcalc.table.report import Report, Row

_LAZY: dict[str, str] = {
    "Problem": "rfcalc.errors", "RfcalcError": "rfcalc.errors", "SpecError": "rfcalc.errors",
    "Report": "rfcalc.table.report", "Row": "rfcalc.table.report",
    "Spec": "rfcalc.analysis.load", "analyze": "rfcalc.analysis.load", "load_spec": "rfcalc.analysis.load",
}

__all__ = ["Problem", "Report", "RfcalcError", "Row", "Spec", "SpecError", "__version__", "analyze", "build_model",
           "check", "inspect_module", "load_spec"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rfcalc' has no attribute {name!r}")


def check(spec: Any, **overrides: Any) -> CheckResult:
    """The constraint verdict of a spec (torch-free). Keyword arguments override rules, e.g. ``rf={"gt": 44}``."""
    from rfcalc.analysis.checker import check_spec
    from rfcalc.analysis.load import load_spec

    return check_spec(load_spec(spec), overrides=overrides or None)


def build_model(spec: Any) -> Any:
    """A ``torch.nn.Module`` whose parameters, shapes and receptive fields are exactly the report's."""
    from rfcalc.analysis.load import load_spec
    from rfcalc.model.builder import build_model as _build

    return _build(load_spec(spec))


def inspect_module(module: Any, input_shape: Any, *, name: str | None = None, partial: bool = False) -> Report:
    """The report of an existing ``nn.Module`` traced with torch.fx (same JSON and meaning as ``analyze``).

    ``partial=True`` returns the rows up to a node the calculator cannot follow instead of raising.
    """
    from rfcalc.inspection.api import inspect_module as _inspect

    return _inspect(module, input_shape, name=name, partial=partial)
