"""The rows of ``rfcalc inspect``: what each followed fx node adds to the calculator's table. Needs torch.

:class:`Recorder` owns the :class:`~rfcalc.analysis.calculator.Calculator` of one inspection and, for every node
computed from the input, its flow (the calculator's shape, window and producing row) and its layout (what
each dimension of the real tensor holds: :mod:`rfcalc.inspection.layout`). It names rows after modules and
nodes, folds a conv's own norm / activation / dropout into it the way a spec's conv fields do
(``attached_to``), counts parameters the way PyTorch does (a module or parameter used twice counts once,
parameters reached through constant-only code such as ``class_token.expand(...)`` included), remembers which
spec layer each row came from for ``--to-spec``, and builds the :class:`Inspection` at the end. The walk
stops with :class:`CannotFollow` at the first node the calculator cannot follow.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, NoReturn, get_args

import torch
import torch.fx as fx
from torch import nn

from rfcalc.analysis.calculator import Calculator, Flow
from rfcalc.errors import RfcalcError
from rfcalc.inspection import layout as L
from rfcalc.inspection import segments as S
from rfcalc.inspection.result import MERGE, Inspection
from rfcalc.inspection.tracing import Walker, source_line
from rfcalc.ops.base import At, stage_number
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.merges import SpecMerge
from rfcalc.ops.registry import REGISTRY
from rfcalc.spec.graph import Prim
from rfcalc.spec.source import Source
from rfcalc.table import reach as R
from rfcalc.table.report import Diagnostic, DiagnosticCode, Geometry, Report, Row, Shape

# a pass-through row never takes the name of a spec op or merge (it gets "_op" appended)
_RESERVED = frozenset(REGISTRY) | frozenset(get_args(SpecMerge))


class CannotFollow(Exception):
    """The walk cannot go on; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__()
        self.diagnostic = diagnostic


