"""``rfcalc inspect``: the exact, branch-aware table of an ``nn.Module`` that already exists as PyTorch code.

The module's forward is traced with :mod:`torch.fx` and the same :class:`~rfcalc.calculator.Calculator`
that computes a spec's table walks the traced graph: no second receptive-field implementation. One
forward pass of a random input of the given shape (batch 2, eval mode, no grad) runs alongside the walk,
so every node's real output shape is known; every row the calculator writes is checked against it.

How nodes map (the lookup table is :mod:`rfcalc.inspect_map`):

- ``nn.Conv2d`` / ``F.conv2d``, max and average pools (``nn`` and functional), batch/group norm,
  ReLU/ReLU6/LeakyReLU/GELU/SiLU, dropout, ``nn.Linear`` / ``F.linear``: the spec op of the same meaning;
- global pools (``AdaptiveAvgPool2d(1)``, ``F.adaptive_*_pool2d(x, 1)``, ``x.mean((2, 3))``, ``amax``):
  ``gap`` when their result is only flattened to a vector (or is one already), else a pool whose kernel
  is the whole map; adaptive pools whose output divides the input: the exact ordinary pool;
- ``torch.cat`` along channels: a ``concat`` merge; ``+`` / ``torch.add`` of two computed tensors: an ``add``
  merge (``-``, ``*``, ``/`` likewise, under their own op name); with a constant: a pass-through row;
- flatten / view / reshape / squeeze to a vector: ``flatten``;
- known element-wise modules and functions without a spec op (sigmoid, hardswish, instance norm, ...):
  pass-through rows under their own name;
- anything else with one computed input: if it keeps the spatial size and a change at one pixel only
  moves that pixel's outputs (checked by running it twice), it passes the RF through, with an ``info``
  diagnostic; ops on vectors likewise. Anything else changes the spatial layout in a way the calculator
  cannot know (upsampling, transposed convs, padding, crops, spatial softmax, ...).

**Choice for the unknown:** the report stops at the first node the calculator cannot follow. It holds the
rows computed so far plus one ``error`` diagnostic naming that node and why;
:func:`inspect_module` raises :class:`~rfcalc.errors.RfcalcError` with that one line unless
``partial=True`` (``rfcalc inspect`` prints the partial table and exits 2; ``rfcalc check`` exits 2).
No number is ever guessed.

A broadcast product or sum with a 1x1 map from a global pool (squeeze-and-excitation) keeps the local
window of the full-size operand and adds a ``global-context`` warning: through the 1x1 map every unit
also depends on the whole input, which no window can describe.

Parameters are what PyTorch counts: a module or parameter used twice counts once (at its first use,
with an ``info`` diagnostic); parameters the forward never uses give a ``warning``.
"""
from __future__ import annotations

import math
import operator
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rfcalc.calculator import Calculator, Flow, fmt_shape
from rfcalc.errors import RfcalcError
from rfcalc.graph import Prim
from rfcalc.inspect_actions import (Action, AdaptivePool, AsLayer, Binary, Broadcast, Call, Concat, GlobalPool,
                                    Pointwise, Reshape, Unsupported)
from rfcalc.inspect_map import FUNCTIONS, METHODS, bind, is_reshape, module_action, rfcalc_leaf_types
from rfcalc.report import INPUT_GEOMETRY, Diagnostic, Report, Row, Shape
from rfcalc.spec_models import OPS, FlattenLayer, GapLayer, PoolLayer, PrimLayer
from rfcalc.yaml_source import Source

_RESERVED = frozenset(OPS) | {"concat", "add"}
SKIP = "skip"
BATCH = 2  # two samples, so that an op that drops the batch dimension (x.squeeze()) shows it  # spec_layers value of a row that is the identity in a spec (contiguous, a same-shape view)
_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass(frozen=True)
class Inspection:
    """The report of a traced module plus what ``--to-spec`` needs.

    ``complete`` is False when the walk stopped at a node it cannot follow (the last diagnostic says
    which). ``spec_layers`` maps row names to the spec layer each row was computed from (``"merge"``
    for merges, :data:`SKIP` for identities); ``spec_notes`` says why a row has no exact spec op;
    ``row_nodes`` maps row names to the torch.fx node whose output the row describes.
    """

    report: Report
    complete: bool
    spec_layers: dict[str, PrimLayer | str] = field(default_factory=dict)
    spec_notes: dict[str, str] = field(default_factory=dict)
    row_nodes: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> Diagnostic | None:
        return next((d for d in self.report.diagnostics if d.severity == "error"), None)


