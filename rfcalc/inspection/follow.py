"""``rfcalc inspect``'s rows for calls with one computed input: spec layers, element-wise ops, pools,
reshapes and permutes, and the generic rule for calls missing from the lookup table. Needs torch.

Each ``follow_*`` function gets the recorder, the fx node, its action, the input's flow and layout
(:mod:`rfcalc.inspection.layout`), the node's real output shape (without the batch) and a short description
of the call, and records the node's rows, or an alias (same values, no row), or stops.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow, fmt_shape, step_geometry
from rfcalc.inspection import layout as L
from rfcalc.inspection import segments as S
from rfcalc.inspection import upsample as U
from rfcalc.inspection.lookup import flattens_after
from rfcalc.inspection.record import Recorder, describe_shape, logical_shape
from rfcalc.inspection.tracing import BATCH
from rfcalc.ops.actions import AdaptivePool, AsLayer, Copy, GlobalPool, Permute, Pointwise, Reshape
from rfcalc.ops.channel_shuffle import ChannelShuffleLayer
from rfcalc.ops.conv import ConvLayer
from rfcalc.ops.flatten import FlattenLayer
from rfcalc.ops.gap import GapLayer
from rfcalc.ops.pool import PoolLayer
from rfcalc.ops.registry import REGISTRY
from rfcalc.table import reach as R
from rfcalc.table.report import Shape


def kind(layout: L.Layout, unit_dims: tuple[int, ...]) -> str:
    """"map" (channels first or last), "tokens", "vector" or "other"."""
    if L.is_map(layout, unit_dims) or L.is_channels_last(layout, unit_dims):
        return "map"
    if L.is_vector(layout):
        return "vector"
    if L.all_unit_axes(layout) and L.is_tokens(layout, unit_dims):
        return "tokens"
    return "other"


def flow_kind(flow: Flow, unit_dims: tuple[int, ...] | None = None) -> str:
    """What the calculator's shape of ``flow`` is; a shape of three that is not C x (its units) (attention's
    heads x tokens x features) is "other"."""
    if len(flow.shape) == 3 and unit_dims is not None and tuple(flow.shape[1:]) != tuple(unit_dims) \
            and not (len(unit_dims) != 2 and flow.shape[1:] == (1, 1)):
        return "other"
    return {3: "map", 1: "vector", 2: "tokens"}.get(len(flow.shape), "other")


def describe(layout: L.Layout, unit_dims: tuple[int, ...]) -> str:
    """How a message names a layout."""
    if L.is_map(layout, unit_dims):
        return "a feature map"
    if L.is_channels_last(layout, unit_dims):
        return "a channels-last feature map (H x W x C)"
    if L.is_tokens(layout, unit_dims):
        return "a token sequence (N x D)"
    if L.is_vector(layout):
        return "a vector"
    parts = []
    for d in layout:
        kinds = {f.kind for f in d}
        parts.append(f"{L.dim_size(d)}" + ("" if not d else " (units)" if kinds == {"u"} else
                                           " (channels)" if kinds == {"c"} else " (channels and units)"))
    return "a tensor of " + " x ".join(parts)


def current(rec: Recorder, flow: Flow, layout: L.Layout) -> Flow:
    """``flow`` with the calculator's shape of ``layout`` (a vector that PyTorch holds as C x 1 x 1 stays a
    vector)."""
    if len(flow.shape) == 1 and L.is_vector(layout):
        return flow
    shape = logical_shape(layout, rec.unit_dims(flow))
    return flow if shape == flow.shape else Flow(shape, flow.geo, flow.producer)


def is_canonical(rec: Recorder, flow: Flow, layout: L.Layout) -> bool:
    """The layout the calculator's own ops assume: C x H x W in channel order, or a vector."""
    if len(flow.shape) == 3:
        return id(layout) in rec.plain_maps or (L.is_map(layout, rec.unit_dims(flow)) and L.is_plain(layout[0]))
    return len(flow.shape) == 1 and L.is_vector(layout)


