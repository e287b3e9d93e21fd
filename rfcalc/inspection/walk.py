"""The node walker of ``rfcalc inspect``: what each torch.fx node is, and who records its rows. Needs torch.

:class:`Inspector` sees every node right after the forward pass computed it. It asks the lookup table
(:mod:`rfcalc.inspection.lookup`) what the call is and hands the answer to the ``follow_*`` function for that
kind of action (:data:`ONE_INPUT`, :data:`SEVERAL_INPUTS`; calls missing from the table take the generic
rule). Nodes computed from constants only, sizes and shapes are skipped; calls that return several tensors
(``torch.chunk``, ``split``, ``nn.MultiheadAttention``) get their rows at each ``getitem``.
"""
from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx

from rfcalc.analysis.calculator import Flow
from rfcalc.inspection import layout as L
from rfcalc.inspection import upsample as U
from rfcalc.inspection.follow import (
    follow_layer,
    follow_pointwise,
    follow_pool,
    follow_resample,
    follow_reshape,
    follow_unknown,
    is_canonical,
    op_name,
)
from rfcalc.inspection.lookup import FUNCTIONS, METHODS, bind, classify, module_action
from rfcalc.inspection.merges import follow_binary, follow_broadcast, follow_concat
from rfcalc.inspection.mixing import (
    follow_along,
    follow_attention,
    follow_index,
    follow_matmul,
    follow_reduce,
    follow_sdpa,
    split_item,
)
from rfcalc.inspection.record import Recorder
from rfcalc.inspection.tracing import BATCH, Walker
from rfcalc.inspection.windows import Windows
from rfcalc.ops.actions import (
    Action,
    AdaptivePool,
    Along,
    AsLayer,
    Attention,
    Binary,
    Broadcast,
    Call,
    Concat,
    Copy,
    GlobalPool,
    Index,
    MatMul,
    Permute,
    Pointwise,
    Reduce,
    Reshape,
    Split,
    Unsupported,
)
from rfcalc.ops.registry import REGISTRY
from rfcalc.table.report import INPUT_GEOMETRY

# action type -> what records its rows; calls of ONE_INPUT actions must have exactly one computed input, and
# get (recorder, node, action, its flow, its layout, real output shape, description)
ONE_INPUT: dict[type, Callable[..., None]] = {
    AsLayer: follow_layer, Pointwise: follow_pointwise, GlobalPool: follow_pool, AdaptivePool: follow_pool,
    Reshape: follow_reshape, Permute: follow_reshape, Copy: follow_reshape, Reduce: follow_reduce,
    Along: follow_along, Index: follow_index,
}
# ... and these get (recorder, node, action, the bound call, real output shape, description)
SEVERAL_INPUTS: dict[type, Callable[..., None]] = {
    Concat: follow_concat, Binary: follow_binary, Broadcast: follow_broadcast, MatMul: follow_matmul,
}


_INTERPOLATE = {torch.nn.functional.interpolate, torch.nn.functional.upsample}
_PIXEL = {torch.nn.functional.pixel_shuffle: U.Resample("pixel_shuffle", "nearest"),
          torch.nn.functional.pixel_unshuffle: U.Resample("pixel_unshuffle", "unshuffle")}
_INTERPOLATE_SIGNATURE = inspect.signature(
    lambda input, size=None, scale_factor=None, mode="nearest", align_corners=None, *args, **kwargs: None)


@dataclass
class _Pending:
    """A node that returns several tensors: rows come at its ``getitem``."""

    action: Action | None
    flow: Flow | None
    replay: Callable[[torch.Tensor], Any] | None
    desc: str
    source: fx.Node | None


