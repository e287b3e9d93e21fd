"""``rfcalc inspect``'s rows for calls that work along dimensions: reductions, softmax, indexing, the pieces of a
chunk / split, matrix products and ``nn.MultiheadAttention``. Needs torch.

What such a call does to the units (:mod:`rfcalc.table.reach`) follows from the dimensions it works along
(:mod:`rfcalc.inspection.layout`): along channels it stays within each unit; along all of a map's positions
it is a global pool (a mean or max: ``gap``) or makes every unit see everything the map's units see; along
tokens it mixes tokens (attention); along only the image's rows or columns it would make a line of units
that no window describes, and the walk stops.
"""
from __future__ import annotations

import math
from typing import Any, Literal, cast

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow, step_geometry
from rfcalc.inspection import layout as L
from rfcalc.inspection import segments as S
from rfcalc.inspection.follow import current, describe, global_pool, is_canonical, op_name
from rfcalc.inspection.merges import joint_geometry, live, operands
from rfcalc.inspection.record import Recorder, describe_shape
from rfcalc.ops.actions import Along, Attention, Call, Index, MatMul, Reduce, Split
from rfcalc.ops.gap import GapLayer
from rfcalc.table import reach as R
from rfcalc.table.report import Shape

_POOLS: dict[str, Literal["avg", "max"]] = {"mean": "avg", "amax": "max"}


def _torch_dims(n: fx.Node, rec: Recorder, dims: tuple[int, ...], rank: int, desc: str) -> list[int]:
    """Torch dims (batch included) as layout dims; the batch is an error."""
    out = sorted({d % rank for d in dims})
    if 0 in out:
        rec.stop(n, "works across the batch dimension", desc)
    return [d - 1 for d in out]


def _renumbered(layout: L.Layout, reach_before: R.Reach, gone: list[int]) -> L.Layout:
    keep = [a for a in range(len(reach_before.dims)) if a not in gone]
    return L.renumber(layout, {a: k for k, a in enumerate(keep)})


# -- reductions ----------------------------------------------------------------------------------------------
def follow_reduce(rec: Recorder, n: fx.Node, action: Reduce, flow: Flow, layout: L.Layout, real: Shape,
                  desc: str) -> None:
    """Over channels: a row within each unit (``x.mean(1, keepdim=True)``); over a map's H x W: a global pool;
    over all tokens: every output sees what any token sees; over part of the image's units: the walk stops."""
    assert action.dims is not None
    dims = _torch_dims(n, rec, action.dims, len(layout) + 1, desc)
    reach = rec.reach(flow)
    axes = sorted({a for d in dims for a in L.unit_axes(layout[d])})
    new = tuple(() if k in dims else d for k, d in enumerate(layout)) if action.keepdim else \
        tuple(d for k, d in enumerate(layout) if k not in dims)
    if not axes:
        rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} over channels has no spec op",
                layout=new, channels=None)
        return
    every = sorted(L.all_unit_axes(layout))
    if axes != every:
        if isinstance(reach, R.Grid):
            rec.stop(n, f"{action.op} over only the image's rows or columns; the table's windows cannot describe "
                        f"the lines of units that makes", desc)
        rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} over units has no spec op",
                layout=_renumbered(new, reach, axes), reach=R.reduce_axes(reach, axes))
        return
    if isinstance(reach, R.Grid) and len(flow.shape) == 3 and action.op in _POOLS:
        if is_canonical(rec, flow, layout) and dims == [1, 2]:
            global_pool(rec, n, _POOLS[action.op], flow, real, desc)
            return
        if L.is_channels_last(layout, reach.dims) and dims == [0, 1]:
            rec.layer(n, GapLayer(op="gap", mode=_POOLS[action.op]), flow, real, desc, None, layout=new)
            return
    rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} over every unit has no spec op",
            layout=_renumbered(new, reach, axes), reach=R.collapse(reach))


