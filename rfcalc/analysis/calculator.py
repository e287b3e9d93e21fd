"""The calculator: sizes, jumps, receptive fields, centres, parameters and MACs of every row.

Implements contract section 2 exactly (the formulas are in :mod:`rfcalc.table.geometry`). One pass over the
expanded graph in execution order, so it is linear in the number of layers.

Each primitive op's rows come from its rule in the op registry (:mod:`rfcalc.ops`); an op without a rule
cannot be registered, so nothing is ever silently passed through. The calculator itself only walks the graph
and joins branches (merges). Beside each row's window it keeps what every unit of the row's output sees
(:mod:`rfcalc.table.reach`, by the op's ``mixing``), which sets the row's ``global`` flag. ``Flow``,
``fmt_shape`` and ``output_size`` are re-exported from :mod:`rfcalc.table.geometry` for callers.
"""
from __future__ import annotations

from dataclasses import replace

from rfcalc.errors import Problem
from rfcalc.ops import activation
from rfcalc.ops.base import At
from rfcalc.ops.registry import REGISTRY
from rfcalc.spec.graph import Group, Node, Parallel, Prim
from rfcalc.spec.source import Key, Source
from rfcalc.table import reach as R
from rfcalc.table.geometry import (
    Flow,
    LayerError,
    fmt_centre,
    fmt_pair,
    fmt_shape,
    output_size,
    step_geometry,
    union_geometry,
)
from rfcalc.table.report import INPUT_GEOMETRY, Diagnostic, Geometry, Report, Row, Shape

__all__ = ["Calculator", "Flow", "LayerError", "calculate", "fmt_shape", "output_size", "step_geometry",
           "union_geometry"]