class Inspector:
    """Visits the nodes of one forward pass in order (``visit`` is the walker's callback)."""

    def __init__(self, gm: fx.GraphModule, walker: Walker, recorder: Recorder) -> None:
        self.gm = gm
        self.walker = walker
        self.rec = recorder
        self.pending: dict[fx.Node, _Pending] = {}
        self.batch_second: set[fx.Node] = set()  # fused qkv permuted (3, B, heads, N, d): batch in dim 1
        self.folded: dict[fx.Node, L.Layout] = {}  # tokens flattened into the batch (B·N, D): their own layout
        self.got_input = False
        self.output: Any = None
        self.windows = Windows(recorder, walker)  # window partitions, rolls and pads (Swin)
        self.padded: dict[fx.Node, tuple[int, int, str, fx.Node]] = {}  # reflect / replicate pads awaiting a conv

    def visit(self, n: fx.Node, result: Any) -> None:
        if n.op == "placeholder":
            if not self.got_input:
                self.got_input = True
                c, h, w = self.rec.shape
                self.rec.alias(n, Flow(self.rec.shape, INPUT_GEOMETRY, "input"), L.feature_map(c, (h, w)))
            return
        if n.op == "get_attr":
            return
        if n.op == "output":
            self.output = n.args[0]
            for i in n.all_input_nodes:
                if i in self.windows.toks and not self.windows.leave(i):
                    value = self.walker.value(i)
                    what = "folds part of the image into the batch (a patch unfold or window partition, as " \
                        "MobileViT's and Swin's)" if isinstance(value, torch.Tensor) and value.dim() > 0 and \
                        value.shape[0] != BATCH else "splits the rows or columns of the image into blocks (a " \
                        "window partition, a roll, a pad)"
                    self.rec.stop(i, f"returns a tensor that {what} and is no map again (H x W x C, C x H x W or "
                                     f"H·W tokens): each unit then depends on a block layout no window describes")
            return
        waiting = [i for i in n.all_input_nodes if i in self.padded]
        if waiting:
            self._after_pad(n, result, waiting[0])
            return
        if self._mirror_pad(n):
            return
        if self.windows.toks and self.windows.holds(n):
            if self._in_region(n, result):
                return
        elif self._enters_region(n, result):
            return
        sources = [i for i in n.all_input_nodes if i in self.rec.flows or i in self.pending]
        if not sources:
            return  # computed from constants only
        if n.op == "call_function" and n.target is operator.getitem and n.args[0] in self.pending:
            self._pending_item(n, result)
            return
        if isinstance(result, (tuple, list)) and result and isinstance(result[0], torch.Tensor):
            self._tuple_result(n, sources, result)
            return
        if not isinstance(result, torch.Tensor):
            return  # sizes, shapes and other plain values
        if any(s in self.pending for s in sources):
            self.rec.stop(n, "uses a tuple of tensors directly; rfcalc follows its items (x[0], x[1], ...) only")
        self._node(n, result)

    def _node(self, n: fx.Node, result: torch.Tensor) -> None:
        desc, action, call = self._classify(n)
        if self._moves_batch_second(n, action, result, desc) or self._folds_tokens(n, action, result, desc):
            return
        if isinstance(action, Index) and any(i in self.batch_second for i in n.all_input_nodes):
            try:
                action = Index(_batch_first_index(action.index))  # qkv[0]: a piece of dim 0, batch first again
            except ValueError as exc:
                self.rec.stop(n, str(exc), desc)
        elif any(i in self.batch_second for i in n.all_input_nodes):
            self.rec.stop(n, "works on a tensor whose batch is in dim 1 (a fused qkv permuted to (3, B, ...)); "
                             "rfcalc follows taking its pieces along dim 0 (unbind(0), [0], chunk(.., 0))", desc)
        out = self._real(n, result)
        self._whole_units(n, action, desc)
        if isinstance(action, Attention) and isinstance(call, Call) and call.module is None:
            follow_sdpa(self.rec, n, call, out, desc)
            return
        if isinstance(action, Unsupported):
            self.rec.stop(n, f"{action.reason}", desc)
        if type(action) in SEVERAL_INPUTS:
            SEVERAL_INPUTS[type(action)](self.rec, n, action, call, out, desc)
            return
        source = self._single_source(n, desc)
        flow, layout = self.rec.flows[source], self.rec.layouts[source]
        if isinstance(action, U.Resample):
            follow_resample(self.rec, n, action, flow, layout, out, desc)
        elif action is None:
            follow_unknown(self.rec, n, flow, layout, out, desc, self._replay(n, source))
        else:
            ONE_INPUT[type(action)](self.rec, n, action, flow, layout, out, desc)

    # -- window partitions (rfcalc.inspection.windows) ------------------------------------------------------
    def _enters_region(self, n: fx.Node, result: Any) -> bool:
        """A roll or a zero pad of a followed map, or a tensor whose image rows or columns are cut into blocks
        that is then folded into the batch or read by anything but a reshape or permute: followed element by
        element from here (:mod:`rfcalc.inspection.windows`)."""
        live = [i for i in n.all_input_nodes if i in self.rec.flows and i in self.rec.layouts]
        if len(live) != 1 or not isinstance(result, (torch.Tensor, tuple, list)):
            return False
        source = live[0]
        layout = self.rec.layouts[source]
        rolled = (n.op == "call_function" and n.target is torch.roll) or (n.op == "call_method" and n.target == "roll")
        padded = n.op == "call_function" and n.target is torch.nn.functional.pad and self._zero_pad(n) and not any(
            self._windowed(u, ("conv", "maxpool", "avgpool")) for u in n.users)  # a conv's or pool's padding
        cut = L.split_units(layout)
        folded = isinstance(result, torch.Tensor) and result.dim() > 0 and result.shape[0] > BATCH \
            and result.shape[0] % BATCH == 0 and (cut or result.dim() >= 3) \
            and any(L.has_units(d) for d in layout) and source not in self.folded
        if cut and not folded and isinstance(result, torch.Tensor):
            folded = not isinstance(classify(n, self.gm), (Reshape, Permute, Copy))
        # a function missing from the table that only moves data (timm's window_reverse, a wrapped reshape)
        moved = n.op == "call_function" and isinstance(result, torch.Tensor) and n.target not in _PIXEL \
            and n.target not in _INTERPOLATE and classify(n, self.gm) is None
        if not (rolled or padded or folded or moved) or not self.windows.enter(source):
            return False
        desc, action, call = self._classify(n)
        stepped = self.windows.step(n, result, action, call)
        before = self.windows.toks.pop(source)[1]
        if not stepped:
            return False
        after = self.windows.toks[n][1]
        if isinstance(after, torch.Tensor) and after.shape == before.shape and torch.equal(after, before):
            del self.windows.toks[n]  # every element where it was: the same values
            self.rec.alias(n, self.rec.flows[source], layout)
            return True
        self._leave_when_read(n)
        return True

    # -- reflect / replicate padding read by a conv -----------------------------------------------------------
    def _mirror_pad(self, n: fx.Node) -> bool:
        """``F.pad(x, [l, r, t, b], mode="reflect" | "replicate")`` of a map, equal on both sides of each axis (or
        a zero pad that only convs read): held back until the call that reads it (:meth:`_after_pad`)."""
        if n.op != "call_function" or n.target is not torch.nn.functional.pad:
            return False
        args, kwargs = self.walker.fetch_args_kwargs_from_env(n)
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        pads = kwargs.get("pad", args[1] if len(args) > 1 else None)
        source = n.args[0] if n.args else kwargs.get("input")
        value = kwargs.get("value", args[3] if len(args) > 3 else None)
        zero = mode == "constant" and value in (None, 0, 0.0) and bool(n.users) and all(
            self._windowed(u, ("conv",)) for u in n.users)
        if not (zero or mode in ("reflect", "replicate")) or not isinstance(source, fx.Node) \
                or source not in self.rec.flows \
                or not isinstance(pads, (list, tuple)) or len(pads) != 4 or pads[0] != pads[1] or pads[2] != pads[3]:
            return False
        flow, layout = self.rec.flows[source], self.rec.layouts[source]
        if len(flow.shape) != 3 or not is_canonical(self.rec, flow, layout):
            return False
        self.padded[n] = (int(pads[2]), int(pads[0]), str(mode), source)
        return True

    def _windowed(self, n: fx.Node, ops: tuple[str, ...]) -> bool:
        """Whether node ``n`` is one of the spec's ``ops`` (read before it runs: a module, or ``F.conv2d`` and
        the pools by name, whose converters need the weight's value)."""
        action = classify(n, self.gm)
        if isinstance(action, AsLayer):
            return action.layer.op in ops
        name = getattr(n.target, "__name__", "") if n.op == "call_function" else ""
        return _WINDOW_FUNCTIONS.get(name) in ops

    def _after_pad(self, n: fx.Node, result: Any, pad: fx.Node) -> None:
        """A conv reading a reflect / replicate pad: followed as the conv with that padding (``padding=``) when
        each of its units reads, through the mirrored taps, only pixels its zero-padded taps read too (TResNet's
        blur pool: a 3x3 blur after a reflect pad of 1); then the table's windows and pixels are exact."""
        ph, pw, mode, source = self.padded[pad]
        desc, action, _ = self._classify(n)
        flow, layout = self.rec.flows[source], self.rec.layouts[source]
        layer = action.layer if isinstance(action, AsLayer) else None
        others = [i for i in n.all_input_nodes if i is not pad and (i in self.rec.flows or i in self.padded)]
        if layer is not None and layer.op == "conv" and not others and isinstance(result, torch.Tensor) \
                and getattr(layer, "padding", None) == (0, 0):
            k = getattr(layer, "k")
            stride, dilation = getattr(layer, "stride"), getattr(layer, "dilation")
            _, h, w = flow.shape
            if all(_mirror_inside(size, k[a], stride[a], dilation[a], p, mode)
                   for a, (size, p) in enumerate(((h, ph), (w, pw)))):
                padded = AsLayer(layer.model_copy(update={"padding": (ph, pw)}), action.spec_note,
                                 dropped=action.dropped + ((f"{mode} padding (F.pad before it)",)
                                                           if mode != "constant" else ()))
                follow_layer(self.rec, n, padded, flow, layout, self._real(n, result), desc)
                return
        self.rec.stop(pad, f"(pad) pads the feature map by {[pw, pw, ph, ph]} ({mode}) for {desc}; rfcalc follows "
                           f"{mode} padding read by a conv (without padding of its own) whose taps on the padding "
                           f"mirror pixels its zero-padded taps read anyway (then it is the conv's padding=)")

    def _zero_pad(self, n: fx.Node) -> bool:
        args, kwargs = self.walker.fetch_args_kwargs_from_env(n)
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        value = kwargs.get("value", args[3] if len(args) > 3 else None)
        pads = kwargs.get("pad", args[1] if len(args) > 1 else None)
        return mode == "constant" and value in (None, 0, 0.0) and isinstance(pads, (list, tuple)) and any(pads)

    def _in_region(self, n: fx.Node, result: Any) -> bool:
        """Node ``n`` reads a region's tensor: followed inside it, or the region's tensors it reads become rows
        (maps again) before ``n`` is followed as usual."""
        tensors = isinstance(result, torch.Tensor) or (
            isinstance(result, (tuple, list)) and bool(result) and isinstance(result[0], torch.Tensor))
        if not tensors:
            return True  # sizes and shapes
        desc, action, call = self._classify(n)
        if self.windows.step(n, result, action, call):
            self._leave_when_read(n)
            return True
        for i in n.all_input_nodes:
            if i in self.windows.toks and not self.windows.leave(i):
                self.rec.stop(n, "works on a tensor that splits the rows or columns of the image into blocks "
                                 "(a window partition folded into the batch, a roll, a pad) in a way rfcalc cannot "
                                 "follow: rfcalc follows data movement, per-token linear layers and norms, "
                                 "element-wise ops, matrix products, softmax and attention on it, until it is a "
                                 "map again (H x W x C, C x H x W or H·W tokens)", desc)
        return False

    def _leave_when_read(self, n: fx.Node) -> None:
        """A region's tensor that is a map again becomes a row as soon as a call other than data movement reads
        it (the rows of a block come out where the block ends)."""
        if isinstance(self.windows.toks[n][1], tuple):
            return
        for user in n.users:
            action = classify(user, self.gm)
            moving = isinstance(action, (Reshape, Permute, Copy, Index, Split)) or (
                user.op == "call_function" and user.target in (torch.roll, torch.nn.functional.pad)) or (
                user.op == "call_method" and user.target == "roll") or (
                user.op == "call_function" and action is None and user.target is not operator.getitem)
            if not moving:
                self.windows.leave(n, eager=True)
                return

    def _real(self, n: fx.Node, result: torch.Tensor) -> tuple[int, ...]:
        if result.dim() == 0 or result.shape[0] != BATCH:
            if any(L.split_units(self.rec.layouts[i]) for i in n.all_input_nodes if i in self.rec.layouts):
                self.rec.stop(n, f"folds blocks of the image's rows and columns into the batch (a window "
                                 f"partition, shape {tuple(result.shape)}): units then see only their window of the "
                                 f"image, a block layout the table's windows cannot state")
            if result.dim() > 0 and result.shape[0] > BATCH and result.shape[0] % BATCH == 0 and any(
                    L.has_units(d) for i in n.all_input_nodes if i in self.rec.layouts for d in self.rec.layouts[i]):
                self.rec.stop(n, f"folds part of the image into the batch (shape {tuple(result.shape)}: a patch "
                                 f"unfold or window partition, as MobileViT's and Swin's): units then see blocks of "
                                 f"the image that the table's windows cannot state")
            self.rec.stop(n, f"returns a tensor of shape {tuple(result.shape)} without the batch dimension first")
        return tuple(int(s) for s in result.shape[1:])

    def _classify(self, n: fx.Node) -> tuple[str, Any, Call | None]:
        """(description, action, bound call); the action is an :class:`~rfcalc.ops.actions.Action`, an upsampling
        (:class:`~rfcalc.inspection.upsample.Resample`) or None (not in the table)."""
        if n.op == "call_module":
            module = self.rec.modules[str(n.target)]
            resample = U.from_module(module)
            if resample is not None:
                return type(module).__name__, resample, None
            desc, action = module_action(module)
            return desc, action, Call(desc, module)
        if n.op == "call_function" and n.target in _PIXEL:
            return getattr(n.target, "__name__", "pixel_shuffle"), _PIXEL[n.target], None
        if n.op == "call_function" and n.target in _INTERPOLATE:
            args, kwargs = self.walker.fetch_args_kwargs_from_env(n)
            bound = bind(_INTERPOLATE_SIGNATURE, args, kwargs) or {}
            return "interpolate", U.interpolation(str(bound.get("mode", "nearest")),
                                                  bound.get("align_corners")), None
        if n.op == "call_function":
            entry = FUNCTIONS.get(n.target)
            desc = getattr(n.target, "__name__", str(n.target))
        else:
            entry = METHODS.get(str(n.target))
            desc = f".{n.target}()"
        if entry is None:
            return desc, None, None
        signature, handler = entry
        args, kwargs = self.walker.fetch_args_kwargs_from_env(n)  # only for calls the table knows
        values = bind(signature, args, kwargs)
        if values is None:
            return desc, None, None
        call = Call(desc, None, values)
        call.values["__nodes__"] = bind(signature, tuple(n.args), dict(n.kwargs))
        return desc, handler(call), call

    def _whole_units(self, n: fx.Node, action: Any, desc: str) -> None:
        """Only reshapes and permutes follow a tensor whose image rows or columns are cut into blocks."""
        if isinstance(action, (Reshape, Permute, Copy)):
            return
        if any(L.split_units(self.rec.layouts[i]) for i in n.all_input_nodes if i in self.rec.layouts):
            self.rec.stop(n, "works on a tensor that splits the rows or columns of the image into blocks across "
                             "dimensions (a window partition, a pixel shuffle): each unit then depends on a block "
                             "layout no window describes; rfcalc follows such reshapes and permutes back to the "
                             "map or to space-to-depth (C·s·s x H/s x W/s) only", desc)

    def _folds_tokens(self, n: fx.Node, action: Any, result: torch.Tensor, desc: str) -> bool:
        """LeViT's ``LinearNorm``: ``bn(x.flatten(0, 1)).reshape_as(x)`` folds the tokens into the batch for a
        BatchNorm1d over features and back. Followed as the token layout, per-feature ops only in between."""
        inputs = [i for i in n.all_input_nodes if i in self.folded]
        if inputs:
            source = inputs[0]
            layout = self.folded[source]
            flow = self.rec.flows[source]
            if isinstance(action, (Reshape, Copy)) and result.dim() > 1 and result.shape[0] == BATCH \
                    and tuple(result.shape[1:]) == L.shape(layout):
                self.rec.alias(n, flow, layout)  # back to (B, N, D)
                return True
            per_feature = isinstance(action, (Pointwise, Copy)) or (
                isinstance(action, AsLayer) and REGISTRY[action.layer.op].mixing == "pointwise")
            if not per_feature or len(inputs) != 1 or result.dim() != 2:
                self.rec.stop(n, "works on tokens flattened into the batch (x.flatten(0, 1)); rfcalc follows "
                                 "per-feature ops (a BatchNorm1d, an activation) and the reshape back only", desc)
            op = action.layer.op if isinstance(action, AsLayer) else op_name(desc)
            self.rec.row(n, op, flow, L.shape(layout), desc, f"{op} on tokens folded into the batch has no spec op",
                         layout=layout, channels="keep", named=True)
            self.folded[n] = layout
            return True
        if not isinstance(action, Reshape) or result.dim() != 2:
            return False
        sources = [i for i in n.all_input_nodes if i in self.rec.flows]
        if len(sources) != 1:
            return False
        layout = self.rec.layouts[sources[0]]
        if len(layout) != 2 or L.has_units(layout[1]) or L.dim_size(layout[0]) < 2 \
                or result.shape[0] != BATCH * L.dim_size(layout[0]):
            return False
        self.rec.alias(n, self.rec.flows[sources[0]], layout)
        self.folded[n] = layout
        return True

    def _moves_batch_second(self, n: fx.Node, action: Any, result: torch.Tensor, desc: str) -> bool:
        """timm's fused qkv: ``reshape(B, N, 3, heads, d).permute(2, 0, 3, 1, 4)`` puts the batch in dim 1 until
        ``unbind(0)`` (or ``[0]``, ``[1]``, ``[2]``) takes q, k and v apart: followed as that layout, marked."""
        if not isinstance(action, Permute) or action.order is None or action.swap is not None:
            return False
        rank = result.dim()
        order = [o % rank for o in action.order]
        if len(order) != rank or order[0] == 0 or len(order) < 3 or order[1] != 0 or result.shape[1] != BATCH:
            return False
        source = self._single_source(n, desc)
        layout = self.rec.layouts[source]
        new = L.permute(layout, [o - 1 for o in order if o != 0])
        if L.has_units(new[0]):
            self.rec.stop(n, "moves the batch to dim 1 behind image units; rfcalc follows it behind channels only "
                             "(a fused qkv)", desc)
        self.rec.alias(n, self.rec.flows[source], new)
        self.batch_second.add(n)
        return True

    def _tuple_result(self, n: fx.Node, sources: list[fx.Node], result: Any) -> None:
        desc, action, _ = self._classify(n)
        self._whole_units(n, action, desc)
        if isinstance(action, Split) and any(s in self.batch_second for s in sources):
            if action.dim % (len(self.rec.layouts[sources[0]]) + 1) != 0:
                self.rec.stop(n, "splits a fused qkv along another dim than 0", desc)
            action = Split(1, action.sizes, action.chunks)  # its dim 0 is the first after the batch
        if isinstance(action, Unsupported):
            self.rec.stop(n, action.reason, desc)
        if isinstance(action, Attention):
            follow_attention(self.rec, n, action, self._real(n, result[0]), desc)
            self.pending[n] = _Pending(action, self.rec.flows[n], None, desc, None)
            return
        if len(sources) != 1 or sources[0] not in self.rec.flows:
            self.rec.stop(n, "returns several tensors computed from several inputs", desc)
        source = sources[0]
        self.pending[n] = _Pending(action, self.rec.flows[source], self._replay(n, source), desc, source)

    def _pending_item(self, n: fx.Node, result: Any) -> None:
        pending = self.pending[n.args[0]]  # type: ignore[index]
        index = n.args[1]
        if isinstance(pending.action, Attention):
            if index != 0:
                if n.users:
                    self.rec.stop(n, "uses the attention weights; rfcalc follows the attention output (item 0)",
                                  pending.desc)
                return
            self.rec.alias(n, self.rec.flows[n.args[0]], self.rec.layouts[n.args[0]])  # type: ignore[index]
            return
        if not isinstance(result, torch.Tensor) or result.dim() == 0 or result.shape[0] != BATCH:
            self.rec.stop(n, f"takes item {index!r} of {pending.desc}, which is not a batch of tensors")
        out = tuple(int(s) for s in result.shape[1:])
        assert pending.source is not None and pending.flow is not None and pending.replay is not None
        layout = self.rec.layouts[pending.source]
        if isinstance(pending.action, Split) and isinstance(index, int):
            split_item(self.rec, n, pending.action, index, pending.flow, layout, out, pending.desc)
            return
        replay = pending.replay
        follow_unknown(self.rec, n, pending.flow, layout, out, pending.desc, lambda x: replay(x)[index])

    def _single_source(self, n: fx.Node, desc: str) -> fx.Node:
        sources = [i for i in n.all_input_nodes if i in self.rec.flows]
        if len(sources) != 1:
            self.rec.stop(n, "takes several tensors computed from the input; rfcalc follows torch.cat, "
                             "+, -, *, /, @ (matmul) and nn.MultiheadAttention for that: write attention as "
                             "(q @ k.transpose(-2, -1)).softmax(-1) @ v or with nn.MultiheadAttention", desc)
        return sources[0]

    def _replay(self, n: fx.Node, source: fx.Node) -> Callable[[torch.Tensor], Any]:
        """Re-runs node ``n`` with ``x`` in place of ``source`` (other arguments as in the real forward)."""
        values = {i: self.walker.value(i) for i in n.all_input_nodes}

        def run(x: torch.Tensor) -> Any:
            def sub(a: fx.Node) -> Any:
                return x if a is source else values[a]

            return self.walker.replay(n, fx.node.map_arg(n.args, sub), fx.node.map_arg(n.kwargs, sub))

        return run


