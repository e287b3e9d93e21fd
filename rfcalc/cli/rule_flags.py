"""The rule flags `check` and `suggest` share (--rf, --params, --macs, --require, --forbid): their declarations
and their parsing into the raw constraint table that goes on top of the spec's and pyproject's rules."""
from __future__ import annotations

from typing import Annotated, Any

import typer

from rfcalc.errors import RfcalcError
from rfcalc.quantities import BOUNDED, QUANTITIES, parse_comparison

# One flag per bounded quantity, as the registry (rfcalc.quantities.QUANTITIES) names and explains it.
RfFlag = Annotated[list[str], typer.Option(BOUNDED["rf"].flag, metavar="BOUND", help=BOUNDED["rf"].help)]
ParamsFlag = Annotated[list[str], typer.Option(BOUNDED["params"].flag, metavar="BOUND", help=BOUNDED["params"].help)]
MacsFlag = Annotated[list[str], typer.Option(BOUNDED["macs"].flag, metavar="BOUND", help=BOUNDED["macs"].help)]
RequireFlag = Annotated[list[str], typer.Option("--require", metavar="FEATURES",
                                                help="Features that must be present, comma-separated.")]
ForbidFlag = Annotated[list[str], typer.Option("--forbid", metavar="FEATURES",
                                               help="Features that must be absent, comma-separated.")]


def rule_overrides(rf: list[str], params: list[str], macs: list[str], require: list[str],
                   forbid: list[str]) -> dict[str, Any]:
    """The flags as a raw constraints table (``{"rf": {"gt": 44}, "require": [...]}``), checked: a malformed bound
    or an unknown feature raises a one-line :class:`RfcalcError` naming the flag."""
    from rfcalc.analysis.checker import check_overrides

    out: dict[str, Any] = {}
    given = {"rf": rf, "params": params, "macs": macs}
    for quantity in QUANTITIES:
        bound: dict[str, Any] = {}
        for text in given[quantity.name]:
            try:
                op, value = parse_comparison(text)
            except ValueError as exc:
                raise RfcalcError(f"{quantity.flag}: {exc}") from None
            bound[op] = value
        if bound:
            out[quantity.name] = bound
    for key, texts in (("require", require), ("forbid", forbid)):
        items = [item.strip() for text in texts for item in text.split(",") if item.strip()]
        if items:
            out[key] = items
    check_overrides(out)
    return out