# -- spec layers -----------------------------------------------------------------------------------------------
def follow_layer(rec: Recorder, n: fx.Node, action: AsLayer, flow: Flow, layout: L.Layout, real: Shape,
                 desc: str) -> None:
    layer = action.layer
    dims = rec.unit_dims(flow)
    if layer.op == "linear":
        _linear(rec, n, action, flow, layout, real, desc)
        return
    if is_canonical(rec, flow, layout):
        rec.layer(n, layer, flow, real, desc, action.spec_note, dropped=action.dropped)
        return
    mixing = REGISTRY[layer.op].mixing
    if mixing == "pointwise" and REGISTRY[layer.op].attach in ("act", "dropout"):  # element-wise in any layout
        rec.layer(n, layer, current(rec, flow, layout), real, desc, action.spec_note, layout=layout,
                  dropped=action.dropped)
        return
    rec.stop(n, f"applies {layer.op} to {describe(layout, dims)}; rfcalc follows {layer.op} on "
                f"{'vectors' if mixing == 'all' else 'feature maps (C x H x W)'} only", desc)


def _linear(rec: Recorder, n: fx.Node, action: AsLayer, flow: Flow, layout: L.Layout, real: Shape,
            desc: str) -> None:
    """A linear layer on the last dimension: the spec's linear on a vector; a 1x1 conv on a channels-last map;
    per token on a sequence; over units (a flattened map's positions) it mixes them."""
    layer = action.layer
    out = int(getattr(layer, "out"))
    bias = bool(getattr(layer, "bias"))
    dims = rec.unit_dims(flow)
    if len(flow.shape) == 1 and L.is_vector(layout):
        rec.layer(n, layer, flow, real, desc, action.spec_note, dropped=action.dropped)
        return
    last = layout[-1]
    new = layout[:-1] + (L.channels(out),)
    macs = math.prod(L.shape(layout)) * out
    if not L.has_units(last):
        if L.is_channels_last(layout, dims):
            conv = ConvLayer(op="conv", out=out, k=(1, 1), bias=bias)
            rec.layer(n, conv, current(rec, flow, layout), real, desc, "a linear layer on the channels of a "
                      "channels-last map (the spec writes it as a 1x1 conv on C x H x W)", layout=new)
            return
        rec.row(n, "linear", current(rec, flow, layout), real, desc, "a linear layer on each token has no spec op",
                layout=new, macs=macs, named=True, channels=None)
        return
    axes = L.unit_axes(last)
    reach = R.reduce_axes(rec.reach(flow), axes)
    new = _renumber(new, rec.reach(flow), axes)
    rec.row(n, "linear", current(rec, flow, layout), real, desc, "a linear layer across units has no spec op",
            layout=new, reach=reach, macs=macs, named=True)


def _renumber(layout: L.Layout, before: R.Reach, gone: list[int]) -> L.Layout:
    """Unit factors renumbered after unit axes ``gone`` were reduced away."""
    keep = [a for a in range(len(before.dims)) if a not in gone]
    index = {a: k for k, a in enumerate(keep)}
    return tuple(tuple(L.Factor("u", f.size, index[f.axis]) if f.kind == "u" else f for f in d) for d in layout)


# -- element-wise ops without a spec op ------------------------------------------------------------------------
def follow_pointwise(rec: Recorder, n: fx.Node, action: Pointwise, flow: Flow, layout: L.Layout, real: Shape,
                     desc: str) -> None:
    rec.row(n, action.op, current(rec, flow, layout), real, desc, f"{action.op} has no spec op", layout=layout,
            channels="keep")


