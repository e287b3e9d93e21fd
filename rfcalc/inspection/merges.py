"""``rfcalc inspect``'s rows for calls that combine computed tensors: ``torch.cat``, ``+ - * /`` and the
``expand`` that feeds a broadcast. Needs torch.

Each ``follow_*`` function gets the recorder, the fx node, its action, the bound call (whose ``__nodes__``
names the fx nodes behind each argument), the node's real output shape and a short description of the call.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow
from rfcalc.inspection import layout as L
from rfcalc.inspection import segments as S
from rfcalc.inspection.follow import current, describe, is_canonical
from rfcalc.inspection.record import Recorder, describe_shape
from rfcalc.ops.actions import Binary, Broadcast, Call, Concat
from rfcalc.table import reach as R
from rfcalc.table.geometry import union_geometry
from rfcalc.table.report import Geometry, Shape

HIDE = -50.0  # an additive attention mask entry at or below this hides its key (Swin's -100, plus a position bias)


def operands(rec: Recorder, call: Call | None, names: tuple[str, ...]) -> list[Any]:
    """The fx nodes (or constants) behind the named arguments of a bound call."""
    nodes = call.values["__nodes__"] if call is not None else None
    return [nodes.get(k) if nodes else None for k in names]


def live(rec: Recorder, value: Any) -> bool:
    return isinstance(value, fx.Node) and value in rec.flows


def joint_geometry(flows: list[Flow]) -> Geometry:
    """The union of windows over one grid (equal jumps), else the first's."""
    geos = [f.geo for f in flows]
    if len({g.jump for g in geos}) == 1:
        return union_geometry(geos)
    return geos[0]


# -- torch.cat ---------------------------------------------------------------------------------------------------
def follow_concat(rec: Recorder, n: fx.Node, action: Concat, call: Call | None, real: Shape, desc: str) -> None:
    """Along channels: a ``concat`` merge; along tokens: a sequence of every input's tokens (a constant's, a
    class token, see nothing)."""
    (nodes,) = operands(rec, call, (action.tensors,))
    if not isinstance(nodes, (list, tuple)) or not nodes:
        rec.stop(n, "concatenates something rfcalc cannot read", desc)
    items = list(nodes)
    lives = [t for t in items if live(rec, t)]
    rank = len(real) + 1
    d = action.dim % rank
    if d == 0:
        rec.stop(n, "concatenates along the batch dimension", desc)
    flows = [rec.flows[t] for t in lives]
    layouts = [rec.layouts[t] for t in lives]
    if any(len(lay) != len(real) for lay in layouts):
        rec.stop(n, "concatenates tensors of different ranks", desc)
    if all(not L.has_units(lay[d - 1]) for lay in layouts):
        _channel_concat(rec, n, items, lives, flows, layouts, d - 1, real, desc)
    else:
        _token_concat(rec, n, items, lives, flows, layouts, d - 1, real, desc)


def _channel_concat(rec: Recorder, n: fx.Node, items: list[Any], lives: list[fx.Node], flows: list[Flow],
                    layouts: list[L.Layout], dim: int, real: Shape, desc: str) -> None:
    if len(lives) != len(items):
        rec.stop(n, "concatenates tensors that are not all computed from the input", desc)
    labelled = [(f"'{f.producer}'", f) for f in flows]
    if dim == 0 and all(len(f.shape) == 3 and is_canonical(rec, f, lay) for f, lay in zip(flows, layouts)):
        rec.merge(n, labelled, "concat", real, desc)  # maps: the calculator checks sizes and jumps
        return
    others = {tuple(s for k, s in enumerate(L.unit_signature(lay)) if k != dim) for lay in layouts}
    if len(others) != 1 or len({rec.unit_dims(f) for f in flows}) != 1:
        rec.stop(n, "concatenates tensors whose units differ; rfcalc follows concatenation along channels of "
                    "tensors over the same positions", desc)
    if all(len(f.shape) == 3 and is_canonical(rec, f, lay) for f, lay in zip(flows, layouts)):
        rec.stop(n, f"concatenates along dim {dim + 1}; rfcalc follows concatenation along the channel "
                    f"dim (1) only", desc)
    new = layouts[0][:dim] + (L.channels(real[dim]),) + layouts[0][dim + 1:]
    logical = [current(rec, f, lay) for f, lay in zip(flows, layouts)]
    shape = rec.logical(new, flows[0])
    rec.merge(n, [(label, f) for (label, _), f in zip(labelled, logical)], "concat", real, desc, layout=new,
              logical=shape)