class Calculator:
    """Walks the expanded graph once; collects rows, diagnostics and located problems."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.rows: list[Row] = []
        self.diagnostics: list[Diagnostic] = []
        self.problems: list[Problem] = []
        self.reaches: dict[str, R.Reach] = {}  # row name ("input" too) -> what its output units see

    # -- walking -----------------------------------------------------------------------------------------------
    def sequence(self, nodes: tuple[Node, ...], flow: Flow) -> Flow | None:
        for node in nodes:
            result = self.node(node, flow)
            if result is None:
                return None
            flow = result
        return flow

    def node(self, node: Node, flow: Flow) -> Flow | None:
        if isinstance(node, Prim):
            return self.prim(node, flow)
        if isinstance(node, Group):
            return self.sequence(node.children, flow)
        if isinstance(node, Parallel):
            flows = [(f"paths[{j}]", self.sequence(p, flow)) for j, p in enumerate(node.paths)]
            return self.merge(node.name, node.path, node.key, flows, node.merge, node.act)
        flows = [("body", self.sequence(node.body, flow)),
                 ("shortcut" if node.shortcut is not None else "the identity shortcut",
                  flow if node.shortcut is None else self.sequence(node.shortcut, flow))]
        return self.merge(node.name, node.path, node.key, flows, "add", node.act)

    def prim(self, node: Prim, flow: Flow, attached_to: str | None = None) -> Flow | None:
        """The rows of one primitive op; ``attached_to`` (inspect) folds a standalone norm / activation /
        dropout into the conv or merge before it, as a conv's own fields do."""
        definition = REGISTRY.get(node.op)
        if definition is None:  # the spec models admit registered ops only; inspect builds registered layers only
            raise LookupError(f"op '{node.op}' has no calculator rule (it is not in rfcalc.ops.registry)")
        try:
            rows = definition.calc(node.layer, At(node.name, node.path), flow)
        except LayerError as exc:
            self.problems.append(self.source.problem(node.key, f"{node.path} ({node.op} '{node.name}')", str(exc)))
            return None
        reach = self.reach(flow)
        for row in rows:
            reach = self._step(row, reach)
            self._add(replace(row, attached_to=attached_to) if attached_to else row, reach)
        return Flow(rows[-1].out_shape, rows[-1].geo_out, rows[-1].name)

    # -- what units see ------------------------------------------------------------------------------------------
    def reach(self, flow: Flow) -> R.Reach:
        """What the units of ``flow`` see (the input: each pixel itself)."""
        found = self.reaches.get(flow.producer)
        if found is None:
            if flow.producer != "input" or len(flow.shape) != 3:
                raise KeyError(f"no reach recorded for {flow.producer!r}")
            found = self.reaches["input"] = R.image_reach(flow.shape[1], flow.shape[2])
        return found

    @staticmethod
    def _step(row: Row, reach: R.Reach) -> R.Reach:
        """The reach of ``row``'s output from its input's, by its op's ``mixing``."""
        mixing = REGISTRY[row.op].mixing
        if mixing == "pointwise":
            return reach
        if mixing == "all":
            return R.collapse(reach)
        if mixing == "gated":  # each unit's own, and the gate's: what every unit sees
            return R.union([reach, R.collapse(reach)])
        if not (row.kernel and row.stride and row.padding and row.dilation):
            raise ValueError(f"{row.name}: a {row.op} row without kernel, stride, padding and dilation")
        out_hw = (row.out_shape[1], row.out_shape[2]) if row.is_feature_map else (1, 1)
        if isinstance(reach, R.Grid):
            return R.window(reach, row.kernel, row.stride, row.padding, row.dilation, out_hw)
        return R.window_units(reach, row.kernel, row.stride, row.padding, row.dilation, out_hw)

    def _add(self, row: Row, reach: R.Reach) -> Row:
        """Append ``row`` (fresh from its rule, shared with no one yet) with its ``global`` flag from ``reach``."""
        if reach.everywhere:
            object.__setattr__(row, "is_global", True)  # dataclasses.replace would cost a third of the calculator
        self.rows.append(row)
        self.reaches[row.name] = reach
        return row

    # -- rows built by callers (rfcalc.inspection.api) ----------------------------------------------------------------
    def passthrough_row(self, name: str, op: str, path: str, flow: Flow, *, out_shape: Shape | None = None,
                        extra_inputs: tuple[str, ...] = (), params: int = 0, macs: int = 0,
                        reach: R.Reach | None = None, attached_to: str | None = None,
                        geo: Geometry | None = None) -> Flow:
        """Append a row of ``op`` that keeps rf, jump and start (contract section 2: element-wise ops).

        Its units see what the input's units see, joined with what the ``extra_inputs`` rows' units see (a
        1x1 map broadcast over every unit: a squeeze-and-excitation gate), unless ``reach`` says otherwise;
        ``geo`` replaces the input's window (the union of both inputs' when they share a grid).
        """
        out = flow.shape if out_shape is None else out_shape
        geo = flow.geo if geo is None else geo
        row = Row(name=name, op=op, path=path, inputs=(flow.producer, *extra_inputs), in_shape=flow.shape,
                  out_shape=out, geo_in=geo, geo_out=geo, params=params, macs=macs, attached_to=attached_to)
        if reach is None:
            reach = R.union([self.reach(flow), *(self.reaches[e] for e in extra_inputs)])
        self._add(row, reach)
        return Flow(row.out_shape, row.geo_out, row.name)

    def override_params(self, name: str, params: int) -> int:
        """Put ``params`` on row ``name`` and 0 on the rows attached to it, unless their parameters already add up
        to ``params``; returns the total the calculator computed for them."""
        index = next((i for i in range(len(self.rows) - 1, -1, -1) if self.rows[i].name == name), None)
        if index is None:
            raise KeyError(f"no row named {name!r}")
        attached = [i for i in range(index + 1, len(self.rows)) if self.rows[i].attached_to == name]
        computed = self.rows[index].params + sum(self.rows[i].params for i in attached)
        if computed != params:
            self.rows[index] = replace(self.rows[index], params=params)
            for i in attached:
                self.rows[i] = replace(self.rows[i], params=0)
        return computed

    def add_diagnostic(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def report(self, name: str, input_shape: Shape) -> Report:
        """The rows and diagnostics so far as a report."""
        return Report(name, input_shape, tuple(self.rows), tuple(self.diagnostics), dict(self.reaches))

    # -- merges ------------------------------------------------------------------------------------------------
    def merge(self, name: str, path: str, key: Key, flows: list[tuple[str, Flow | None]], op: str,
              act: str | None = None, out_shape: Shape | None = None) -> Flow | None:
        """Join labelled inputs with ``op``: "concat" stacks channels, any other op ("add", or "sub", "mul", "div"
        from traced code) is element-wise on equal shapes. A row for the merge (named ``op``) and one for ``act``."""
        if any(f is None for _, f in flows):
            return None
        ready: list[tuple[str, Flow]] = [(label, f) for label, f in flows if f is not None]
        try:
            merged = self._merged_shape(ready, op)
            out_shape = merged if out_shape is None else out_shape
        except LayerError as exc:
            self.problems.append(self.source.problem(key, f"{path} ({op} '{name}')", str(exc)))
            return None
        geo = union_geometry([f.geo for _, f in ready])
        starts = {f.geo.start2 for _, f in ready}
        if len(out_shape) == 3 and len(starts) > 1:
            centres = ", ".join(f"{label} at {fmt_centre(f.geo.start2)}" for label, f in ready)
            self.diagnostics.append(Diagnostic(
                "warning", "misaligned-merge", path,
                f"{op} '{name}' merges windows with different centres ({centres}); "
                f"the merged RF {fmt_pair(geo.rf)} is their union"))
        in_shapes = tuple(f.shape for _, f in ready)
        row = Row(name=name, op=op, path=path, inputs=tuple(f.producer for _, f in ready),
                  in_shape=None if op == "concat" else out_shape, out_shape=out_shape, geo_in=geo, geo_out=geo,
                  in_shapes=in_shapes)
        rows = [row]
        if act is not None:  # the merge's activation, by the activation's own rule
            rows += activation.rows(act, At(f"{name}.{act}", path), Flow(out_shape, geo, name), attached_to=name)
        reach = R.union([self.reach(f) for _, f in ready])
        for r in rows:
            self._add(r, reach)
        return Flow(out_shape, geo, rows[-1].name)

    @staticmethod
    def _merged_shape(flows: list[tuple[str, Flow]], op: str) -> Shape:
        (first_label, first), rest = flows[0], flows[1:]
        for label, flow in rest:
            a, b = first.shape, flow.shape
            if len(a) != len(b):
                raise LayerError(f"{first_label} gives {fmt_shape(a)} but {label} gives {fmt_shape(b)}; "
                                 f"a merge needs both feature maps or both vectors")
            if len(a) == 3 and a[1:] != b[1:]:
                raise LayerError(f"{first_label} gives {fmt_shape(a)} but {label} gives {fmt_shape(b)}; "
                                 f"a merge needs equal spatial sizes")
            if len(a) == 3 and first.geo.jump != flow.geo.jump:
                raise LayerError(f"{first_label} has jump {fmt_pair(first.geo.jump)} but {label} has jump "
                                 f"{fmt_pair(flow.geo.jump)}; a merge needs equal jumps")
            if op != "concat" and a[0] != b[0]:
                raise LayerError(f"{first_label} gives {fmt_shape(a)} but {label} gives {fmt_shape(b)}; "
                                 f"{op} needs equal channels (use a shortcut conv or concat)")
        if op == "concat":
            return (sum(f.shape[0] for _, f in flows),) + first.shape[1:]
        return first.shape


def calculate(name: str, input_shape: Shape, nodes: tuple[Node, ...], source: Source) -> tuple[Report | None,
                                                                                              list[Problem]]:
    """Run the calculator; returns the report, or None and the problems found."""
    with R.memo():  # the reach caches live as long as this calculation
        calc = Calculator(source)
        flow = calc.sequence(nodes, Flow(input_shape, INPUT_GEOMETRY, "input"))
        if flow is None or calc.problems:
            return None, calc.problems
        return calc.report(name, input_shape), []
