"""``rfcalc inspect``'s rows for calls with one computed input: spec layers, element-wise ops, pools,
reshapes, and the generic rule for calls missing from the lookup table. Needs torch.

Each ``follow_*`` function gets the recorder, the fx node, its action, the input's flow, the node's real
output shape (without the batch) and a short description of the call, and records the node's rows or stops.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow, fmt_shape
from rfcalc.ops.actions import AdaptivePool, AsLayer, GlobalPool, Pointwise, Reshape
from rfcalc.inspection.lookup import is_reshape
from rfcalc.inspection.record import Recorder, describe_shape, shapes_match
from rfcalc.inspection.tracing import BATCH
from rfcalc.table.report import Shape
from rfcalc.ops.flatten import FlattenLayer
from rfcalc.ops.gap import GapLayer
from rfcalc.ops.pool import PoolLayer
from rfcalc.inspection.result import SKIP


def follow_layer(rec: Recorder, n: fx.Node, action: AsLayer, flow: Flow, out: Shape, desc: str) -> None:
    if action.layer.op == "linear" and len(flow.shape) != 1:
        rec.stop(n, f"applies a linear layer to the last axis of a {fmt_shape(flow.shape)} feature map, "
                    f"mixing whole rows of pixels; rfcalc follows linear layers on vectors only", desc)
    rec.layer(n, action.layer, flow, out, desc, action.spec_note)


def follow_pointwise(rec: Recorder, n: fx.Node, action: Pointwise, flow: Flow, out: Shape, desc: str) -> None:
    rec.passthrough(n, action.op, flow, out, desc, note=f"{action.op} has no spec op", same=True)


def follow_pool(rec: Recorder, n: fx.Node, action: GlobalPool | AdaptivePool, flow: Flow, out: Shape,
                desc: str) -> None:
    """``gap`` when the result is only flattened (or a vector already), else the exact pool of the same windows."""
    if len(flow.shape) != 3:
        rec.stop(n, f"pools a {fmt_shape(flow.shape)}", desc)
    c, h, w = flow.shape
    oh, ow = (out[1], out[2]) if len(out) == 3 else (1, 1)
    if isinstance(action, AdaptivePool) and (oh, ow) != (1, 1):
        if h % oh or w % ow:
            rec.stop(n, f"adaptively pools {h}x{w} to {oh}x{ow}, with windows of varying size; rfcalc follows "
                        f"adaptive pools whose output size divides the input size", desc)
        k = (h // oh, w // ow)
        rec.layer(n, PoolLayer(op=f"{action.mode}pool", k=k, stride=k), flow, out, desc, None)
        return
    if len(out) == 1 or all(_flattens(u, rec.gm) for u in n.users):
        rec.layer(n, GapLayer(op="gap", mode=action.mode), flow, out, desc, None)
    else:
        rec.layer(n, PoolLayer(op=f"{action.mode}pool", k=(h, w), stride=(h, w)), flow, out, desc, None)


def follow_reshape(rec: Recorder, n: fx.Node, action: Reshape, flow: Flow, out: Shape, desc: str) -> None:
    if len(out) == 1 and out[0] == math.prod(flow.shape):
        rec.layer(n, FlattenLayer(op="flatten"), flow, out, desc, None)
    elif len(flow.shape) == 1 and out == (flow.shape[0], 1, 1):
        rec.passthrough(n, op_name(desc), flow, out, desc, note="a vector viewed as a 1x1 map has no spec op")
    elif shapes_match(flow.shape, out):
        rec.passthrough(n, op_name(desc), flow, out, desc, None, same=True, spec=SKIP)
    else:
        rec.stop(n, f"reshapes {fmt_shape(flow.shape)} to {describe_shape(out)}; rfcalc follows reshapes that "
                    f"flatten to a vector only", desc)


def follow_unknown(rec: Recorder, n: fx.Node, flow: Flow, out: Shape, desc: str,
                   replay: Callable[[torch.Tensor], Any]) -> None:
    """A call not in the table: passed through when it keeps the spatial size and is local (``replay`` runs it
    on another input), or works on vectors; else the walk stops."""
    note = f"{desc} is not in rfcalc's table and has no spec op"
    if len(flow.shape) == 3 and len(out) == 3 and out[1:] == flow.shape[1:]:
        if not _is_local(replay, flow.shape, rec.root):
            rec.stop(n, "keeps the spatial size but mixes neighbouring pixels in a way the calculator "
                        "cannot know (a change at one pixel moves other outputs)", desc)
        name = rec.passthrough(n, op_name(desc), flow, out, desc, note=note)
        rec.diagnose("info", "pointwise-op", n,
                     f"'{name}' ({desc}) is not in rfcalc's table; it keeps the spatial size and a change at one "
                     f"pixel moves only that pixel's outputs, so it passes the RF through")
        return
    if len(flow.shape) == 1 and len(out) == 1:
        name = rec.passthrough(n, op_name(desc), flow, out, desc, note=note)
        rec.diagnose("info", "vector-op", n,
                     f"'{name}' ({desc}) is not in rfcalc's table; it works on vectors, so it passes the RF through")
        return
    rec.stop(n, f"changes the shape from {fmt_shape(flow.shape)} to {describe_shape(out)} in a way the calculator "
                f"cannot know", desc)


def op_name(desc: str) -> str:
    """A row's op name from the call's description (``.contiguous()`` -> ``contiguous``)."""
    return re.sub(r"[^a-z0-9_]", "", desc.lower().strip(".()")) or "op"


def _flattens(user: fx.Node, gm: fx.GraphModule) -> bool:
    module = gm.get_submodule(str(user.target)) if user.op == "call_module" else None
    return is_reshape(user.op, user.target, module, tuple(user.args))


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