# -- softmax along a dimension ---------------------------------------------------------------------------------
def follow_along(rec: Recorder, n: fx.Node, action: Along, flow: Flow, layout: L.Layout, real: Shape,
                 desc: str) -> None:
    (d,) = _torch_dims(n, rec, (action.dim,), len(layout) + 1, desc)
    axes = L.unit_axes(layout[d])
    reach = rec.reach(flow)
    if not axes:
        rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} has no spec op", layout=layout,
                channels=None)
        return
    if isinstance(reach, R.Grid) and sorted(axes) != [0, 1]:
        rec.stop(n, f"takes a {action.op} along the image's rows or columns: every unit then depends on its whole "
                    f"line of units, which no window describes (it mixes neighbouring pixels)", desc)
    rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} across units has no spec op",
            layout=layout, reach=R.mix(reach, axes))


# -- x[...] ----------------------------------------------------------------------------------------------------
def follow_index(rec: Recorder, n: fx.Node, action: Index, flow: Flow, layout: L.Layout, real: Shape,
                 desc: str, op: str = "getitem") -> None:
    """Channels: a range of them (a row within each unit); tokens: the chosen tokens (``x[:, 0]``: the class
    token's vector); the image's rows or columns (a crop): the walk stops."""
    index = action.index if isinstance(action.index, tuple) else (action.index,)
    if any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in index):
        rec.stop(n, "indexes with tensors or lists; rfcalc follows ints, slices, None and ...", desc)
    if index.count(Ellipsis) > 1:
        rec.stop(n, "indexes with two ...", desc)
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(layout) + 1 - used) + index[at + 1:]
    index = index + (slice(None),) * (len(layout) + 1 - sum(1 for i in index if i is not None))
    if index[0] is None or index[0] != slice(None):
        rec.stop(n, "indexes the batch dimension", desc)
    reach = rec.reach(flow)
    if _strided_units(rec, n, op, index[1:], flow, layout, real, desc):
        return
    new: list[L.Dim] = []
    picked: list[tuple[int, ...]] | None = None  # the units chosen along the one dimension that holds them all
    channel_picks: list[tuple[int, list[int]]] = []  # (dimension, the channels chosen along it)
    dim = 0
    for item in index[1:]:
        if item is None:
            new.append(())
            continue
        d = layout[dim]
        size = L.dim_size(d)
        dim += 1
        if isinstance(item, slice) and range(size)[item] == range(size):
            new.append(d)
            continue
        chosen: list[int] = [item % size] if isinstance(item, int) else list(range(size)[cast(slice, item)])
        if not L.has_units(d):
            channel_picks.append((dim - 1, chosen))
            if isinstance(item, slice):
                new.append(L.channels(len(chosen)))
            continue
        held = L.unit_axes(d)
        if isinstance(reach, R.Grid) and len(held) == 1 and len(flow.shape) == 3:
            rec.stop(n, "crops the rows or columns of a feature map; rfcalc follows indexing of channels and "
                        "tokens", desc)
        if sorted(held) != list(range(len(reach.dims))) or picked is not None:
            rec.stop(n, "picks units along a dimension that holds only part of them", desc)
        picked = [_unit_of(d, k) for k in chosen]
        if held != sorted(held):
            rec.stop(n, "picks tokens of a sequence whose units are not in row-major order", desc)
        if isinstance(item, slice):
            new.append(L.units(0, len(chosen)) + tuple(f for f in d if f.kind == "c"))
    out_layout = tuple(new)
    if picked is None:
        _channel_piece(rec, n, op, flow, layout, out_layout, channel_picks, real, desc)
        return
    areas = [R.unit_area(reach, *u) for u in picked]
    chosen_reach: R.Reach = R.single(areas[0], reach.image) if len(areas) == 1 and not any(
        L.has_units(x) for x in out_layout) else R.Units(reach.image, (len(areas),), tuple(areas))
    rec.row(n, op, current(rec, flow, layout), real, desc, "picking tokens has no spec op",
            layout=out_layout, reach=chosen_reach)


