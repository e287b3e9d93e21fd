"""The rows of ``rfcalc inspect``: what each followed fx node adds to the calculator's table. Needs torch.

:class:`Recorder` owns the :class:`~rfcalc.analysis.calculator.Calculator` of one inspection and the flow (shape,
geometry, producing row) of every node computed from the input. It names rows after modules and nodes,
counts parameters the way PyTorch does (a module or parameter used twice counts once), remembers which spec
layer each row came from for ``--to-spec``, and builds the :class:`Inspection` at the end. The walk stops
with :class:`CannotFollow` at the first node the calculator cannot follow.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NoReturn, get_args

import torch
import torch.fx as fx
from torch import nn

from rfcalc.analysis.calculator import Calculator, Flow
from rfcalc.errors import RfcalcError
from rfcalc.spec.graph import Prim
from rfcalc.inspection.tracing import Walker, source_line
from rfcalc.table.report import Diagnostic, Report, Row, Shape
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.merges import SpecMerge
from rfcalc.ops.registry import REGISTRY
from rfcalc.inspection.result import MERGE, Inspection
from rfcalc.spec.source import Source

# a pass-through row never takes the name of a spec op or merge (it gets "_op" appended)
_RESERVED = frozenset(REGISTRY) | frozenset(get_args(SpecMerge))


class CannotFollow(Exception):
    """The walk cannot go on; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__()
        self.diagnostic = diagnostic