_WINDOW_FUNCTIONS = {"conv2d": "conv", "max_pool2d": "maxpool", "avg_pool2d": "avgpool"}


def _mirror_inside(size: int, k: int, stride: int, dilation: int, pad: int, mode: str) -> bool:
    """Whether every output unit of a conv (``k``, ``stride``, ``dilation``, no padding of its own) on a map of
    ``size`` units padded by ``pad`` with ``mode`` reads exactly the pixels it would read with zero padding."""
    if mode == "constant":
        return True  # zeros: the conv's own padding
    out = (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    for u in range(out):
        taps = [u * stride - pad + j * dilation for j in range(k)]
        inside = {t for t in taps if 0 <= t < size}
        mirrored = {(-t if t < 0 else 2 * (size - 1) - t if t >= size else t) if mode == "reflect"
                    else min(max(t, 0), size - 1) for t in taps}
        if mirrored != inside:
            return False
    return True


def _batch_first_index(index: Any) -> Any:
    """``x[i]`` of a tensor whose batch is in dim 1 (a fused qkv), as the same pick in its batch-first layout."""
    items = index if isinstance(index, tuple) else (index,)
    if len(items) > 1 and items[1] != slice(None):
        raise ValueError("indexes the batch of a fused qkv")
    return (slice(None), items[0], *items[2:])