# -- global and adaptive pools ---------------------------------------------------------------------------------
def follow_pool(rec: Recorder, n: fx.Node, action: GlobalPool | AdaptivePool, flow: Flow, layout: L.Layout,
                real: Shape, desc: str) -> None:
    """``gap`` when the result is only flattened (or a vector already), also through element-wise ops (a
    dropout), else the exact pool of the same windows."""
    if len(flow.shape) != 3 or not is_canonical(rec, flow, layout):
        rec.stop(n, f"pools {describe(layout, rec.unit_dims(flow))}; rfcalc follows pools over the H x W of a "
                    f"C x H x W feature map", desc)
    c, h, w = flow.shape
    oh, ow = (real[1], real[2]) if len(real) == 3 else (1, 1)
    if isinstance(action, AdaptivePool) and (oh, ow) != (1, 1):
        if h % oh or w % ow:
            rec.stop(n, f"adaptively pools {h}x{w} to {oh}x{ow}, with windows of varying size; rfcalc follows "
                        f"adaptive pools whose output size divides the input size", desc)
        k = (h // oh, w // ow)
        rec.layer(n, PoolLayer(op=_pool_op(action.mode), k=k, stride=k), flow, real, desc, None)
        return
    global_pool(rec, n, action.mode, flow, real, desc)


def _pool_op(mode: str) -> Literal["avgpool", "maxpool"]:
    return "maxpool" if mode == "max" else "avgpool"


def global_pool(rec: Recorder, n: fx.Node, mode: str, flow: Flow, real: Shape, desc: str) -> None:
    """A pool over the whole H x W of a map: ``gap`` when its 1x1 result is only flattened, else a pool whose
    kernel is the whole map (the 1x1 map a squeeze-and-excitation gate works on)."""
    _, h, w = flow.shape
    if len(real) == 1 or all(flattens_after(u, rec.gm) for u in n.users):
        rec.layer(n, GapLayer(op="gap", mode="max" if mode == "max" else "avg"), flow, real, desc, None)
    else:
        rec.layer(n, PoolLayer(op=_pool_op(mode), k=(h, w), stride=(h, w)), flow, real, desc, None)


# -- reshapes, permutes, copies ----------------------------------------------------------------------------------
def follow_reshape(rec: Recorder, n: fx.Node, action: Reshape | Permute | Copy, flow: Flow, layout: L.Layout,
                   real: Shape, desc: str) -> None:
    """Data moved between dimensions: no row, unless what the tensor is changes (a map flattened to a vector,
    a vector viewed as a 1x1 map, a map made tokens, channels shuffled)."""
    dims = rec.unit_dims(flow)
    try:
        new = _moved(action, layout, real)
    except L.LayoutError as exc:
        rec.stop(n, f"{exc}; rfcalc follows reshapes and permutes that keep each image row and column (and each "
                    f"token sequence) whole", desc)
    if L.shape(new) != tuple(real):
        rec.stop(n, f"PyTorch gives {describe_shape(real)} where rfcalc computes {describe_shape(L.shape(new))}",
                 desc)
    if isinstance(action, Copy):
        rec.alias(n, flow, new)
        return
    if L.split_units(new):
        block = L.space_to_depth(new, dims) if len(flow.shape) == 3 else None
        if block is None:
            rec.alias(n, flow, new)  # on the way: only reshapes and permutes may follow (rfcalc.inspection.walk)
            return
        _space_to_depth(rec, n, block, flow, real, desc)
        return
    if len(real) == 1 and (len(flow.shape) != 1 or len(L.shape(layout)) > 1):
        rec.layer(n, FlattenLayer(op="flatten"), flow, real, desc, None, layout=new)
        return
    if len(flow.shape) == 1 and R.is_single(rec.reach(flow)) and tuple(real) == (flow.shape[0], 1, 1):
        rec.row(n, op_name(desc), flow, real, desc, "a vector viewed as a 1x1 map has no spec op",
                layout=L.feature_map(flow.shape[0], (1, 1)), channels="keep")
        return
    now = kind(new, dims)
    was = flow_kind(flow, dims)
    if now == "map" and was == "map":
        if L.is_map(new, dims) and not L.is_plain(new[0]):
            groups = L.shuffle_groups(new[0])
            if groups is not None:
                rec.layer(n, ChannelShuffleLayer(op="channel_shuffle", groups=groups), flow, real, desc, None)
            else:
                before, order = rec.channels_of(flow), L.channel_order(new[0])
                rec.row(n, "permute_channels", flow, real, desc, "a permutation of channels that is not a channel "
                        "shuffle has no spec op", layout=L.feature_map(flow.shape[0], dims),
                        channels=S.reordered(before, order) if isinstance(before, tuple) and order is not None
                        else "auto")
            return
        rec.alias(n, flow, new)
        return
    if now in ("map", "tokens", "vector") and now != was:
        # a map made of channels of several feature axes (attention's heads and features): a plain C x H x W
        made = L.feature_map(L.dim_size(new[0]), dims) if now == "map" and L.is_map(new, dims) else new
        rec.row(n, op_name(desc), current(rec, flow, new), real, desc, f"{desc} makes {describe(new, dims)}; the "
                f"spec has no op for that", layout=made, channels="keep" if made is new else "auto")
        return
    rec.alias(n, current(rec, flow, new) if now != "other" else flow, new)


def _space_to_depth(rec: Recorder, n: fx.Node, block: int, flow: Flow, real: Shape, desc: str) -> None:
    """Each ``s x s`` block of units folded into the channels: a window of ``s x s`` units with stride ``s``
    (the window, jump and pixels of a conv with kernel and stride ``s``); its channels see different pixels of the
    block, so a later split of them stops."""
    reach = rec.reach(flow)
    k = (block, block)
    out_hw = (real[1], real[2])
    moved = R.window(reach, k, k, (0, 0), (1, 1), out_hw) if isinstance(reach, R.Grid) else \
        R.window_units(reach, k, k, (0, 0), (1, 1), out_hw)
    rec.row(n, "space_to_depth", flow, real, desc, "space-to-depth has no spec op (a conv with kernel and stride "
            f"{block} has its window)", layout=L.feature_map(real[0], out_hw), reach=moved,
            geo=step_geometry(flow.geo, k, k, (0, 0)), channels=S.UNKNOWN)


def follow_resample(rec: Recorder, n: fx.Node, action: U.Resample, flow: Flow, layout: L.Layout, real: Shape,
                    desc: str) -> None:
    """Upsampling and transposed convs (:mod:`rfcalc.inspection.upsample`): each output unit sees what its
    sources see; the row's window holds every unit's (a hull), and later rows step it."""
    if action.problem is not None:
        rec.stop(n, action.problem, desc)
    if len(flow.shape) != 3 or not is_canonical(rec, flow, layout) or len(real) != 3:
        rec.stop(n, f"upsamples {describe(layout, rec.unit_dims(flow))}; rfcalc follows upsampling of C x H x W "
                    f"feature maps", desc)
    c, h, w = flow.shape
    out_hw = (real[1], real[2])
    if action.mode == "unshuffle":
        if h % out_hw[0] or w % out_hw[1] or h // out_hw[0] != w // out_hw[1]:
            rec.stop(n, f"unshuffles {h}x{w} to {out_hw[0]}x{out_hw[1]}", desc)
        _space_to_depth(rec, n, h // out_hw[0], flow, real, desc)
        return
    jumps = (U.jump_after(flow.geo.jump[0], h, out_hw[0]), U.jump_after(flow.geo.jump[1], w, out_hw[1]))
    if jumps[0] is None or jumps[1] is None:
        rec.stop(n, f"resamples {h}x{w} to {out_hw[0]}x{out_hw[1]} at jump {flow.geo.jump[0]}x{flow.geo.jump[1]}: "
                    f"the output's units would be a fraction of a pixel apart, which the table's whole-pixel "
                    f"jump cannot state", desc)
    src = (U.sources(action, 0, h, out_hw[0]), U.sources(action, 1, w, out_hw[1]))
    geo = U.hull(flow.geo, src, (jumps[0], jumps[1]))
    reach = U.resampled(rec.reach(flow), src[0], src[1])
    macs = 0
    if action.mode == "transposed":
        macs = h * w * action.kernel[0] * action.kernel[1] * (c // action.groups) * real[0]
    channels: S.Channels | str = "auto"  # per channel: unknown after a concatenation of different windows
    if action.mode == "transposed" and action.groups == 1:
        channels = None  # mixes every channel
    elif action.op == "pixel_shuffle" and rec.channels_of(flow) is not None:
        channels = S.UNKNOWN  # each output channel reads another input channel
    name = rec.row(n, action.op, flow, real, desc, f"{action.op} has no spec op", layout=L.feature_map(real[0], out_hw),
                   reach=reach, geo=geo, macs=macs, channels=channels)
    rec.hull.add(name)
    gap = U.slack(flow.geo, src, geo)
    if gap:
        rec.diagnose("info", "window-hull", n,
                     f"'{name}' ({desc}): its units do not step evenly over the input; rf/jump/start give the "
                     f"smallest window that holds every unit's pixels (some see up to {gap} px less), and the rows "
                     f"after it step that window")


def _moved(action: Reshape | Permute | Copy, layout: L.Layout, real: Shape) -> L.Layout:
    if isinstance(action, Copy):
        return layout
    if isinstance(action, Reshape):
        return L.reshape(layout, real)
    rank = len(layout) + 1
    if action.swap is not None:
        a, b = (d % rank for d in action.swap)
        if 0 in (a, b) and a != b:
            raise L.LayoutError("moves the batch dimension")
        return L.transpose(layout, a - 1, b - 1)
    order = list(action.order or ())
    if order and order[0] == -1 and len(order) == 3:  # movedim(source, destination)
        source, destination = order[1] % rank, order[2] % rank
        dims = [d for d in range(rank) if d != source]
        dims.insert(destination, source)
        order = dims
    order = [o % rank for o in order]
    if not order or order[0] != 0:
        raise L.LayoutError("moves the batch dimension")
    return L.permute(layout, [o - 1 for o in order[1:]])


# -- calls missing from the table ------------------------------------------------------------------------------
def follow_unknown(rec: Recorder, n: fx.Node, flow: Flow, layout: L.Layout, real: Shape, desc: str,
                   replay: Callable[[torch.Tensor], Any]) -> None:
    """A call not in the table: passed through when it keeps the spatial size of a map and is local (``replay``
    runs it on another input), or when every unit of its input sees the same pixels (a vector after a global
    pool: nothing it does can change what its outputs see); else the walk stops."""
    note = f"{desc} is not in rfcalc's table and has no spec op"
    dims = rec.unit_dims(flow)
    if rec.channels_of(flow) is not None and rec.channel_count(flow) != _channels_in(real, flow):
        rec.stop(n, "changes the channels of a tensor whose channels see different windows (a concatenation's); "
                    "rfcalc cannot know which channels it keeps", desc)
    if len(flow.shape) == 3 and is_canonical(rec, flow, layout) and len(real) == 3 and real[1:] == flow.shape[1:]:
        if not _is_local(replay, flow.shape, rec.root):
            rec.stop(n, "keeps the spatial size but mixes neighbouring pixels in a way the calculator "
                        "cannot know (a change at one pixel moves other outputs)", desc)
        name = rec.row(n, op_name(desc), flow, real, desc, note, layout=L.feature_map(real[0], dims))
        rec.diagnose("info", "pointwise-op", n,
                     f"'{name}' ({desc}) is not in rfcalc's table; it keeps the spatial size and a change at one "
                     f"pixel moves only that pixel's outputs, so it passes the RF through")
        return
    if R.is_single(rec.reach(flow)):
        new = tuple(L.channels(s) for s in real)
        name = rec.row(n, op_name(desc), flow, real, desc, note, layout=new)
        rec.diagnose("info", "vector-op", n,
                     f"'{name}' ({desc}) is not in rfcalc's table; every unit of its input sees the same pixels, "
                     f"so it passes the RF through")
        return
    rec.stop(n, f"changes the shape from {fmt_shape(flow.shape)} to {describe_shape(real)} in a way the calculator "
                f"cannot know (rfcalc follows calls that keep every unit in place, reshapes and permutes that keep "
                f"the image's rows and columns whole, and the calls of its table)", desc)


def _channels_in(real: Shape, flow: Flow) -> int:
    """The channels of a real output shaped as ``flow`` (a map's C, a token sequence's D)."""
    if len(flow.shape) == 3 and len(real) == 3:
        return real[0]
    return real[-1] if real else 1


def op_name(desc: str) -> str:
    """A row's op name from the call's description (``.contiguous()`` -> ``contiguous``)."""
    return re.sub(r"[^a-z0-9_]", "", desc.lower().strip(".()")) or "op"


def _is_local(replay: Callable[[torch.Tensor], Any], shape: Shape, root: torch.nn.Module) -> bool:
    """Whether changing one input pixel changes the output at that pixel only (tested at three pixels)."""
    c, h, w = shape
    floating = next((p for p in root.parameters() if p.is_floating_point()), None)
    dtype = floating.dtype if floating is not None else torch.float32
    first = next(root.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
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


__all__ = ["current", "describe", "follow_layer", "follow_pointwise", "follow_pool", "follow_reshape",
           "follow_unknown", "global_pool", "kind", "op_name"]