def _strided_units(rec: Recorder, n: fx.Node, op: str, items: tuple[Any, ...], flow: Flow, layout: L.Layout,
                   real: Shape, desc: str) -> bool:
    """``x[:, ::s, ::s]`` of a map (channels first or last; LeViT's token subsampling): every ``s``-th unit from
    the first, the window, jump and pixels of a 1x1 conv with stride ``s``."""
    reach = rec.reach(flow)
    dims = reach.dims
    if len(dims) != 2 or len(items) != len(layout) or any(i is None for i in items) or not (
            L.is_map(layout, dims) or L.is_channels_last(layout, dims)):
        return False
    strides = [1, 1]
    for item, d in zip(items, layout):
        if item == slice(None):
            continue
        if not isinstance(item, slice) or not L.has_units(d) or item.start not in (None, 0) \
                or item.stop is not None or item.step is None or item.step < 1:
            return False
        strides[L.unit_axes(d)[0]] = item.step
    if strides == [1, 1]:
        return False
    stride = (strides[0], strides[1])
    out_hw = (-(-dims[0] // stride[0]), -(-dims[1] // stride[1]))
    moved = R.window(reach, (1, 1), stride, (0, 0), (1, 1), out_hw) if isinstance(reach, R.Grid) else \
        R.window_units(reach, (1, 1), stride, (0, 0), (1, 1), out_hw)
    new = tuple(tuple(f for f in d if f.kind != "u") + (L.units(d[0].axis, out_hw[d[0].axis]) if L.has_units(d)
                                                         else ()) for d in layout)
    rec.row(n, op, current(rec, flow, layout), real, desc, "a strided pick of units has no spec op (a 1x1 conv with "
            "that stride has its window)", layout=new, reach=moved, geo=step_geometry(flow.geo, (1, 1), stride, (0, 0)),
            channels="keep")
    return True


def _channel_piece(rec: Recorder, n: fx.Node, op: str, flow: Flow, layout: L.Layout, out_layout: L.Layout,
                   picks: list[tuple[int, list[int]]], real: Shape, desc: str) -> None:
    """Channels picked (a split's piece, ``x[:, a:b]``, ``narrow``): when the input's channels do not all see
    the same (a concatenation's), the piece sees what its own channels see (rfcalc.inspection.segments)."""
    before = rec.channels_of(flow)
    if before is None or not picks:
        rec.row(n, op, current(rec, flow, layout), real, desc, "indexing has no spec op", layout=out_layout,
                channels="keep" if not picks else None)
        return
    logical = S.logical_channels(layout, picks[0][0], picks[0][1]) if len(picks) == 1 else None
    if not isinstance(before, tuple) or logical is None:
        rec.stop(n, "takes some of the channels of a tensor whose channels see different windows (a "
                    "concatenation's) after an op that rfcalc cannot follow channel by channel; rfcalc follows "
                    "them through element-wise ops, norms, pools, grouped convs, channel shuffles and merges", desc)
    part, sub = S.pick(before, logical)
    rec.row(n, op, current(rec, flow, layout), real, desc, "indexing has no spec op", layout=out_layout,
            reach=part.reach, geo=part.geo, channels=sub)


def _unit_of(dim: L.Dim, k: int) -> tuple[int, ...]:
    """The unit (one index per unit axis, in axis order) of element ``k`` along a dimension made of ``dim``."""
    digits: dict[int, int] = {}
    for f in reversed(dim):
        k, digit = divmod(k, f.size)
        if f.kind == "u":
            digits[f.axis] = digit
    return tuple(digits[a] for a in sorted(digits))


# -- the pieces of chunk / split / unbind ----------------------------------------------------------------------
def split_item(rec: Recorder, n: fx.Node, action: Split, index: int, flow: Flow, layout: L.Layout, real: Shape,
               desc: str) -> None:
    """Piece ``index`` of a chunk / split / unbind: the same as the index (or slice) that picks it."""
    (d,) = _torch_dims(n, rec, (action.dim,), len(layout) + 1, desc)
    size = L.dim_size(layout[d])
    if action.sizes is not None:
        sizes = list(action.sizes)
    elif action.chunks is None:
        sizes = [1] * size
    elif action.chunks < 0:  # a piece size
        step = -action.chunks
        sizes = [min(step, size - k) for k in range(0, size, step)]
    else:
        step = math.ceil(size / action.chunks)
        sizes = [min(step, size - k) for k in range(0, size, step)]
    if not -len(sizes) <= index < len(sizes):
        rec.stop(n, f"takes piece {index} of {len(sizes)}", desc)
    index %= len(sizes)
    start = sum(sizes[:index])
    pick: Any = start if action.chunks is None and action.sizes is None else slice(start, start + sizes[index])
    follow_index(rec, n, Index((slice(None),) * (d + 1) + (pick,)), flow, layout, real, desc, op_name(desc))


# -- matrix products -------------------------------------------------------------------------------------------
def follow_matmul(rec: Recorder, n: fx.Node, action: MatMul, call: Call | None, real: Shape, desc: str) -> None:
    """``a @ b`` per sample: each output ``(i, j)`` sees row ``i`` of ``a`` and column ``j`` of ``b``; rows and
    columns that run along units mix them (``q @ k.transpose(-2, -1)``: every query with every key)."""
    a, b = operands(rec, call, action.operands)
    shapes = [L.shape(rec.layouts[x]) if live(rec, x) else tuple(rec.value_of(x).shape) for x in (a, b)]
    if len(shapes[0]) < 1 or len(shapes[1]) < 1:
        rec.stop(n, "multiplies scalars", desc)
    k = shapes[0][-1]
    macs = math.prod(real) * k
    lives = [x for x in (a, b) if live(rec, x)]
    flows = [rec.flows[x] for x in lives]
    reaches = [rec.reach(f) for f in flows]
    first, first_layout = flows[0], rec.layouts[lives[0]]
    fresh = tuple(L.channels(s) for s in real)
    if all(R.is_single(r) for r in reaches):
        rec.row(n, "matmul", current(rec, first, first_layout), real, desc, "a matrix product has no spec op",
                layout=fresh, reach=R.union(reaches), extra=tuple(flows[1:]), macs=macs,
                geo=joint_geometry(flows))
        return
    if len(lives) == 1:
        if not live(rec, a):
            rec.stop(n, "multiplies a constant by a tensor computed from the input; rfcalc follows x @ W", desc)
        last = first_layout[-1]
        gone = L.unit_axes(last)
        reach = R.reduce_axes(reaches[0], gone) if gone else reaches[0]
        new = _renumbered(first_layout[:-1], reaches[0], gone) + (L.channels(real[-1]),)
        rec.row(n, "matmul", current(rec, first, first_layout), real, desc, "a matrix product has no spec op",
                layout=new, reach=reach, macs=macs)
        return
    la, lb = rec.layouts[a], rec.layouts[b]
    if len(la) < 2 or len(lb) < 2 or len(la) != len(lb):
        rec.stop(n, f"multiplies {describe_shape(L.shape(la))} by {describe_shape(L.shape(lb))}; rfcalc follows "
                    f"products of matrices (with equal batch dimensions)", desc)
    if any(L.has_units(d) for d in la[:-2] + lb[:-2]):
        rec.stop(n, "multiplies with units in a batch dimension", desc)
    ra, rb = reaches
    a_rows, a_sum = L.unit_axes(la[-2]), L.unit_axes(la[-1])
    b_sum, b_cols = L.unit_axes(lb[-2]), L.unit_axes(lb[-1])
    ra2 = R.reduce_axes(ra, a_sum) if a_sum else ra
    rb2 = R.reduce_axes(rb, b_sum) if b_sum else rb
    a_keep = [x for x in range(0 if R.is_single(ra) else len(ra.dims)) if x not in a_sum]
    b_keep = [x for x in range(0 if R.is_single(rb) else len(rb.dims)) if x not in b_sum]
    if [a_keep.index(x) for x in a_rows] != list(range(len(a_keep))) or \
            [b_keep.index(x) for x in b_cols] != list(range(len(b_keep))):
        rec.stop(n, "multiplies matrices whose units are not in row-major order", desc)
    reach = R.outer(ra2, rb2)
    rows_dim = L.renumber((la[-2],), {x: a_keep.index(x) for x in a_rows})[0]
    cols_dim = L.renumber((lb[-1],), {x: len(a_keep) + b_keep.index(x) for x in b_cols})[0]
    new = la[:-2] + (rows_dim, cols_dim)
    reach_out: R.Reach = reach if reach.dims else R.single(reach.areas[0], reach.image)
    rec.row(n, "matmul", current(rec, first, la), real, desc, "a matrix product has no spec op", layout=new,
            reach=reach_out, extra=(flows[1],), macs=macs, geo=joint_geometry(flows))


# -- nn.MultiheadAttention -------------------------------------------------------------------------------------
_MHA_SIG = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights",
            "is_causal")


def follow_attention(rec: Recorder, n: fx.Node, action: Attention, real: Shape, desc: str) -> None:
    """``nn.MultiheadAttention`` (batch first): every query token sees what every key and value token sees."""
    bound = dict(zip(_MHA_SIG, n.args))
    bound.update(n.kwargs)
    for mask in ("key_padding_mask", "attn_mask"):
        if bound.get(mask) is not None:
            rec.stop(n, f"attention with {mask}: which tokens each query sees depends on the mask's values", desc)
    if bound.get("is_causal"):
        rec.stop(n, "causal attention: each query sees only the tokens before it, which rfcalc does not follow",
                 desc)
    query, key, value = (cast(fx.Node, bound.get(k)) for k in ("query", "key", "value"))
    if not live(rec, query):
        rec.stop(n, "attends with queries that are not computed from the input", desc)
    flow, lq = rec.flows[query], rec.layouts[query]
    if len(lq) != 2 or L.has_units(lq[1]):
        rec.stop(n, f"attends over {describe(lq, rec.unit_dims(flow))}; rfcalc follows batch-first token sequences "
                    f"(N x D)", desc)
    module: Any = rec.gm.get_submodule(str(n.target))
    others = [rec.flows[x] for x in (key, value) if live(rec, x) and x is not query]
    reach = R.union([rec.reach(flow), *(R.collapse(rec.reach(rec.flows[x])) for x in (key, value) if live(rec, x))])
    length = L.dim_size(lq[0])
    source = L.shape(rec.layouts[key])[0] if live(rec, key) else length
    e = int(module.embed_dim)
    macs = length * e * e * 2 + source * e * (int(module.kdim) + int(module.vdim)) + 2 * length * source * e
    new = (lq[0], L.channels(real[-1]))
    rec.row(n, "attention", current(rec, flow, lq), real, desc, "attention has no spec op", layout=new,
            reach=reach, extra=tuple(others), macs=macs, geo=joint_geometry([flow, *others]))


def follow_sdpa(rec: Recorder, n: fx.Node, call: Call, real: Shape, desc: str) -> None:
    """``F.scaled_dot_product_attention(q, k, v)``: each query token sees what every key and value token sees
    (heads in the dims before the tokens, features last)."""
    query, key, value, mask = operands(rec, call, ("query", "key", "value", "attn_mask"))
    bias = call.get("attn_mask")
    if bias is not None and (live(rec, mask) or not isinstance(bias, torch.Tensor) or not bias.is_floating_point()
                             or not bool(torch.isfinite(bias).all())):
        rec.stop(n, "attention with attn_mask: which tokens each query sees depends on the mask's values", desc)
    # a finite float attn_mask that does not depend on the input (a relative position bias) hides no token
    if call.get("is_causal"):
        rec.stop(n, "causal attention: each query sees only the tokens before it, which rfcalc does not follow", desc)
    if not live(rec, query):
        rec.stop(n, "attends with queries that are not computed from the input", desc)
    flow, lq = rec.flows[query], rec.layouts[query]
    if len(lq) < 2 or L.has_units(lq[-1]) or any(L.has_units(d) for d in lq[:-2]) or not L.has_units(lq[-2]):
        rec.stop(n, f"attends over {describe(lq, rec.unit_dims(flow))}; rfcalc follows queries whose tokens are "
                    f"the dim before the features (heads before them)", desc)
    others = [rec.flows[x] for x in (key, value) if live(rec, x) and x is not query]
    reach = R.union([rec.reach(flow), *(R.collapse(rec.reach(rec.flows[x])) for x in (key, value) if live(rec, x))])
    keys = L.shape(rec.layouts[key])[-2] if live(rec, key) else L.dim_size(lq[-2])
    macs = math.prod(real[:-1]) * keys * (L.dim_size(lq[-1]) + real[-1])
    new = lq[:-1] + (L.channels(real[-1]),)
    rec.row(n, "attention", current(rec, flow, lq), real, desc, "attention has no spec op", layout=new,
            reach=reach, extra=tuple(others), macs=macs, geo=joint_geometry([flow, *others]), channels=None)


__all__ = ["follow_along", "follow_attention", "follow_index", "follow_matmul", "follow_reduce", "follow_sdpa",
           "split_item"]