class Recorder:
    """The calculator of one inspection, the flow and layout of every followed node, and what each row came
    from."""

    def __init__(self, gm: fx.GraphModule, root: nn.Module, walker: Walker, shape: Shape, label: str) -> None:
        self.gm = gm
        self.root = root
        self.shape = shape
        self.label = label
        self.flows: dict[fx.Node, Flow] = {}
        self.layouts: dict[fx.Node, L.Layout] = {}
        self._walker = walker
        self._calc = Calculator(Source("<module>"))
        self._seen: set[int] = set()
        self._module_calls: dict[str, int] = {}
        self._used_names: set[str] = {"input"}
        self._spec_layers: dict[str, LayerModel | str] = {}
        self._spec_notes: dict[str, str] = {}
        self._spec_dropped: dict[str, tuple[str, ...]] = {}
        self._row_nodes: dict[str, str] = {}
        self._node_rows: dict[str, str] = {}           # fx node name -> the row it recorded
        self._row_layouts: dict[str, L.Layout] = {}
        self._attach: dict[str, tuple[str, int, str]] = {}  # row -> (owner row, stage reached, owner kind)
        self._scopes = _scope_members(gm)
        self._merges = _scope_merges(gm)
        self.plain_maps: set[int] = set()             # ids of layouts made C x H x W here (kept alive below)
        self._maps: dict[tuple[int, tuple[int, ...]], L.Layout] = {}
        self.modules: dict[str, nn.Module] = dict(gm.named_modules())
        self.channels: dict[str, S.Channels] = {}     # row -> what its channels see, where not all the same
        self.notes: list[Diagnostic] = []              # said before the calculator's diagnostics (how it traced)
        self.hull: set[str] = set()                    # rows whose window holds every unit's, some see less

    # -- flows -----------------------------------------------------------------------------------------------
    def value(self, n: fx.Node) -> Any:
        """What node ``n`` gave in this forward pass."""
        return self._walker.value(n)

    def value_of(self, x: Any) -> Any:
        return self._walker.value(x) if isinstance(x, fx.Node) else x

    def reach(self, flow: Flow) -> R.Reach:
        return self._calc.reach(flow)

    def unit_dims(self, flow: Flow) -> tuple[int, ...]:
        return self.reach(flow).dims

    # -- what channels see (rfcalc.inspection.segments) ---------------------------------------------------------
    def part(self, flow: Flow) -> S.Part:
        """What every channel of ``flow`` sees when they all see the same: its window and reach."""
        return S.Part(flow.geo, self.reach(flow))

    def channels_of(self, flow: Flow) -> S.Channels:
        return self.channels.get(flow.producer)

    def channel_count(self, flow: Flow) -> int:
        """The channels (features) of ``flow``: C of a map, D of tokens, the features per unit of a vector."""
        shape = flow.shape
        if len(shape) == 1:
            return shape[0] // max(1, R.unit_count(self.reach(flow)))
        return shape[0] if len(shape) == 3 else shape[-1]

    def _layer_channels(self, layer: LayerModel, flow: Flow, name: str) -> S.Channels:
        """What the channels of ``layer``'s output see, from its input's: element-wise ops and norms keep them,
        pools step each run, a grouped conv joins each group's, a conv with one group or a linear layer mixes
        all (every channel then sees the row's window)."""
        before = self.channels_of(flow)
        if before is None:
            return None
        definition = REGISTRY[layer.op]
        if definition.mixing == "all":
            return None
        if layer.op == "conv":
            groups_field = getattr(layer, "groups")
            groups = flow.shape[0] if groups_field == "depthwise" else int(groups_field)
            if getattr(layer, "separable", False) or groups == 1:
                return None
        if before is S.UNKNOWN or not isinstance(before, tuple):
            return before

        def step(part: S.Part) -> S.Part:
            rows = definition.calc(layer, At(name, name), Flow(flow.shape, part.geo, flow.producer))
            reach = part.reach
            for r in rows:
                reach = Calculator._step(r, reach)
            return S.Part(rows[-1].geo_out, reach)

        if layer.op == "conv":
            return S.grouped(before, groups, int(getattr(layer, "out")), step)
        if layer.op == "channel_shuffle":
            g = int(getattr(layer, "groups"))
            c = flow.shape[0]
            return S.reordered(before, [(k % g) * (c // g) + k // g for k in range(c)])
        if definition.mixing == "window":
            return S.mapped(before, step)
        return before

    def canonical(self, flow: Flow, real: Shape) -> L.Layout:
        """The layout of a tensor the calculator describes as ``flow`` and PyTorch holds as ``real``."""
        dims = self.unit_dims(flow)
        shape = flow.shape
        if len(shape) == 3:  # one layout per size: a feature axis's id matters within one tensor only
            layout = self._maps.get((shape[0], dims))
            if layout is None:
                layout = self._maps[(shape[0], dims)] = L.feature_map(shape[0], dims)
                self.plain_maps.add(id(layout))
            return layout
        if len(shape) == 1:
            units = R.unit_count(self.reach(flow))
            return L.flat(shape[0] // units, dims if units > 1 else (), len(real))
        if len(shape) == 2 and R.unit_count(self.reach(flow)) == shape[0]:
            return L.tokens(dims, shape[1])
        return tuple(L.channels(s) for s in real)

    def logical(self, layout: L.Layout, flow: Flow) -> Shape:
        """The calculator's shape of a tensor of ``layout`` whose units are ``flow``'s."""
        return logical_shape(layout, self.unit_dims(flow))

    # -- rows ------------------------------------------------------------------------------------------------
    def layer(self, n: fx.Node, layer: LayerModel, flow: Flow, real: Shape, desc: str, note: str | None,
              layout: L.Layout | None = None, dropped: tuple[str, ...] = ()) -> None:
        """The rows the calculator computes for ``layer`` (a spec layer) applied to ``flow``. ``layout`` is the
        real output's when it is not the calculator's own (a 1x1 conv computed by a Linear on channels-last).
        ``dropped``: the call's settings the spec layer does not hold (``--to-spec`` names them)."""
        name = self._name(n)
        attached = self._attach_target(n, layer.op, flow)
        new = self._calc.prim(Prim(name, self.where(n), ("node", n.name), layer), flow,
                              attached_to=attached[0] if attached else None)
        if new is None:
            self.stop(n, self._calc.problems[-1].message, desc)
        if layout is None:
            self.check_shape(n, new.shape, real, desc)
            layout = self.canonical(new, real)
        else:
            self.check_shape(n, L.shape(layout), real, desc)
            self.check_shape(n, new.shape, self.logical(layout, new), desc)
        self.channels[new.producer] = self._layer_channels(layer, flow, name)
        self._count_params(n, name, layer.op, desc)
        self._spec_layers[name] = layer
        if note:
            self._spec_notes[name] = note
        if dropped:
            self._spec_dropped[name] = dropped
        self._remember(n, name, new, layout, layer.op, attached)

    def row(self, n: fx.Node, op: str, flow: Flow, real: Shape, desc: str, note: str | None, *,
            layout: L.Layout, reach: R.Reach | None = None, extra: tuple[Flow, ...] = (), macs: int = 0,
            geo: Geometry | None = None, named: bool = False, channels: S.Channels | str = "auto",
            label: str | None = None) -> str:
        """A row of ``op`` with no calculator rule: it keeps the input's window (or ``geo``); its units see what
        ``reach`` says (default: what the input's units see, joined with ``extra``'s, a 1x1 map broadcast).
        A row never takes the name of a spec op unless ``named`` (a linear layer on tokens is a linear layer).
        ``channels``: what its channels see (:mod:`rfcalc.inspection.segments`); ``"keep"``: the input's (an
        element-wise op; joined with ``extra``'s reach, a gate's); ``"auto"``: unknown when the input's channels
        do not all see the same. ``label``: the row's name (made unique) instead of one after the node."""
        self.check_shape(n, L.shape(layout), real, desc)
        name = self._name(n) if label is None else self._unique(n, label)
        op = f"{op}_op" if op in _RESERVED and not named else op
        attached = self._attach_target(n, op, flow)
        if reach is None:  # computed once here, handed to the calculator
            reach = R.union([self.reach(flow), *(self.reach(e) for e in extra)])
        new = self._calc.passthrough_row(name, op, self.where(n), flow, out_shape=logical_shape(layout, reach.dims),
                                         extra_inputs=tuple(e.producer for e in extra), macs=macs, reach=reach,
                                         attached_to=attached[0] if attached else None, geo=geo)
        self.channels[name] = self._row_channels(flow, channels, extra)
        self._count_params(n, name, op, desc)
        if note:
            self._spec_notes[name] = note
        self._remember(n, name, new, layout, op, attached)
        return name

    def _row_channels(self, flow: Flow, channels: S.Channels | str, extra: tuple[Flow, ...]) -> S.Channels:
        before = self.channels_of(flow)
        if channels == "auto":
            return None if before is None else S.UNKNOWN
        if channels != "keep":
            return channels  # type: ignore[return-value]
        if not isinstance(before, tuple) or not extra:
            return before
        seen = [self.reach(e) for e in extra]
        return S.mapped(before, lambda p: S.Part(p.geo, R.union([p.reach, *seen])))

    def merge(self, n: fx.Node, flows: list[tuple[str, Flow]], op: str, real: Shape, desc: str,
              layout: L.Layout | None = None, logical: Shape | None = None) -> None:
        """A merge row: ``concat``, or an element-wise ``add``, ``sub``, ``mul`` or ``div`` of equal shapes."""
        name = self._name(n, merge=op in ("add", "concat"))
        new = self._calc.merge(name, self.where(n), ("node", n.name), list(flows), op, out_shape=logical)
        if new is None:
            self.stop(n, self._calc.problems[-1].message, desc)
        if op not in ("add", "concat"):
            self._spec_notes[name] = f"an element-wise {op} of two tensors (the spec merges by add or concat)"
        self._spec_layers[name] = MERGE
        if layout is None:
            self.check_shape(n, new.shape, real, desc)
            layout = self.canonical(new, real)
        else:
            self.check_shape(n, L.shape(layout), real, desc)
        ready = [f for _, f in flows]
        if op == "concat":
            self.channels[name] = S.concat([(self.channel_count(f), self.channels_of(f), self.part(f)) for f in ready])
        else:
            self.channels[name] = S.elementwise([(self.channels_of(f), self.part(f)) for f in ready],
                                                self.channel_count(new))
        self._count_params(n, name, op, desc)
        self._remember(n, name, new, layout, op, None)
        if op in ("add", "concat"):
            self._attach[name] = (name, 0, "merge")

    def alias(self, n: fx.Node, flow: Flow, layout: L.Layout | None = None) -> None:
        """Node ``n`` gives the values of ``flow`` (no row of its own), held as ``layout``."""
        self.flows[n] = flow
        if layout is not None:
            self.layouts[n] = layout

    def _remember(self, n: fx.Node, name: str, flow: Flow, layout: L.Layout, op: str,
                  attached: tuple[str, int, str] | None) -> None:
        if any(self.flows[i].producer in self.hull for i in n.all_input_nodes if i in self.flows):
            self.hull.add(name)
        self.flows[n] = flow
        self.layouts[n] = layout
        self._node_rows[n.name] = name
        self._row_layouts[flow.producer] = layout
        if attached is not None:
            self._attach[flow.producer] = attached
        elif op == "conv":
            self._attach[flow.producer] = (flow.producer, 0, "conv")

    def _attach_target(self, n: fx.Node, op: str, flow: Flow) -> tuple[str, int, str] | None:
        """The conv (or merge) row that ``op`` folds into, as the spec's conv fields (and a merge's ``act``)
        would write it: a norm, then an activation, then a dropout, each the only reader of the one before.
        Returns (that row, the stage ``op`` reaches, "conv" or "merge")."""
        definition = REGISTRY.get(op)
        if definition is None or definition.attach is None:
            return None
        state = self._attach.get(flow.producer)
        if state is None:
            return None
        owner, reached, kind = state
        stage = stage_number(definition.attach)
        if stage <= reached or (kind == "merge" and definition.attach != "act"):
            return None
        source = next((i for i in n.all_input_nodes if self.flows.get(i) is flow), None)
        if source is None or self._node_rows.get(source.name) != flow.producer or list(source.users) != [n]:
            return None
        if definition.attach == "dropout" and len(flow.shape) != 3:
            return None
        return owner, stage, kind

    # -- diagnostics -----------------------------------------------------------------------------------------
    def where(self, n: fx.Node) -> str:
        return source_line(n)

    def diagnose(self, severity: Literal["info", "warning"], code: DiagnosticCode, n: fx.Node, message: str
                 ) -> None:
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
        rows, diagnostics = report.rows, [*self.notes, *report.diagnostics]
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
        report = Report(self.label, self.shape, rows, tuple(diagnostics), report.reaches)
        return Inspection(report, stopped is None, dict(self._spec_layers), dict(self._spec_notes),
                          dict(self._row_nodes), dict(self._row_layouts), frozenset(self.hull),
                          dict(self._spec_dropped))

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
    def _name(self, n: fx.Node, merge: bool = False) -> str:
        if n.op == "call_module":
            base = str(n.target)
            calls = self._module_calls.get(base, 0)
            self._module_calls[base] = calls + 1
            name = base if calls == 0 else f"{base}_{calls}"
            parent = self._owner_module(n)
            if calls == 0 and parent is not None:
                name = parent
        else:
            name = self._scoped_name(n, merge)
        return self._unique(n, name)

    def _unique(self, n: fx.Node, name: str) -> str:
        candidate, k = name, 1
        while candidate in self._used_names:
            candidate = f"{name}_{k}"
            k += 1
        self._used_names.add(candidate)
        self._row_nodes[candidate] = n.name
        return candidate

    def add_params(self, name: str, tensors: Sequence[torch.Tensor]) -> None:
        """Row ``name`` also counts ``tensors`` (those not counted before: PyTorch counts a parameter once)."""
        fresh = list({id(t): t for t in tensors if id(t) not in self._seen}.values())
        self._seen.update(id(t) for t in tensors)
        if fresh:
            now = next(r.params for r in reversed(self._calc.rows) if r.name == name)
            self._calc.override_params(name, now + sum(t.numel() for t in fresh))

    def _scoped_name(self, n: fx.Node, merge: bool = False) -> str:
        """A function or method call: named after the module whose forward it is, when it is that module's only
        call (rfcalc's exported ``GlobalPool``: ``gap``, not ``mean``) or its only merge (an exported
        ``Residual``'s ``+``: ``res1``; a ``Parallel``'s ``torch.cat``: ``mix``); else after the node, qualified
        by that module (``blocks.0.se.sigmoid``, not ``sigmoid_2``)."""
        scope = _scope(n)
        if not scope:
            return n.name
        if scope not in self._module_calls and (self._scopes.get(scope) == [n] or (
                merge and self._merges.get(scope) == [n])):
            self._module_calls[scope] = 1
            return scope
        return f"{scope}.{_fx_base(n.name)}"

    def _owner_module(self, n: fx.Node) -> str | None:
        """For a conv module whose parent holds only it and its own norm / activation / dropout, called in a
        chain (torchvision's ``Conv2dNormActivation``, an exported ``nn.Sequential(conv, bn, relu)``): the
        parent's name, which the spec gives that conv (``c1`` with rows ``c1.bn``, ``c1.relu``)."""
        target = str(n.target)
        if "." not in target or not isinstance(self.modules[target], nn.Conv2d):
            return None
        parent = target.rsplit(".", 1)[0]
        members = self._scopes.get(parent, [])
        if not members or members[0] is not n:
            return None
        from rfcalc.inspection.lookup import attach_stage

        node, stage = n, 0
        for member in members[1:]:
            step = attach_stage(member, self.gm, self.modules)
            if step is None or step <= stage or list(node.users) != [member]:
                return None
            node, stage = member, step
        return parent if len(members) > 1 else None

    def _count_params(self, n: fx.Node, name: str, op: str, desc: str) -> None:
        """Set the rows' parameters to what PyTorch counts (shared modules and parameters count once)."""
        tensors: list[torch.Tensor] = []
        if n.op == "call_module":
            tensors.extend(self.modules[str(n.target)].parameters())
        tensors.extend(self._constant_params(n))
        fresh = list({id(t): t for t in tensors if id(t) not in self._seen}.values())  # once, also within a call
        self._seen.update(id(t) for t in tensors)
        count = sum(t.numel() for t in fresh)
        computed = self._calc.override_params(name, count)
        if computed == count:
            return
        if len(fresh) < len(tensors):
            self.diagnose("info", "shared-parameters", n,
                          f"'{name}' ({desc}) reuses parameters used before; PyTorch counts them once, at their "
                          f"first use")
        elif op in REGISTRY and computed:  # 0: a row the spec op does not describe (a linear on tokens)
            self.diagnose("info", "parameters", n,
                          f"'{name}' ({desc}) has {count:,} parameters where the spec's {op} would have {computed:,}")

    def _constant_params(self, n: fx.Node) -> list[torch.Tensor]:
        """Parameters that reach ``n`` through code that does not depend on the input (``self.scale``,
        ``self.weight[:, None, None]``, ``self.class_token.expand(b, -1, -1)``)."""
        found: list[torch.Tensor] = []
        stack, seen = [i for i in n.all_input_nodes if i not in self.flows], set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            value = self._walker.fetch_attr(str(node.target)) if node.op == "get_attr" else None
            if isinstance(value, nn.Parameter):
                found.append(value)
                continue
            if node.op == "call_module":
                found.extend(self.modules[str(node.target)].parameters())
            stack.extend(i for i in node.all_input_nodes if i not in self.flows)
        return found


def _scope(n: fx.Node) -> str | None:
    """The module whose forward made node ``n`` (its innermost ``nn_module_stack`` entry; "" for the root)."""
    stack = n.meta.get("nn_module_stack")
    if not stack:
        return None
    return str(list(stack.values())[-1][0]) if stack else None


_LAYOUT_ONLY = {"size", "dim", "numel", "contiguous", "permute", "transpose", "view", "reshape", "flatten",
                "squeeze", "unsqueeze", "getattr", "_assert", "expand", "expand_as"}


def _scope_members(gm: fx.GraphModule) -> dict[str, list[fx.Node]]:
    """Per module, the calls its forward made (not counting those that only read sizes or move data)."""
    members: dict[str, list[fx.Node]] = {}
    for n in gm.graph.nodes:
        op = n.op
        if op == "call_module":
            own = n.target
        elif op == "call_function" or op == "call_method":
            own = None
            if (n.target if op == "call_method" else getattr(n.target, "__name__", None)) in _LAYOUT_ONLY:
                continue
        else:
            continue
        stack = n.meta.get("nn_module_stack")
        if not stack:
            continue
        for path, _ in stack.values():
            if path != own:
                members.setdefault(path, []).append(n)
    return members


_MERGE_FUNCTIONS = {"add", "iadd", "cat", "concat", "concatenate"}


def _scope_merges(gm: fx.GraphModule) -> dict[str, list[fx.Node]]:
    """Per module, the ``+`` and ``torch.cat`` calls its own forward makes (not its submodules')."""
    merges: dict[str, list[fx.Node]] = {}
    for n in gm.graph.nodes:
        if n.op not in ("call_function", "call_method"):
            continue
        name = n.target if n.op == "call_method" else getattr(n.target, "__name__", "")
        if str(name).strip("_") not in _MERGE_FUNCTIONS or len(n.all_input_nodes) < 2 and name not in (
                "cat", "concat", "concatenate"):
            continue
        scope = _scope(n)
        if scope:
            merges.setdefault(scope, []).append(n)
    return merges


def _fx_base(name: str) -> str:
    """A node's name without the count torch.fx appends to repeated calls (``sigmoid_2`` -> ``sigmoid``)."""
    return re.sub(r"_\d+$", "", name) or name


def logical_shape(layout: L.Layout, unit_dims: Sequence[int]) -> Shape:
    """The calculator's shape of a tensor held as ``layout`` whose reach has ``unit_dims``: a feature map
    (channels first or last) is C x H x W, what a flatten made is a vector, anything else its real shape
    (a token sequence N x D)."""
    if L.is_map(layout, unit_dims) or L.is_channels_last(layout, unit_dims):
        c = 1
        for d in layout:
            c *= L.dim_size(tuple(f for f in d if f.kind == "c"))
        h, w = unit_dims if len(unit_dims) == 2 else (1, 1)
        return (c, h, w)
    if L.is_vector(layout):
        return (L.dim_size(layout[0]),)
    return L.shape(layout)


def shapes_match(computed: Shape, actual: Shape) -> bool:
    """Equal, or a vector (C,) that PyTorch still holds as C x 1 x 1 (a global pool before its flatten)."""
    return tuple(computed) == tuple(actual) or (len(computed) == 1 and tuple(actual) == (computed[0], 1, 1))


def describe_shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape) if len(shape) != 1 else f"a vector of {shape[0]}"


def _nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda a: found.append(a) or a)  # type: ignore[func-returns-value]
    return found