class Recorder:
    """The calculator of one inspection, the flow of every followed node, and what each row came from."""

    def __init__(self, gm: fx.GraphModule, root: nn.Module, walker: Walker, shape: Shape, label: str) -> None:
        self.gm = gm
        self.root = root
        self.shape = shape
        self.label = label
        self.flows: dict[fx.Node, Flow] = {}
        self._walker = walker
        self._calc = Calculator(Source("<module>"))
        self._seen: set[int] = set()
        self._module_calls: dict[str, int] = {}
        self._used_names: set[str] = {"input"}
        self._spec_layers: dict[str, LayerModel | str] = {}
        self._spec_notes: dict[str, str] = {}
        self._row_nodes: dict[str, str] = {}

    # -- rows ------------------------------------------------------------------------------------------------
    def layer(self, n: fx.Node, layer: LayerModel, flow: Flow, out: Shape, desc: str, note: str | None) -> None:
        """The rows the calculator computes for ``layer`` (a spec layer) applied to ``flow``."""
        name = self._name(n)
        new = self._calc.prim(Prim(name, self.where(n), ("node", n.name), layer), flow)
        if new is None:
            self.stop(n, self._calc.problems[-1].message, desc)
        self.check_shape(n, new.shape, out, desc)
        self._count_params(n, name, layer.op, desc)
        self._spec_layers[name] = layer
        if note:
            self._spec_notes[name] = note
        self.flows[n] = new

    def passthrough(self, n: fx.Node, op: str, flow: Flow, out: Shape, desc: str, note: str | None,
                    same: bool = False, extra: tuple[str, ...] = (), spec: str | None = None) -> str:
        """A row that passes the RF through (the calculator's rule for element-wise ops) with its own op name."""
        if same:
            self.check_shape(n, flow.shape, out, desc)
            out = flow.shape
        name = self._name(n)
        op = f"{op}_op" if op in _RESERVED else op
        new = self._calc.passthrough_row(name, op, self.where(n), flow, out_shape=out, extra_inputs=extra)
        self._count_params(n, name, op, desc)
        if spec is not None:
            self._spec_layers[name] = spec
        if note:
            self._spec_notes[name] = note
        self.flows[n] = new
        return name

    def merge(self, n: fx.Node, flows: list[tuple[str, Flow]], op: str, out: Shape, desc: str) -> None:
        """A merge row: ``concat``, or an element-wise ``add``, ``sub``, ``mul`` or ``div`` of equal shapes."""
        name = self._name(n)
        new = self._calc.merge(name, self.where(n), ("node", n.name), list(flows), op)
        if new is None:
            self.stop(n, self._calc.problems[-1].message, desc)
        if op not in ("add", "concat"):
            self._spec_notes[name] = f"an element-wise {op} of two tensors (the spec merges by add or concat)"
        self._spec_layers[name] = MERGE
        self.check_shape(n, new.shape, out, desc)
        self._count_params(n, name, op, desc)
        self.flows[n] = new

    def alias(self, n: fx.Node, flow: Flow) -> None:
        """Node ``n`` gives the values of ``flow`` (no row of its own)."""
        self.flows[n] = flow

    # -- diagnostics -----------------------------------------------------------------------------------------
    def where(self, n: fx.Node) -> str:
        return source_line(n)

    def diagnose(self, severity: Literal["info", "warning"], code: str, n: fx.Node, message: str) -> None:
        """A diagnostic at node ``n``'s line, in order with the calculator's own."""
        self._calc.add_diagnostic(Diagnostic(severity, code, self.where(n), message))

    def stop(self, n: fx.Node, message: str, desc: str | None = None) -> NoReturn:
        what = f" ({desc})" if desc else ""
        raise CannotFollow(Diagnostic("error", "cannot-follow", self.where(n), f"'{n.name}'{what} {message}"))

    def check_shape(self, n: fx.Node, computed: Shape, actual: Shape, desc: str) -> None:
        if not shapes_match(computed, actual):
            self.stop(n, f"PyTorch gives {describe_shape(actual)} where rfcalc computes {describe_shape(computed)}; "
                         f"rfcalc cannot follow this call", desc)

    # -- the result ------------------------------------------------------------------------------------------
    def finish(self, output: Any, stopped: Diagnostic | None) -> Inspection:
        """The inspection: ``output`` is the graph's output argument, ``stopped`` why the walk stopped (if)."""
        report = self._calc.report(self.label, self.shape)
        rows, diagnostics = report.rows, list(report.diagnostics)
        if not rows:
            if stopped is not None:
                raise RfcalcError(f"{stopped.path}: {stopped.message}")
            raise RfcalcError(f"{self.label}: no operation of the forward depends on its input")
        if stopped is None:
            diagnostics.extend(self._output_notes(output, rows))
            total = sum(p.numel() for p in self.root.parameters())
            counted = report.params
            if total != counted:
                diagnostics.append(Diagnostic(
                    "warning", "unused-parameters", self.label,
                    f"{self.label} has {total:,} parameters but the traced forward uses {counted:,}; the table "
                    f"counts what the forward uses (unused submodules, or parameters only transformed before use)"))
        else:
            diagnostics.append(stopped)
        report = Report(self.label, self.shape, rows, tuple(diagnostics))
        return Inspection(report, stopped is None, dict(self._spec_layers), dict(self._spec_notes),
                          dict(self._row_nodes))

    def _output_notes(self, output: Any, rows: Sequence[Row]) -> list[Diagnostic]:
        flows = [self.flows[n] for n in _nodes_in(output) if n in self.flows]
        if len(flows) > 1:
            return [Diagnostic("info", "several-outputs", self.label,
                               f"{self.label} returns {len(flows)} tensors; the totals describe the last row "
                               f"'{rows[-1].name}'")]
        if flows and flows[0].producer != rows[-1].name:
            return [Diagnostic("warning", "output-not-last", self.label,
                               f"{self.label} returns the output of '{flows[0].producer}', but the last row computed "
                               f"is '{rows[-1].name}'; the totals describe the last row")]
        return []

    # -- names and parameters --------------------------------------------------------------------------------
    def _name(self, n: fx.Node) -> str:
        if n.op == "call_module":
            base = str(n.target)
            calls = self._module_calls.get(base, 0)
            self._module_calls[base] = calls + 1
            name = base if calls == 0 else f"{base}_{calls}"
        else:
            name = n.name
        candidate, k = name, 1
        while candidate in self._used_names:
            candidate = f"{name}_{k}"
            k += 1
        self._used_names.add(candidate)
        self._row_nodes[candidate] = n.name
        return candidate

    def _count_params(self, n: fx.Node, name: str, op: str, desc: str) -> None:
        """Set the rows' parameters to what PyTorch counts (shared modules and parameters count once)."""
        tensors: list[torch.Tensor] = []
        if n.op == "call_module":
            tensors.extend(self.gm.get_submodule(str(n.target)).parameters())
        for i in n.all_input_nodes:
            value = self._walker.value(i)
            if isinstance(value, nn.Parameter):
                tensors.append(value)
        fresh = [t for t in tensors if id(t) not in self._seen]
        self._seen.update(id(t) for t in tensors)
        count = sum(t.numel() for t in fresh)
        computed = self._calc.override_params(name, count)
        if computed == count:
            return
        if len(fresh) < len(tensors):
            self.diagnose("info", "shared-parameters", n,
                          f"'{name}' ({desc}) reuses parameters used before; PyTorch counts them once, at their "
                          f"first use")
        elif op in REGISTRY:
            self.diagnose("info", "parameters", n,
                          f"'{name}' ({desc}) has {count:,} parameters where the spec's {op} would have {computed:,}")


def shapes_match(computed: Shape, actual: Shape) -> bool:
    """Equal, or a vector (C,) that PyTorch still holds as C x 1 x 1 (a global pool before its flatten)."""
    return tuple(computed) == tuple(actual) or (len(computed) == 1 and tuple(actual) == (computed[0], 1, 1))


def describe_shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape) if len(shape) != 1 else f"a vector of {shape[0]}"


def _nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda a: found.append(a) or a)  # type: ignore[func-returns-value]
    return found
