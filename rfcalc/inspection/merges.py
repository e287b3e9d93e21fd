"""``rfcalc inspect``'s rows for calls that combine computed tensors: ``torch.cat``, ``+ - * /`` and the
``expand`` that feeds a broadcast. Needs torch.

Each ``follow_*`` function gets the recorder, the fx node, its action, the bound call (whose ``__nodes__``
names the fx nodes behind each argument), the node's real output shape and a short description of the call.
"""
from __future__ import annotations

import torch.fx as fx

from rfcalc.analysis.calculator import fmt_shape
from rfcalc.ops.actions import Binary, Broadcast, Call, Concat
from rfcalc.inspection.record import Recorder, describe_shape, shapes_match
from rfcalc.table.report import Shape


def follow_concat(rec: Recorder, n: fx.Node, action: Concat, call: Call | None, out: Shape, desc: str) -> None:
    nodes = (call.values["__nodes__"] or {}).get(action.tensors) if call is not None else None
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(t, fx.Node) and t in rec.flows for t in nodes):
        rec.stop(n, "concatenates tensors that are not all computed from the input", desc)
    flows = [rec.flows[t] for t in nodes]
    rank = len(flows[0].shape) + 1
    if any(len(f.shape) + 1 != rank for f in flows) or action.dim % rank != 1:
        rec.stop(n, f"concatenates along dim {action.dim}; rfcalc follows concatenation along the channel "
                    f"dim (1) only", desc)
    rec.merge(n, [(f"'{f.producer}'", f) for f in flows], "concat", out, desc)


def follow_binary(rec: Recorder, n: fx.Node, action: Binary, call: Call | None, out: Shape, desc: str) -> None:
    """Two computed tensors of the output's shape: a merge; one and a constant: a pass-through row; a map and
    a 1x1 map (squeeze-and-excitation): the map's window, with a ``global-context`` warning."""
    nodes = call.values["__nodes__"] if call is not None else None
    operands = [nodes.get(k) if nodes else None for k in action.operands]
    flows = [rec.flows.get(o) if isinstance(o, fx.Node) else None for o in operands]
    live = [f for f in flows if f is not None]
    if not live:
        rec.stop(n, "combines tensors computed from the input in a way rfcalc cannot follow", desc)
    if len(live) == 1:
        rec.passthrough(n, f"{action.op}_const", live[0], out, desc, same=True,
                        note=f"{action.op} with a constant has no spec op")
        return
    a, b = live
    if shapes_match(a.shape, out) and shapes_match(b.shape, out):
        rec.merge(n, [(f"'{a.producer}'", a), (f"'{b.producer}'", b)], action.op, out, desc)
        return
    big, small = (a, b) if shapes_match(a.shape, out) else (b, a)
    if len(big.shape) == 3 and shapes_match(big.shape, out) and _is_global(small.shape, big.shape):
        name = rec.passthrough(n, action.op, big, out, desc, same=True, extra=(small.producer,),
                               note=f"a broadcast {action.op} with a 1x1 map has no spec op")
        rec.diagnose("warning", "global-context", n,
                     f"'{name}' ({desc}) combines '{big.producer}' with the {describe_shape(small.shape)} map "
                     f"'{small.producer}': through it every unit also depends on the whole input; the table keeps "
                     f"the local window of '{big.producer}'")
        return
    rec.stop(n, f"broadcasts {describe_shape(a.shape)} against {describe_shape(b.shape)}; rfcalc follows "
                f"element-wise ops on equal shapes, or with a 1x1 map", desc)


def follow_broadcast(rec: Recorder, n: fx.Node, action: Broadcast, call: Call | None, out: Shape,
                     desc: str) -> None:
    """``y.expand_as(x)``: y's values at x's positions. A 1x1 map stays 1x1 for the calculator (its consumer
    is then a broadcast with a global context); a map that already has the size is unchanged."""
    nodes = call.values["__nodes__"] if call is not None else None
    source = nodes.get("input") if nodes else None
    flow = rec.flows.get(source) if isinstance(source, fx.Node) else None
    if flow is None:
        rec.stop(n, "expands a tensor that is not computed from the input", desc)
    if len(flow.shape) == 3 and len(out) == 3 and flow.shape[0] == out[0] and \
            (flow.shape[1:] == (1, 1) or flow.shape[1:] == out[1:]):
        rec.alias(n, flow)
        return
    rec.stop(n, f"expands {fmt_shape(flow.shape)} to {describe_shape(out)}; rfcalc follows the expansion of 1x1 "
                f"maps only", desc)


def _is_global(small: Shape, big: Shape) -> bool:
    return len(small) == 3 and small[1:] == (1, 1) and small[0] in (1, big[0])