def _token_concat(rec: Recorder, n: fx.Node, items: list[Any], lives: list[fx.Node], flows: list[Flow],
                  layouts: list[L.Layout], dim: int, real: Shape, desc: str) -> None:
    parts: list[tuple[R.Reach | None, int]] = []
    for item in items:
        if live(rec, item):
            flow, lay = rec.flows[item], rec.layouts[item]
            reach = rec.reach(flow)
            held = L.unit_axes(lay[dim])
            if sorted(held) != list(range(len(reach.dims))) or any(L.has_units(d) for k, d in enumerate(lay)
                                                                    if k != dim):
                rec.stop(n, "concatenates along a dimension that holds only part of an input's units", desc)
            parts.append((R.permute(reach, held), L.dim_size(lay[dim])))
            continue
        value = item if isinstance(item, torch.Tensor) else rec.value(item)
        if not isinstance(value, torch.Tensor) or value.dim() != len(real) + 1:
            rec.stop(n, "concatenates something that is not a batch of tensors", desc)
        parts.append((None, int(value.shape[dim + 1])))
    image = rec.reach(flows[0]).image
    reach = R.sequence(parts, image)
    rest = [d for k, d in enumerate(layouts[0]) if k != dim]
    if any(L.has_units(d) and d for d in rest):
        rec.stop(n, "concatenates tokens that carry units in another dimension", desc)
    new = layouts[0][:dim] + (L.units(0, len(reach.areas)),) + layouts[0][dim + 1:]
    new = tuple(d if k == dim else tuple(f for f in d if f.kind != "u") for k, d in enumerate(new))
    rec.row(n, "concat_tokens", current(rec, flows[0], layouts[0]), real, desc,
            "a concatenation of tokens has no spec op", layout=new, reach=reach,
            extra=tuple(flows[1:]), geo=joint_geometry(flows))