def parse_shape(input_shape: Any) -> tuple[int, int, int]:
    """(C, H, W) from a sequence of three positive ints or text like ``3x32x32``; one-line error otherwise."""
    if isinstance(input_shape, str):
        from rfcalc.cli_inspect import parse_input_shape

        return parse_input_shape(input_shape)
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise RfcalcError(f"input_shape must be (C, H, W), e.g. (3, 32, 32), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        hint = " (without the batch dimension)" if len(shape) == 4 else ""
        raise RfcalcError(f"input_shape must be three positive sizes (C, H, W){hint}, got {tuple(input_shape)!r}")
    return shape  # type: ignore[return-value]


def inspect_module(module: nn.Module, input_shape: Any, *, name: str | None = None,
                   partial: bool = False) -> Report:
    """The report of ``module`` on a ``(C, H, W)`` input: the same rows, JSON and meaning as ``analyze``.

    Raises :class:`RfcalcError` (one line) when tracing fails or when a node changes the spatial layout in
    a way the calculator cannot know; with ``partial=True`` returns the rows up to that node instead,
    with an ``error`` diagnostic naming it.
    """
    inspection = trace_module(module, input_shape, name=name)
    if not inspection.complete and not partial:
        error = inspection.error
        assert error is not None
        raise RfcalcError(f"{error.path}: {error.message}")
    return inspection.report


def trace_module(module: nn.Module, input_shape: Any, *, name: str | None = None) -> Inspection:
    """Trace ``module`` and walk its graph with the calculator (see the module docstring)."""
    if not isinstance(module, nn.Module):
        raise RfcalcError(f"inspect needs a torch.nn.Module, got {type(module).__name__}")
    shape = parse_shape(input_shape)
    label = name or type(module).__name__
    gm = _trace(module, label)
    required = [n for n in gm.graph.nodes if n.op == "placeholder" and not n.args]
    if len(required) != 1:
        raise RfcalcError(f"{label}.forward takes {len(required)} required inputs; rfcalc inspects modules "
                          f"with exactly one image input")
    states = [(m, m.training) for m in module.modules()]
    walker = _Walker(gm, _Inspector(gm, module, shape, label))
    try:
        module.eval()
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        dtype = first.dtype if first is not None else torch.float32
        device = first.device if first is not None else torch.device("cpu")
        x = torch.rand((BATCH, *shape), generator=torch.Generator().manual_seed(0)).to(dtype=dtype, device=device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the user's own warnings on a random input are noise here
            try:
                walker.run(x)
            except _Stop as stop:
                walker.inspector.stopped = stop.diagnostic
            except RfcalcError:
                raise
            except Exception as exc:  # the user's forward failed on this input
                where = walker.current.name if walker.current is not None else "?"
                raise RfcalcError(f"{label}: the forward pass on a {'x'.join(map(str, shape))} input failed at "
                                  f"node '{where}': {_first_line(exc)}") from None
    finally:
        for m, training in states:
            m.train(training)
    return walker.inspector.finish()


class _Tracer(fx.Tracer):
    """torch.fx's tracer, recording where in the user's code each node comes from; rfcalc's own
    ``GlobalPool`` and ``Ultimus`` stay whole."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True
        self._own = rfcalc_leaf_types()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self._own) or super().is_leaf_module(m, module_qualified_name)


def traced(module: nn.Module) -> fx.GraphModule:
    """The torch.fx graph module rfcalc walks (same tracer, same node names as :func:`trace_module`)."""
    return _trace(module, type(module).__name__)


def _trace(module: nn.Module, label: str) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:
        text = _first_line(exc)
        why = " (data-dependent control flow in forward)" if "control flow" in text else ""
        raise RfcalcError(f"cannot trace {label} with torch.fx{why}: {text}") from None
    return fx.GraphModule(tracer.root, graph)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Stop(Exception):
    """The walk cannot go on; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__()
        self.diagnostic = diagnostic


class _Walker(fx.Interpreter):
    """Runs the graph node by node and hands each node, with its real inputs and output, to the inspector."""

    def __init__(self, gm: fx.GraphModule, inspector: _Inspector) -> None:
        super().__init__(gm)
        self.extra_traceback = False
        self.inspector = inspector
        inspector.walker = self
        self.current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        result = super().run_node(n)
        self.inspector.visit(n, result)
        return result

    def replay(self, n: fx.Node, args: Any, kwargs: Any) -> Any:
        return getattr(self, n.op)(n.target, args, kwargs)


@dataclass
class _Pending:
    """A node that returns several tensors (``torch.chunk``, ``split``): rows come at its ``getitem``."""

    flow: Flow
    replay: Callable[[torch.Tensor], Any]
    desc: str


class _Inspector:
    def __init__(self, gm: fx.GraphModule, root: nn.Module, shape: tuple[int, int, int], label: str) -> None:
        self.gm = gm
        self.root = root
        self.shape = shape
        self.label = label
        self.walker: _Walker = None  # type: ignore[assignment]
        self.calc = Calculator(Source("<module>"))
        self.flows: dict[fx.Node, Flow] = {}
        self.pending: dict[fx.Node, _Pending] = {}
        self.seen: set[int] = set()
        self.module_calls: dict[str, int] = {}
        self.used_names: set[str] = {"input"}
        self.spec_layers: dict[str, PrimLayer | str] = {}
        self.spec_notes: dict[str, str] = {}
        self.row_nodes: dict[str, str] = {}
        self.got_input = False
        self.output: Any = None
        self.stopped: Diagnostic | None = None

    # -- results ---------------------------------------------------------------------------------------------
    def finish(self) -> Inspection:
        diagnostics = list(self.calc.diagnostics)
        rows = self.calc.rows
        if not rows:
            if self.stopped is not None:
                raise RfcalcError(f"{self.stopped.path}: {self.stopped.message}")
            raise RfcalcError(f"{self.label}: no operation of the forward depends on its input")
        if self.stopped is None:
            diagnostics.extend(self._output_notes(rows))
            total = sum(p.numel() for p in self.root.parameters())
            counted = sum(r.params for r in rows)
            if total != counted:
                diagnostics.append(Diagnostic(
                    "warning", "unused-parameters", self.label,
                    f"{self.label} has {total:,} parameters but the traced forward uses {counted:,}; the table "
                    f"counts what the forward uses (unused submodules, or parameters only transformed before use)"))
        else:
            diagnostics.append(self.stopped)
        report = Report(self.label, self.shape, tuple(rows), tuple(diagnostics))
        return Inspection(report, self.stopped is None, dict(self.spec_layers), dict(self.spec_notes),
                          dict(self.row_nodes))

    def _output_notes(self, rows: list[Row]) -> list[Diagnostic]:
        flows = [self.flows[n] for n in _nodes_in(self.output) if n in self.flows]
        if len(flows) > 1:
            return [Diagnostic("info", "several-outputs", self.label,
                               f"{self.label} returns {len(flows)} tensors; the totals describe the last row "
                               f"'{rows[-1].name}'")]
        if flows and flows[0].producer != rows[-1].name:
            return [Diagnostic("warning", "output-not-last", self.label,
                               f"{self.label} returns the output of '{flows[0].producer}', but the last row computed "
                               f"is '{rows[-1].name}'; the totals describe the last row")]
        return []

    # -- the walk --------------------------------------------------------------------------------------------
    def visit(self, n: fx.Node, result: Any) -> None:
        if n.op == "placeholder":
            if not self.got_input:
                self.got_input = True
                self.flows[n] = Flow(self.shape, INPUT_GEOMETRY, "input")
            return
        if n.op == "get_attr":
            return
        if n.op == "output":
            self.output = n.args[0]
            return
        sources = [i for i in n.all_input_nodes if i in self.flows or i in self.pending]
        if not sources:
            return  # computed from constants only
        if n.op == "call_function" and n.target is operator.getitem and n.args[0] in self.pending:
            self._pending_item(n, result)
            return
        if isinstance(result, (tuple, list)) and result and all(isinstance(r, torch.Tensor) for r in result):
            self._tuple_result(n, sources)
            return
        if not isinstance(result, torch.Tensor):
            return  # sizes, shapes and other plain values
        if any(s in self.pending for s in sources):
            self._stop(n, "uses a tuple of tensors directly; rfcalc follows its items (x[0], x[1], ...) only")
        self._node(n, result)

    def _node(self, n: fx.Node, result: torch.Tensor) -> None:
        if result.dim() == 0 or result.shape[0] != BATCH:
            self._stop(n, f"returns a tensor of shape {tuple(result.shape)} without the batch dimension first")
        out = tuple(int(s) for s in result.shape[1:])
        desc, action, call = self._classify(n)
        if isinstance(action, Unsupported):
            self._stop(n, f"{action.reason}", desc)
        if isinstance(action, Concat):
            self._concat(n, action, call, out, desc)
        elif isinstance(action, Binary):
            self._binary(n, action, call, out, desc)
        elif isinstance(action, Broadcast):
            self._broadcast(n, call, out, desc)
        else:
            flow = self._single_flow(n, desc)
            if isinstance(action, AsLayer):
                self._layer(n, action.layer, flow, out, desc, action.spec_note)
            elif isinstance(action, Pointwise):
                self._opaque(n, action.op, flow, out, desc, note=f"{action.op} has no spec op", same=True)
            elif isinstance(action, (GlobalPool, AdaptivePool)):
                self._pool(n, action, flow, out, desc)
            elif isinstance(action, Reshape):
                self._reshape(n, flow, out, desc)
            else:
                self._generic(n, flow, out, desc)

    def _classify(self, n: fx.Node) -> tuple[str, Action | None, Call | None]:
        args, kwargs = self.walker.fetch_args_kwargs_from_env(n)
        if n.op == "call_module":
            module = self.gm.get_submodule(str(n.target))
            desc, action = module_action(module)
            return desc, action, Call(desc, module)
        if n.op == "call_function":
            entry = FUNCTIONS.get(n.target)
            desc = getattr(n.target, "__name__", str(n.target))
        else:
            entry = METHODS.get(str(n.target))
            desc = f".{n.target}()"
        if entry is None:
            return desc, None, None
        signature, handler = entry
        values = bind(signature, args, kwargs)
        if values is None:
            return desc, None, None
        call = Call(desc, None, values)
        call.values["__nodes__"] = bind(signature, tuple(n.args), dict(n.kwargs))
        return desc, handler(call), call

    # -- actions ---------------------------------------------------------------------------------------------
    def _layer(self, n: fx.Node, layer: PrimLayer, flow: Flow, out: Shape, desc: str, note: str | None) -> None:
        if layer.op == "linear" and len(flow.shape) != 1:
            self._stop(n, f"applies a linear layer to the last axis of a {fmt_shape(flow.shape)} feature map, "
                          f"mixing whole rows of pixels; rfcalc follows linear layers on vectors only", desc)
        name = self._name(n)
        start = len(self.calc.rows)
        new = self.calc.prim(Prim(name, self._where(n), ("node", n.name), layer), flow)
        if new is None:
            self._stop(n, self.calc.problems[-1].message, desc)
        self._check_shape(n, new.shape, out, desc)
        self._params(n, start, desc)
        self.spec_layers[name] = layer
        if note:
            self.spec_notes[name] = note
        self.flows[n] = new

    def _opaque(self, n: fx.Node, op: str, flow: Flow, out: Shape, desc: str, note: str | None,
                same: bool = False, extra: tuple[str, ...] = (), spec: str | None = None) -> str:
        """A row that passes the RF through (the calculator's rule for element-wise ops) with its own op name."""
        if same:
            self._check_shape(n, flow.shape, out, desc)
            out = flow.shape
        name = self._name(n)
        op = f"{op}_op" if op in _RESERVED else op
        self.calc.handlers.setdefault(op, _opaque_handler)
        start = len(self.calc.rows)
        layer = _OpaqueLayer(op, out, extra)
        new = self.calc.prim(Prim(name, self._where(n), ("node", n.name), layer), flow)  # type: ignore[arg-type]
        assert new is not None
        self._params(n, start, desc)
        if spec is not None:
            self.spec_layers[name] = spec
        if note:
            self.spec_notes[name] = note
        self.flows[n] = new
        return name

    def _pool(self, n: fx.Node, action: GlobalPool | AdaptivePool, flow: Flow, out: Shape, desc: str) -> None:
        if len(flow.shape) != 3:
            self._stop(n, f"pools a {fmt_shape(flow.shape)}", desc)
        c, h, w = flow.shape
        oh, ow = (out[1], out[2]) if len(out) == 3 else (1, 1)
        if isinstance(action, AdaptivePool) and (oh, ow) != (1, 1):
            if h % oh or w % ow:
                self._stop(n, f"adaptively pools {h}x{w} to {oh}x{ow}, with windows of varying size; rfcalc follows "
                              f"adaptive pools whose output size divides the input size", desc)
            k = (h // oh, w // ow)
            self._layer(n, PoolLayer(op=f"{action.mode}pool", k=k, stride=k), flow, out, desc, None)
            return
        if len(out) == 1 or all(_flattens(u, self.gm) for u in n.users):
            self._layer(n, GapLayer(op="gap", mode=action.mode), flow, out, desc, None)
        else:
            self._layer(n, PoolLayer(op=f"{action.mode}pool", k=(h, w), stride=(h, w)), flow, out, desc, None)

    def _reshape(self, n: fx.Node, flow: Flow, out: Shape, desc: str) -> None:
        if len(out) == 1 and out[0] == math.prod(flow.shape):
            self._layer(n, FlattenLayer(op="flatten"), flow, out, desc, None)
        elif len(flow.shape) == 1 and out == (flow.shape[0], 1, 1):
            self._opaque(n, _op_name(desc), flow, out, desc, note="a vector viewed as a 1x1 map has no spec op")
        elif _same_shape(flow.shape, out):
            self._opaque(n, _op_name(desc), flow, out, desc, None, same=True, spec=SKIP)
        else:
            self._stop(n, f"reshapes {fmt_shape(flow.shape)} to {_fmt(out)}; rfcalc follows reshapes that flatten "
                          f"to a vector only", desc)

    def _concat(self, n: fx.Node, action: Concat, call: Call | None, out: Shape, desc: str) -> None:
        nodes = (call.values["__nodes__"] or {}).get(action.tensors) if call is not None else None
        if not isinstance(nodes, (list, tuple)) or not all(isinstance(t, fx.Node) and t in self.flows for t in nodes):
            self._stop(n, "concatenates tensors that are not all computed from the input", desc)
        flows = [self.flows[t] for t in nodes]
        rank = len(flows[0].shape) + 1
        if any(len(f.shape) + 1 != rank for f in flows) or action.dim % rank != 1:
            self._stop(n, f"concatenates along dim {action.dim}; rfcalc follows concatenation along the channel "
                          f"dim (1) only", desc)
        self._merge(n, [(f"'{f.producer}'", f) for f in flows], "concat", out, desc)

    def _binary(self, n: fx.Node, action: Binary, call: Call | None, out: Shape, desc: str) -> None:
        nodes = call.values["__nodes__"] if call is not None else None
        operands = [nodes.get(k) if nodes else None for k in action.operands]
        flows = [self.flows.get(o) if isinstance(o, fx.Node) else None for o in operands]
        live = [f for f in flows if f is not None]
        if not live:
            self._stop(n, "combines tensors computed from the input in a way rfcalc cannot follow", desc)
        if len(live) == 1:
            self._opaque(n, f"{action.op}_const", live[0], out, desc, same=True,
                         note=f"{action.op} with a constant has no spec op")
            return
        a, b = live
        if _same_shape(a.shape, out) and _same_shape(b.shape, out):
            self._merge(n, [(f"'{a.producer}'", a), (f"'{b.producer}'", b)], action.op, out, desc)
            return
        big, small = (a, b) if _same_shape(a.shape, out) else (b, a)
        if len(big.shape) == 3 and _same_shape(big.shape, out) and _is_global(small.shape, big.shape):
            name = self._opaque(n, action.op, big, out, desc, same=True, extra=(small.producer,),
                                note=f"a broadcast {action.op} with a 1x1 map has no spec op")
            self.calc.diagnostics.append(Diagnostic(
                "warning", "global-context", self._where(n),
                f"'{name}' ({desc}) combines '{big.producer}' with the {_fmt(small.shape)} map '{small.producer}': "
                f"through it every unit also depends on the whole input; the table keeps the local window of "
                f"'{big.producer}'"))
            return
        self._stop(n, f"broadcasts {_fmt(a.shape)} against {_fmt(b.shape)}; rfcalc follows element-wise ops on "
                      f"equal shapes, or with a 1x1 map", desc)

    def _broadcast(self, n: fx.Node, call: Call | None, out: Shape, desc: str) -> None:
        """``y.expand_as(x)``: y's values at x's positions. A 1x1 map stays 1x1 for the calculator (its consumer
        is then a broadcast with a global context); a map that already has the size is unchanged."""
        nodes = call.values["__nodes__"] if call is not None else None
        source = nodes.get("input") if nodes else None
        flow = self.flows.get(source) if isinstance(source, fx.Node) else None
        if flow is None:
            self._stop(n, "expands a tensor that is not computed from the input", desc)
        if len(flow.shape) == 3 and len(out) == 3 and flow.shape[0] == out[0] and \
                (flow.shape[1:] == (1, 1) or flow.shape[1:] == out[1:]):
            self.flows[n] = flow
            return
        self._stop(n, f"expands {fmt_shape(flow.shape)} to {_fmt(out)}; rfcalc follows the expansion of 1x1 maps "
                      f"only", desc)

    def _merge(self, n: fx.Node, flows: list[tuple[str, Flow]], op: str, out: Shape, desc: str) -> None:
        name = self._name(n)
        start = len(self.calc.rows)
        new = self.calc.merge(name, self._where(n), ("node", n.name), list(flows), "add" if op != "concat" else op)
        if new is None:
            self._stop(n, self.calc.problems[-1].message, desc)
        if op not in ("add", "concat"):
            self.calc.rows[start] = replace(self.calc.rows[start], op=op)
            self.spec_notes[name] = f"an element-wise {op} of two tensors (the spec merges by add or concat)"
        self.spec_layers[name] = "merge"
        self._check_shape(n, new.shape, out, desc)
        self._params(n, start, desc)
        self.flows[n] = new

    def _generic(self, n: fx.Node, flow: Flow, out: Shape, desc: str) -> None:
        source = next(i for i in n.all_input_nodes if i in self.flows)
        self._generic_with(n, flow, out, desc, self._replay(n, source))

    def _generic_with(self, n: fx.Node, flow: Flow, out: Shape, desc: str,
                      replay: Callable[[torch.Tensor], Any]) -> None:
        note = f"{desc} is not in rfcalc's table and has no spec op"
        if len(flow.shape) == 3 and len(out) == 3 and out[1:] == flow.shape[1:]:
            if not _is_local(replay, flow.shape, self._dtype(), self._device()):
                self._stop(n, "keeps the spatial size but mixes neighbouring pixels in a way the calculator "
                              "cannot know (a change at one pixel moves other outputs)", desc)
            name = self._opaque(n, _op_name(desc), flow, out, desc, note=note)
            self.calc.diagnostics.append(Diagnostic(
                "info", "pointwise-op", self._where(n),
                f"'{name}' ({desc}) is not in rfcalc's table; it keeps the spatial size and a change at one pixel "
                f"moves only that pixel's outputs, so it passes the RF through"))
            return
        if len(flow.shape) == 1 and len(out) == 1:
            name = self._opaque(n, _op_name(desc), flow, out, desc, note=note)
            self.calc.diagnostics.append(Diagnostic(
                "info", "vector-op", self._where(n),
                f"'{name}' ({desc}) is not in rfcalc's table; it works on vectors, so it passes the RF through"))
            return
        self._stop(n, f"changes the shape from {fmt_shape(flow.shape)} to {_fmt(out)} in a way the calculator "
                      f"cannot know", desc)

    def _tuple_result(self, n: fx.Node, sources: list[fx.Node]) -> None:
        if len(sources) != 1 or sources[0] not in self.flows:
            self._stop(n, "returns several tensors computed from several inputs")
        desc, action, _ = self._classify(n)
        if isinstance(action, Unsupported):
            self._stop(n, action.reason, desc)
        self.pending[n] = _Pending(self.flows[sources[0]], self._replay(n, sources[0]), desc)

    def _pending_item(self, n: fx.Node, result: Any) -> None:
        pending = self.pending[n.args[0]]  # type: ignore[index]
        index = n.args[1]
        if not isinstance(result, torch.Tensor) or result.dim() == 0 or result.shape[0] != BATCH:
            self._stop(n, f"takes item {index!r} of {pending.desc}, which is not a batch of tensors")
        out = tuple(int(s) for s in result.shape[1:])
        self._generic_with(n, pending.flow, out, pending.desc, lambda x: pending.replay(x)[index])

    # -- helpers ---------------------------------------------------------------------------------------------
    def _single_flow(self, n: fx.Node, desc: str) -> Flow:
        sources = [i for i in n.all_input_nodes if i in self.flows]
        if len(sources) != 1:
            self._stop(n, "takes several tensors computed from the input; rfcalc follows torch.cat and "
                          "+, -, *, / for that", desc)
        return self.flows[sources[0]]

    def _replay(self, n: fx.Node, source: fx.Node) -> Callable[[torch.Tensor], Any]:
        """Re-runs node ``n`` with ``x`` in place of ``source`` (other arguments as in the real forward)."""
        values = {i: self.walker.env[i] for i in n.all_input_nodes}

        def run(x: torch.Tensor) -> Any:
            def sub(a: fx.Node) -> Any:
                return x if a is source else values[a]

            return self.walker.replay(n, fx.node.map_arg(n.args, sub), fx.node.map_arg(n.kwargs, sub))

        return run

    def _params(self, n: fx.Node, start: int, desc: str) -> None:
        """Set the rows' parameters to what PyTorch counts (shared modules and parameters count once)."""
        tensors: list[torch.Tensor] = []
        if n.op == "call_module":
            tensors.extend(self.gm.get_submodule(str(n.target)).parameters())
        for i in n.all_input_nodes:
            value = self.walker.env.get(i)
            if isinstance(value, nn.Parameter):
                tensors.append(value)
        fresh = [t for t in tensors if id(t) not in self.seen]
        self.seen.update(id(t) for t in tensors)
        count = sum(t.numel() for t in fresh)
        rows = self.calc.rows[start:]
        computed = sum(r.params for r in rows)
        if computed == count:
            return
        self.calc.rows[start] = replace(rows[0], params=count)
        for i in range(start + 1, len(self.calc.rows)):
            self.calc.rows[i] = replace(self.calc.rows[i], params=0)
        name = rows[0].name
        if len(fresh) < len(tensors):
            self.calc.diagnostics.append(Diagnostic(
                "info", "shared-parameters", self._where(n),
                f"'{name}' ({desc}) reuses parameters used before; PyTorch counts them once, at their first use"))
        elif rows[0].op in ("conv", "linear", "bn", "gn", "ln"):
            self.calc.diagnostics.append(Diagnostic(
                "info", "parameters", self._where(n),
                f"'{name}' ({desc}) has {count:,} parameters where the spec's {rows[0].op} would have {computed:,}"))

    def _check_shape(self, n: fx.Node, computed: Shape, actual: Shape, desc: str) -> None:
        if not _same_shape(computed, actual):
            self._stop(n, f"PyTorch gives {_fmt(actual)} where rfcalc computes {_fmt(computed)}; rfcalc cannot "
                          f"follow this call", desc)

    def _name(self, n: fx.Node) -> str:
        if n.op == "call_module":
            base = str(n.target)
            calls = self.module_calls.get(base, 0)
            self.module_calls[base] = calls + 1
            name = base if calls == 0 else f"{base}_{calls}"
        else:
            name = n.name
        candidate, k = name, 1
        while candidate in self.used_names:
            candidate = f"{name}_{k}"
            k += 1
        self.used_names.add(candidate)
        self.row_nodes[candidate] = n.name
        return candidate

    def _where(self, n: fx.Node) -> str:
        """``model.py:42``: the innermost line of the user's code that made this node (else the node name)."""
        frames = re.findall(r'File "([^"]+)", line (\d+)', n.stack_trace or "")
        for file, line in reversed(frames):
            if not os.path.abspath(file).startswith(_TORCH_DIR) and not file.startswith("<"):
                return f"{_display_path(file)}:{line}"
        return n.name

    def _stop(self, n: fx.Node, message: str, desc: str | None = None) -> None:
        what = f" ({desc})" if desc else ""
        raise _Stop(Diagnostic("error", "cannot-follow", self._where(n), f"'{n.name}'{what} {message}"))

    def _dtype(self) -> torch.dtype:
        first = next((p for p in self.root.parameters() if p.is_floating_point()), None)
        return first.dtype if first is not None else torch.float32

    def _device(self) -> torch.device:
        first = next(self.root.parameters(), None)
        return first.device if first is not None else torch.device("cpu")


@dataclass(frozen=True)
class _OpaqueLayer:
    """Stands in for a spec layer on rows of ops the spec has no name for."""

    op: str
    out_shape: Shape
    extra_inputs: tuple[str, ...] = ()


def _opaque_handler(node: Prim, flow: Flow) -> list[Row]:
    """Calculator handler for pass-through ops: rf, jump and start unchanged (contract section 2)."""
    layer: _OpaqueLayer = node.layer  # type: ignore[assignment]
    return [Row(node.name, layer.op, node.path, (flow.producer, *layer.extra_inputs), flow.shape, layer.out_shape,
                flow.geo, flow.geo, 0, 0)]


def _same_shape(computed: Shape, actual: Shape) -> bool:
    """Equal, or a vector (C,) that PyTorch still holds as C x 1 x 1 (a global pool before its flatten)."""
    return tuple(computed) == tuple(actual) or (len(computed) == 1 and tuple(actual) == (computed[0], 1, 1))


def _is_global(small: Shape, big: Shape) -> bool:
    return len(small) == 3 and small[1:] == (1, 1) and small[0] in (1, big[0])


def _flattens(user: fx.Node, gm: fx.GraphModule) -> bool:
    module = gm.get_submodule(str(user.target)) if user.op == "call_module" else None
    return is_reshape(user.op, user.target, module, tuple(user.args))


def _nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda a: found.append(a) or a)  # type: ignore[func-returns-value]
    return found


def _op_name(desc: str) -> str:
    return re.sub(r"[^a-z0-9_]", "", desc.lower().strip(".()")) or "op"


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape) if len(shape) != 1 else f"a vector of {shape[0]}"


def _display_path(file: str) -> str:
    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    return file if rel.startswith("..") else rel


def _is_local(replay: Callable[[torch.Tensor], Any], shape: Shape, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether changing one input pixel changes the output at that pixel only (tested at three pixels)."""
    c, h, w = shape
    x = (torch.rand((BATCH, c, h, w), generator=torch.Generator().manual_seed(1)) + 0.5).to(dtype=dtype, device=device)
    try:
        y0 = replay(x.clone())
        for ph, pw in {(h // 2, w // 2), (0, 0), (h - 1, w - 1)}:
            x1 = x.clone()
            x1[:, :, ph, pw] += 1.0
            y1 = replay(x1)
            if not isinstance(y1, torch.Tensor) or y1.shape != y0.shape or y1.dim() != 4:
                return False
            changed = (y1 != y0).any(dim=1).any(dim=0)
            changed[ph, pw] = False
            if bool(changed.any()):
                return False
    except Exception:
        return False
    return True
