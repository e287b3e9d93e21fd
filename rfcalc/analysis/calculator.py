"""The calculator: sizes, jumps, receptive fields, centres, parameters and MACs of every row.

Implements contract section 2 exactly (the formulas are in :mod:`rfcalc.table.geometry`). One pass over the
expanded graph in execution order, so it is linear in the number of layers.

``Flow``, ``fmt_shape`` and ``output_size`` are re-exported from :mod:`rfcalc.table.geometry` for callers.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from rfcalc.errors import Problem
from rfcalc.table.geometry import (Flow, LayerError, fmt_centre, fmt_pair, fmt_shape, output_size, step_geometry,
                             union_geometry)
from rfcalc.spec.graph import Group, Node, Parallel, Prim
from rfcalc.table.report import INPUT_GEOMETRY, Diagnostic, IntPair, Report, Row, Shape
from rfcalc.spec.models import ConvLayer, GapLayer, LinearLayer, NormLayer, PoolLayer, UltimusLayer
from rfcalc.spec.source import Key, Source


__all__ = ["Calculator", "Flow", "LayerError", "attached_rows", "calculate", "fmt_shape", "output_size",
           "step_geometry", "union_geometry"]


class Calculator:
    """Walks the expanded graph once; collects rows, diagnostics and located problems."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.rows: list[Row] = []
        self.diagnostics: list[Diagnostic] = []
        self.problems: list[Problem] = []
        self.handlers: dict[str, Callable[[Prim, Flow], list[Row]]] = {
            "conv": self.conv, "maxpool": self.pool, "avgpool": self.pool, "gap": self.gap,
            "bn": self.norm, "gn": self.norm, "ln": self.norm, "flatten": self.flatten, "linear": self.linear,
            "ultimus": self.ultimus,
        }

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

    def prim(self, node: Prim, flow: Flow) -> Flow | None:
        handler = self.handlers.get(node.op, self.passthrough)
        try:
            rows = handler(node, flow)
        except LayerError as exc:
            self.problems.append(self.source.problem(node.key, f"{node.path} ({node.op} '{node.name}')", str(exc)))
            return None
        self.rows.extend(rows)
        return Flow(rows[-1].out_shape, rows[-1].geo_out, rows[-1].name)

    # -- handlers ----------------------------------------------------------------------------------------------
    @staticmethod
    def _feature_map(node: Prim, flow: Flow) -> tuple[int, int, int]:
        if len(flow.shape) != 3:
            raise LayerError(f"needs a feature map (C x H x W) input but gets {fmt_shape(flow.shape)}; "
                             f"{node.op} must come before gap/flatten")
        c, h, w = flow.shape
        return c, h, w

    @staticmethod
    def _sizes(node: Prim, hw: IntPair, k_eff: IntPair, stride: IntPair, padding: IntPair,
               ceil_mode: bool = False) -> IntPair:
        out = tuple(output_size(hw[a], k_eff[a], stride[a], padding[a], ceil_mode) for a in (0, 1))
        if min(out) <= 0:
            raise LayerError(f"spatial size reaches zero: input {fmt_pair(hw)} with effective kernel "
                             f"{fmt_pair(k_eff)}, padding {fmt_pair(padding)}, stride {fmt_pair(stride)} gives "
                             f"{fmt_pair(out)}; use a smaller kernel or stride, more padding, or fewer reductions")
        return out  # type: ignore[return-value]

    def conv(self, node: Prim, flow: Flow) -> list[Row]:
        layer: ConvLayer = node.layer  # type: ignore[assignment]
        c_in, h, w = self._feature_map(node, flow)
        groups = c_in if layer.groups == "depthwise" else layer.groups
        out = layer.out if layer.out is not None else c_in
        if c_in % groups:
            raise LayerError(f"groups {groups} must divide the input channels, got {c_in} input channels")
        if out % groups:
            raise LayerError(f"groups {groups} must divide out, got out {out}")
        k_eff = (layer.dilation[0] * (layer.k[0] - 1) + 1, layer.dilation[1] * (layer.k[1] - 1) + 1)
        padding = self._padding(layer, k_eff)
        h_out, w_out = self._sizes(node, (h, w), k_eff, layer.stride, padding)
        if layer.norm == "gn" and out % (layer.norm_groups or 1):
            raise LayerError(f"norm_groups {layer.norm_groups} must divide out, got out {out}")
        params = out * (c_in // groups) * layer.k[0] * layer.k[1] + (out if layer.bias else 0)
        macs = layer.k[0] * layer.k[1] * (c_in // groups) * out * h_out * w_out
        attrs = {"bias": layer.bias}
        conv = Row(node.name, "conv", node.path, (flow.producer,), flow.shape, (out, h_out, w_out), flow.geo,
                   step_geometry(flow.geo, k_eff, layer.stride, padding), params, macs, layer.k, layer.stride,
                   padding, layer.dilation, groups, attrs)
        return [conv, *attached_rows(conv, layer)]

    @staticmethod
    def _padding(layer: ConvLayer, k_eff: IntPair) -> IntPair:
        if layer.padding == "valid":
            return (0, 0)
        if layer.padding != "same":
            return layer.padding
        for a, axis in ((0, "h"), (1, "w")):
            if layer.stride[a] != 1:
                raise LayerError(f"padding 'same' needs stride 1, got stride {fmt_pair(layer.stride)}; "
                                 f"give an explicit padding")
            if k_eff[a] % 2 == 0:
                raise LayerError(f"padding 'same' needs an odd effective kernel, got {k_eff[a]} on axis {axis} "
                                 f"(k {layer.k[a]}, dilation {layer.dilation[a]}); give an explicit padding")
        return ((k_eff[0] - 1) // 2, (k_eff[1] - 1) // 2)

    def pool(self, node: Prim, flow: Flow) -> list[Row]:
        layer: PoolLayer = node.layer  # type: ignore[assignment]
        c, h, w = self._feature_map(node, flow)
        stride = layer.stride_pair
        h_out, w_out = self._sizes(node, (h, w), layer.k, stride, layer.padding, layer.ceil_mode)
        return [Row(node.name, layer.op, node.path, (flow.producer,), flow.shape, (c, h_out, w_out), flow.geo,
                    step_geometry(flow.geo, layer.k, stride, layer.padding), 0, 0, layer.k, stride, layer.padding,
                    (1, 1), None, {"ceil_mode": layer.ceil_mode})]

    def gap(self, node: Prim, flow: Flow) -> list[Row]:
        layer: GapLayer = node.layer  # type: ignore[assignment]
        c, h, w = self._feature_map(node, flow)
        return [Row(node.name, "gap", node.path, (flow.producer,), flow.shape, (c,), flow.geo,
                   step_geometry(flow.geo, (h, w), (1, 1), (0, 0)), 0, 0, (h, w), (1, 1), (0, 0), (1, 1), None,
                   {"mode": layer.mode})]

    def norm(self, node: Prim, flow: Flow) -> list[Row]:
        layer: NormLayer = node.layer  # type: ignore[assignment]
        channels = flow.shape[0]
        if layer.op == "gn" and channels % (layer.groups or 1):
            raise LayerError(f"groups {layer.groups} must divide the channels, got {channels} channels")
        row = self._same(node, flow, params=2 * channels, attrs={})[0]
        return [replace(row, groups=layer.groups)]

    def passthrough(self, node: Prim, flow: Flow) -> list[Row]:
        attrs = {"p": getattr(node.layer, "p")} if node.op == "dropout" else {}
        return self._same(node, flow, params=0, attrs=attrs)

    @staticmethod
    def _same(node: Prim, flow: Flow, params: int, attrs: dict[str, object], macs: int = 0,
              out_shape: Shape | None = None) -> list[Row]:
        return [Row(node.name, node.op, node.path, (flow.producer,), flow.shape, out_shape or flow.shape, flow.geo,
                    flow.geo, params, macs, attrs=attrs)]

    def flatten(self, node: Prim, flow: Flow) -> list[Row]:
        return self._same(node, flow, 0, {}, out_shape=(math.prod(flow.shape),))

    @staticmethod
    def _vector(node: Prim, flow: Flow) -> int:
        if len(flow.shape) != 1:
            raise LayerError(f"needs a vector input but gets {fmt_shape(flow.shape)}; "
                             f"add {{op: gap}} or {{op: flatten}} before it")
        return flow.shape[0]

    def linear(self, node: Prim, flow: Flow) -> list[Row]:
        layer: LinearLayer = node.layer  # type: ignore[assignment]
        features = self._vector(node, flow)
        params = features * layer.out + (layer.out if layer.bias else 0)
        return self._same(node, flow, params, {"bias": layer.bias}, macs=features * layer.out,
                          out_shape=(layer.out,))

    def ultimus(self, node: Prim, flow: Flow) -> list[Row]:
        layer: UltimusLayer = node.layer  # type: ignore[assignment]
        d, dim = self._vector(node, flow), layer.dim
        params = 3 * d * dim + dim * d + d
        macs = 3 * d * dim + dim * d + 2 * dim * dim
        return self._same(node, flow, params, {"dim": dim}, macs=macs)

    # -- rows built by callers (rfcalc.inspection.api) ----------------------------------------------------------------
    def passthrough_row(self, name: str, op: str, path: str, flow: Flow, *, out_shape: Shape | None = None,
                        extra_inputs: tuple[str, ...] = (), params: int = 0,
                        attrs: dict[str, object] | None = None) -> Flow:
        """Append a row of ``op`` that keeps rf, jump and start (contract section 2: element-wise ops)."""
        out = flow.shape if out_shape is None else out_shape
        row = Row(name, op, path, (flow.producer, *extra_inputs), flow.shape, out, flow.geo, flow.geo, params, 0,
                  attrs=dict(attrs or {}))
        self.rows.append(row)
        return Flow(row.out_shape, row.geo_out, row.name)

    def override_params(self, name: str, params: int) -> int:
        """Put ``params`` on row ``name`` and 0 on the rows attached to it, unless their parameters already add up
        to ``params``; returns the total the calculator computed for them."""
        index = next((i for i in range(len(self.rows) - 1, -1, -1) if self.rows[i].name == name), None)
        if index is None:
            raise KeyError(f"no row named {name!r}")
        attached = [i for i in range(index + 1, len(self.rows)) if self.rows[i].attrs.get("attached_to") == name]
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
        return Report(name, input_shape, tuple(self.rows), tuple(self.diagnostics))

    # -- merges ------------------------------------------------------------------------------------------------
    def merge(self, name: str, path: str, key: Key, flows: list[tuple[str, Flow | None]], op: str,
              act: str = "none") -> Flow | None:
        """Join labelled inputs with ``op``: "concat" stacks channels, any other op ("add", or "sub", "mul", "div"
        from traced code) is element-wise on equal shapes. A row for the merge (named ``op``) and one for ``act``."""
        if any(f is None for _, f in flows):
            return None
        ready: list[tuple[str, Flow]] = [(label, f) for label, f in flows if f is not None]
        try:
            out_shape = self._merged_shape(ready, op)
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
        in_shapes = [list(f.shape) for _, f in ready]
        row = Row(name, op, path, tuple(f.producer for _, f in ready),
                  None if op == "concat" else out_shape, out_shape, geo, geo, 0, 0, attrs={"in_shapes": in_shapes})
        rows = [row, *act_row(row, act)]
        self.rows.extend(rows)
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


def attached_rows(conv: Row, layer: ConvLayer) -> list[Row]:
    """The conv's own norm, activation and dropout, each a row named ``<conv>.<op>`` (``c1.bn``, ``c1.relu``)."""
    rows: list[Row] = []
    channels = conv.out_shape[0]
    steps: list[tuple[str, int, int | None, dict[str, object]]] = []
    if layer.norm != "none":
        steps.append((layer.norm, 2 * channels, layer.norm_groups if layer.norm == "gn" else None, {}))
    if layer.act != "none":
        steps.append((layer.act, 0, None, {}))
    if layer.dropout > 0:
        steps.append(("dropout", 0, None, {"p": layer.dropout}))
    producer = conv.name
    for op, params, groups, attrs in steps:
        row = Row(f"{conv.name}.{op}", op, conv.path, (producer,), conv.out_shape, conv.out_shape, conv.geo_out,
                  conv.geo_out, params, 0, groups=groups, attrs={**attrs, "attached_to": conv.name})
        rows.append(row)
        producer = row.name
    return rows


def act_row(merge: Row, act: str) -> list[Row]:
    """The activation after a merge, a row named ``<merge>.<act>``."""
    if act == "none":
        return []
    return [Row(f"{merge.name}.{act}", act, merge.path, (merge.name,), merge.out_shape, merge.out_shape,
                merge.geo_out, merge.geo_out, 0, 0, attrs={"attached_to": merge.name})]


def calculate(name: str, input_shape: Shape, nodes: tuple[Node, ...], source: Source) -> tuple[Report | None,
                                                                                              list[Problem]]:
    """Run the calculator; returns the report, or None and the problems found."""
    calc = Calculator(source)
    flow = calc.sequence(nodes, Flow(input_shape, INPUT_GEOMETRY, "input"))
    if flow is None or calc.problems:
        return None, calc.problems
    return calc.report(name, input_shape), []