# -- + - * / -------------------------------------------------------------------------------------------------------
def follow_binary(rec: Recorder, n: fx.Node, action: Binary, call: Call | None, real: Shape, desc: str) -> None:
    """Two computed tensors over the same units: a merge (equal shapes) or, when one repeats over channels
    (``x - x.mean(1, keepdim=True)``), a row whose units see both; one and a constant: a row with the
    input's window; a map and a 1x1 map (squeeze-and-excitation): the map's window, and its units also see
    everything the 1x1 map sees (``global`` when that is every pixel)."""
    values = operands(rec, call, action.operands)
    nodes = [v for v in values if live(rec, v)]
    if not nodes:
        rec.stop(n, "combines tensors computed from the input in a way rfcalc cannot follow", desc)
    if len(nodes) == 1:
        flow, lay = rec.flows[nodes[0]], rec.layouts[nodes[0]]
        if L.shape(lay) != tuple(real):
            rec.stop(n, f"broadcasts {describe_shape(L.shape(lay))} against a constant to "
                        f"{describe_shape(real)}", desc)
        if action.op == "add" and any(hides_keys(rec.value_of(v)) for v in values if not live(rec, v)) \
                and len(lay) >= 2 and L.has_units(lay[-1]) and L.has_units(lay[-2]):
            rec.stop(n, "adds a mask with entries of -50 or less to attention scores: it hides those keys "
                        "(contract 6.6); rfcalc follows such a mask inside a window partition (Swin) only", desc)
        rec.row(n, f"{action.op}_const", current(rec, flow, lay), real, desc,
                f"{action.op} with a constant has no spec op", layout=lay, channels="keep")
        return
    (a, la), (b, lb) = ((rec.flows[x], rec.layouts[x]) for x in nodes)
    if L.shape(la) == L.shape(lb) == tuple(real) and L.unit_signature(la) == L.unit_signature(lb) \
            and rec.unit_dims(a) == rec.unit_dims(b):
        if is_canonical(rec, a, la) and is_canonical(rec, b, lb) and a.shape == b.shape:
            rec.merge(n, [(f"'{a.producer}'", a), (f"'{b.producer}'", b)], action.op, real, desc)
        else:
            ca, cb = current(rec, a, la), current(rec, b, lb)
            rec.merge(n, [(f"'{a.producer}'", ca), (f"'{b.producer}'", cb)], action.op, real, desc, layout=la,
                      logical=ca.shape)
        return
    (big, lbig), (small, lsmall) = ((a, la), (b, lb)) if L.shape(la) == tuple(real) else ((b, lb), (a, la))
    if L.shape(lbig) != tuple(real):
        rec.stop(n, f"broadcasts {describe_shape(L.shape(la))} against {describe_shape(L.shape(lb))}", desc)
    dims = rec.unit_dims(big)
    if not L.all_unit_axes(lsmall):  # one unit, repeated everywhere: a gate
        rec.row(n, action.op, current(rec, big, lbig), real, desc,
                f"a broadcast {action.op} with a 1x1 map has no spec op", layout=lbig, extra=(small,),
                channels="keep")
        gate = rec.reach(small)
        if not gate.everywhere:
            image = gate.image
            seen = R.pixel_count(R.coverage(gate), image)
            rec.diagnose("info", "partial-context", n,
                         f"'{n.name}' ({action.op}) broadcasts a 1x1 map that sees {seen:,} of the "
                         f"{image.h * image.w:,} input pixels: every unit also depends on those, beyond its window "
                         f"(rf); not on all, so not global")
        return
    width = len(lbig) - len(lsmall)
    aligned = ((),) * width + lsmall
    if width >= 0 and rec.unit_dims(small) == dims and L.unit_signature(aligned) == L.unit_signature(lbig):
        before, other = rec.channels_of(big), rec.part(small)
        rec.row(n, action.op, current(rec, big, lbig), real, desc,
                f"a {action.op} broadcast over channels has no spec op", layout=lbig, extra=(small,),
                geo=joint_geometry([big, small]),
                channels=S.mapped(before, lambda p: S.joined([p, other])) if isinstance(before, tuple) else "keep")
        return
    rec.stop(n, f"broadcasts {describe(lbig, dims)} of {describe_shape(L.shape(lbig))} against "
                f"{describe(lsmall, rec.unit_dims(small))} of {describe_shape(L.shape(lsmall))}; rfcalc follows "
                f"element-wise ops on equal shapes, over channels, or with a 1x1 map", desc)


def hides_keys(value: Any) -> bool:
    """A constant attention mask that hides keys: entries of :data:`HIDE` or less."""
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() > 0 \
        and bool((value <= HIDE).any())


def follow_broadcast(rec: Recorder, n: fx.Node, action: Broadcast, call: Call | None, real: Shape,
                     desc: str) -> None:
    """``y.expand_as(x)``: y's values repeated over size-1 dimensions (no row of its own)."""
    (source,) = operands(rec, call, ("input",))
    if not live(rec, source):
        rec.stop(n, "expands a tensor that is not computed from the input", desc)
    flow, lay = rec.flows[source], rec.layouts[source]
    try:
        new = L.expand(lay, real)
    except L.LayoutError as exc:
        rec.stop(n, str(exc), desc)
    rec.alias(n, flow, new)
