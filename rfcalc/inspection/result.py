"""What an inspection returns: the report of a traced module plus what ``--to-spec`` needs. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass, field

from rfcalc.inspection import layout as L
from rfcalc.ops.fields import LayerModel
from rfcalc.table.report import Diagnostic, Report

SKIP = "skip"    # a row that is an identity for the spec (a reshape that changes nothing)
MERGE = "merge"  # a row computed by a merge (concat, add)


@dataclass(frozen=True)
class Inspection:
    """The report of a traced module plus what ``--to-spec`` needs.

    ``complete`` is False when the walk stopped at a node it cannot follow (the last diagnostic says
    which). ``spec_layers`` maps row names to the spec layer each row was computed from (``"merge"``
    for merges, ``"skip"`` for identities); ``spec_notes`` says why a row has no exact spec op;
    ``row_nodes`` maps row names to the torch.fx node whose output the row describes, ``row_layouts`` to the
    layout of that output (which dimensions hold units: :mod:`rfcalc.inspection.layout`).
    """

    report: Report
    complete: bool
    spec_layers: dict[str, LayerModel | str] = field(default_factory=dict)
    spec_notes: dict[str, str] = field(default_factory=dict)
    row_nodes: dict[str, str] = field(default_factory=dict)
    row_layouts: dict[str, L.Layout] = field(default_factory=dict)
    hull_rows: frozenset[str] = frozenset()  # rows after upsampling: the window holds every unit's (some see less)
    # row -> the module's settings its spec layer does not hold and that leave the RF as it is
    # (``count_include_pad=False``); ``--to-spec`` writes the layer and notes each one
    spec_dropped: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def error(self) -> Diagnostic | None:
        return next((d for d in self.report.diagnostics if d.severity == "error"), None)
