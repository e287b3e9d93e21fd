"""The node walker of ``rfcalc inspect``: what each torch.fx node is, and who records its rows. Needs torch.

:class:`Inspector` sees every node right after the forward pass computed it. It asks the lookup table
(:mod:`rfcalc.inspection.lookup`) what the call is and hands the answer to the ``follow_*`` function for that
kind of action (:data:`ONE_INPUT`, :data:`SEVERAL_INPUTS`; calls missing from the table take the generic
rule). Nodes computed from constants only, sizes and shapes are skipped; calls that return several tensors
(``torch.chunk``, ``split``) get their rows at each ``getitem``.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow
from rfcalc.ops.actions import (Action, AdaptivePool, AsLayer, Binary, Broadcast, Call, Concat, GlobalPool,
                                    Pointwise, Reshape, Unsupported)
from rfcalc.inspection.lookup import FUNCTIONS, METHODS, bind, module_action
from rfcalc.inspection.merges import follow_binary, follow_broadcast, follow_concat
from rfcalc.inspection.follow import follow_layer, follow_pointwise, follow_pool, follow_reshape, follow_unknown
from rfcalc.inspection.record import Recorder
from rfcalc.inspection.tracing import BATCH, Walker
from rfcalc.table.report import INPUT_GEOMETRY

# action type -> what records its rows; calls of ONE_INPUT actions must have exactly one computed input
ONE_INPUT: dict[type, Callable[..., None]] = {
    AsLayer: follow_layer, Pointwise: follow_pointwise, GlobalPool: follow_pool, AdaptivePool: follow_pool,
    Reshape: follow_reshape,
}
SEVERAL_INPUTS: dict[type, Callable[..., None]] = {
    Concat: follow_concat, Binary: follow_binary, Broadcast: follow_broadcast,
}


@dataclass
class _Pending:
    """A node that returns several tensors (``torch.chunk``, ``split``): rows come at its ``getitem``."""

    flow: Flow
    replay: Callable[[torch.Tensor], Any]
    desc: str


class Inspector:
    """Visits the nodes of one forward pass in order (``visit`` is the walker's callback)."""

    def __init__(self, gm: fx.GraphModule, walker: Walker, recorder: Recorder) -> None:
        self.gm = gm
        self.walker = walker
        self.rec = recorder
        self.pending: dict[fx.Node, _Pending] = {}
        self.got_input = False
        self.output: Any = None

    def visit(self, n: fx.Node, result: Any) -> None:
        if n.op == "placeholder":
            if not self.got_input:
                self.got_input = True
                self.rec.alias(n, Flow(self.rec.shape, INPUT_GEOMETRY, "input"))
            return
        if n.op == "get_attr":
            return
        if n.op == "output":
            self.output = n.args[0]
            return
        sources = [i for i in n.all_input_nodes if i in self.rec.flows or i in self.pending]
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
            self.rec.stop(n, "uses a tuple of tensors directly; rfcalc follows its items (x[0], x[1], ...) only")
        self._node(n, result)

    def _node(self, n: fx.Node, result: torch.Tensor) -> None:
        if result.dim() == 0 or result.shape[0] != BATCH:
            self.rec.stop(n, f"returns a tensor of shape {tuple(result.shape)} without the batch dimension first")
        out = tuple(int(s) for s in result.shape[1:])
        desc, action, call = self._classify(n)
        if isinstance(action, Unsupported):
            self.rec.stop(n, f"{action.reason}", desc)
        if type(action) in SEVERAL_INPUTS:
            SEVERAL_INPUTS[type(action)](self.rec, n, action, call, out, desc)
            return
        flow = self._single_flow(n, desc)
        if action is None:
            source = next(i for i in n.all_input_nodes if i in self.rec.flows)
            follow_unknown(self.rec, n, flow, out, desc, self._replay(n, source))
        else:
            ONE_INPUT[type(action)](self.rec, n, action, flow, out, desc)

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

    def _tuple_result(self, n: fx.Node, sources: list[fx.Node]) -> None:
        if len(sources) != 1 or sources[0] not in self.rec.flows:
            self.rec.stop(n, "returns several tensors computed from several inputs")
        desc, action, _ = self._classify(n)
        if isinstance(action, Unsupported):
            self.rec.stop(n, action.reason, desc)
        self.pending[n] = _Pending(self.rec.flows[sources[0]], self._replay(n, sources[0]), desc)

    def _pending_item(self, n: fx.Node, result: Any) -> None:
        pending = self.pending[n.args[0]]  # type: ignore[index]
        index = n.args[1]
        if not isinstance(result, torch.Tensor) or result.dim() == 0 or result.shape[0] != BATCH:
            self.rec.stop(n, f"takes item {index!r} of {pending.desc}, which is not a batch of tensors")
        out = tuple(int(s) for s in result.shape[1:])
        follow_unknown(self.rec, n, pending.flow, out, pending.desc, lambda x: pending.replay(x)[index])

    def _single_flow(self, n: fx.Node, desc: str) -> Flow:
        sources = [i for i in n.all_input_nodes if i in self.rec.flows]
        if len(sources) != 1:
            self.rec.stop(n, "takes several tensors computed from the input; rfcalc follows torch.cat and "
                             "+, -, *, / for that", desc)
        return self.rec.flows[sources[0]]

    def _replay(self, n: fx.Node, source: fx.Node) -> Callable[[torch.Tensor], Any]:
        """Re-runs node ``n`` with ``x`` in place of ``source`` (other arguments as in the real forward)."""
        values = {i: self.walker.value(i) for i in n.all_input_nodes}

        def run(x: torch.Tensor) -> Any:
            def sub(a: fx.Node) -> Any:
                return x if a is source else values[a]

            return self.walker.replay(n, fx.node.map_arg(n.args, sub), fx.node.map_arg(n.kwargs, sub))

        return run
