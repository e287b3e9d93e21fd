"""The gradient oracle on an inspected module: each row against what the module's output at that node really
depends on. Needs torch.

The module is made strictly positive (:func:`rfcalc.model.oracle.positive_copy`), traced with the same tracer
(so its nodes carry the same names) and run on a random positive input; for chosen units of each row's fx
node, one backward pass reads the input pixels they depend on (:func:`rfcalc.model.oracle.unit_masks`; a unit
is picked out of the real tensor with the row's layout, so token sequences, flattened maps and channels-last
maps work alike). Checked:

- ``global``: a global row's first, middle and last units depend on every pixel; a row that is not global
  has a unit that misses some (the one :func:`rfcalc.table.reach.partial_unit` names);
- the window (``rf``, ``jump``, ``start``) of every feature-map row that is not global: the first, middle and
  last units' extremes, as :func:`rfcalc.model.oracle.window_mismatches` reads them;
- parameters: the table's count against what the forward uses (parameters that get a gradient).
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rfcalc.inspection import layout as L
from rfcalc.inspection.api import trace_module, traced
from rfcalc.inspection.lookup import resolve
from rfcalc.inspection.merges import HIDE, hides_keys
from rfcalc.inspection.result import Inspection
from rfcalc.model.oracle import (
    PositiveAttention,
    default_units,
    global_mismatches,
    mask_window,
    positive_copy,
    unit_masks,
    window_mismatches,
)
from rfcalc.ops.registry import REGISTRY
from rfcalc.table import reach as R


def unit_selector(layout: L.Layout, unit: Sequence[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elements of one unit (one index per unit axis of the reach) in one sample of a tensor of ``layout``."""
    sizes = [f.size for d in layout for f in d]
    index = tuple(unit[f.axis] if f.kind == "u" else slice(None) for d in layout for f in d)
    return lambda y: y.reshape(sizes)[index] if sizes else y.reshape(())


def checked_units(reach: R.Reach) -> list[tuple[int, ...]]:
    """The first, middle and last unit, and one that misses a pixel (if any)."""
    count = R.unit_count(reach)
    picks = []
    for flat in dict.fromkeys((0, count // 2, count - 1)):
        unit = []
        for size in reversed(reach.dims):
            flat, digit = divmod(flat, size)
            unit.append(digit)
        picks.append(tuple(reversed(unit)))
    partial = R.partial_unit(reach)
    if partial is not None and tuple(partial) not in picks:
        picks.append(tuple(partial))
    return picks


def positive_mix(x: torch.Tensor, dim: int, *args: Any, **kwargs: Any) -> torch.Tensor:
    """The positive stand-in of a softmax along ``dim``: ``x + mean(x)`` along it. Every output depends on the
    whole line with a positive derivative, where a softmax of large positive scores saturates to 0 and 1.
    Entries that are ``-inf`` (a mask that hides them: :func:`hide_masked`) are 0 and take no part."""
    hidden = torch.isneginf(x)
    if not bool(hidden.any()):
        out = x + x.mean(dim, keepdim=True)
    else:
        shown = (~hidden).to(x.dtype)
        y = torch.where(hidden, torch.zeros((), dtype=x.dtype), x)
        mean = y.sum(dim, keepdim=True) / shown.sum(dim, keepdim=True).clamp(min=1)
        out = torch.where(hidden, torch.zeros((), dtype=x.dtype), y + mean)
    # scaled to sum to 1 along the line by a constant (detached) factor, as a softmax's weights: the derivatives
    # stay positive, and the values do not grow block after block (scores are products of two such values:
    # without it, Swin's fifth attention block overflows float64 and its gradients are NaN)
    return out / out.detach().sum(dim, keepdim=True).clamp(min=1e-300)


def hide_masked(mask: torch.Tensor) -> torch.Tensor:
    """An attention mask as the oracle reads it: entries of -50 or less (Swin's -100) or ``False`` hide their key
    (``-inf``; contract section 6.6), the others are added as they are."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    return mask.masked_fill(mask <= HIDE, float("-inf"))


def positive_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
                  *args: Any, **kwargs: Any) -> torch.Tensor:
    """The positive stand-in of ``F.scaled_dot_product_attention``: its scores (plus the mask, read by
    :func:`hide_masked`) through :func:`positive_mix` instead of a softmax."""
    scores = q @ k.transpose(-2, -1)
    if attn_mask is not None:
        scores = scores + hide_masked(attn_mask).to(scores.dtype)
    return positive_mix(scores, -1) @ v


def positive_identity(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """The positive stand-in of a norm or a saturating gate called as a function: its input."""
    return x


_SOFTMAX = {torch.softmax, torch.nn.functional.softmax, torch.log_softmax, torch.nn.functional.log_softmax}
_F = torch.nn.functional
_IDENTITY_METHODS = {"sigmoid", "sigmoid_", "tanh", "tanh_"}
# the functions of every registered op whose `positive` is "identity" (norms, activations, dropout), and the
# norms and saturating gates inspected code uses besides
_IDENTITY_FUNCTIONS = {_F.layer_norm, _F.group_norm, _F.batch_norm, _F.instance_norm, _F.local_response_norm,
                       _F.hardsigmoid, _F.hardtanh, _F.relu6, _F.sigmoid, torch.sigmoid, _F.tanh, torch.tanh,
                       *(resolve(path) for op in REGISTRY.values() if op.positive == "identity"
                         for rule in op.inspect.functions for path in rule.functions)}


def positive_max_pool(x: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                      ceil_mode: bool = False, return_indices: bool = False) -> torch.Tensor:
    """The positive stand-in of ``F.max_pool2d``: the average pool of the same windows (a max pool's gradient
    reaches one pixel per window)."""
    if dilation not in (1, (1, 1), [1, 1]):
        raise ValueError("a dilated max pool has no average-pool stand-in")
    return _F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode)


def positive_amax(x: torch.Tensor, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    """The positive stand-in of ``amax`` (a max's gradient reaches one element): the mean over the same dims."""
    return x.mean(dim=dim if dim is not None else tuple(range(x.dim())), keepdim=keepdim)


class GateSwitch:
    """Whether the binary ops of a :func:`gated_graph` hold broadcast 1x1 gates constant (``on``), and how many
    calls met such a gate (``seen``, counted whether on or not)."""

    def __init__(self) -> None:
        self.on = False
        self.seen = 0


def _gated(op: Callable[..., Any], switch: GateSwitch) -> Callable[..., Any]:
    """``op`` (``*``, ``+``, ...) that, while ``switch.on``, detaches a 1x1 map broadcast over a larger map: the
    window of a row after a squeeze-and-excitation gate is the one through its full-size operand; what the gate
    adds is what ``global`` reports (contract section 6.6)."""
    def gated(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() == b.dim() == 4:
            if tuple(a.shape[-2:]) == (1, 1) and tuple(b.shape[-2:]) != (1, 1):
                switch.seen += 1
                a = a.detach() if switch.on else a
            elif tuple(b.shape[-2:]) == (1, 1) and tuple(a.shape[-2:]) != (1, 1):
                switch.seen += 1
                b = b.detach() if switch.on else b
        return op(a, b, *args, **kwargs)
    return gated


_BINARY_FUNCTIONS = {operator.mul, operator.add, operator.sub, operator.truediv, torch.mul, torch.add, torch.sub,
                     torch.div}
_BINARY_METHODS = {"mul": operator.mul, "add": operator.add, "sub": operator.sub, "div": operator.truediv}


def gated_graph(gm: fx.GraphModule, switch: GateSwitch) -> fx.GraphModule:
    """``gm`` with every binary op wrapped by :func:`_gated` (node names unchanged)."""
    for n in gm.graph.nodes:
        if n.op == "call_function" and n.target in _BINARY_FUNCTIONS:
            n.target = _gated(n.target, switch)
        elif n.op == "call_method" and n.target in _BINARY_METHODS:
            n.op, n.target = "call_function", _gated(_BINARY_METHODS[n.target], switch)
    gm.recompile()
    return gm


def _capture(gm: fx.GraphModule, x: torch.Tensor, nodes: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    """Run ``gm`` on ``x``; each row's output (``nodes``: node name -> the rows it computes)."""
    captured: dict[str, torch.Tensor] = {}

    class Keeper(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            if n.name in nodes:
                value = result[0] if isinstance(result, (tuple, list)) else result
                for name in nodes[n.name]:
                    captured[name] = value
            return result

    Keeper(gm).run(x)
    return captured


def _masks(x: torch.Tensor, value: torch.Tensor, layout: L.Layout, units: list[tuple[int, ...]], batch: int,
           seed: int) -> dict[tuple[int, ...], torch.Tensor]:
    """Per unit of ``value``, the input pixels it depends on (``batch`` units per backward pass)."""
    masks: dict[tuple[int, ...], torch.Tensor] = {}
    for start in range(0, len(units), batch):
        chunk = units[start:start + batch]
        masks.update(zip(chunk, unit_masks(x, value, [unit_selector(layout, u) for u in chunk], seed=seed + start)))
    return masks


def positive_graph(gm: fx.GraphModule) -> fx.GraphModule:
    """``gm`` with every softmax call replaced by :func:`positive_mix`, max pools called as functions by
    :func:`positive_max_pool`, and norms and saturating gates called as functions (inside modules that are
    traced through) by :func:`positive_identity` (node names unchanged)."""
    for n in gm.graph.nodes:
        if n.op == "call_function" and n.target in _IDENTITY_FUNCTIONS or n.op == "call_method" and \
                n.target in _IDENTITY_METHODS:  # timm's own Sigmoid module calls x.sigmoid() / x.sigmoid_()
            n.op, n.target, n.args, n.kwargs = "call_function", positive_identity, (n.args[0],), {}
        elif n.op == "call_function" and n.target is _F.scaled_dot_product_attention:
            n.target, n.args, n.kwargs = positive_sdpa, tuple(n.args[:4]), {
                k: v for k, v in n.kwargs.items() if k in ("query", "key", "value", "attn_mask")}
        elif n.op == "get_attr" and _is_mask(gm, str(n.target)):
            with gm.graph.inserting_after(n):
                hidden = gm.graph.call_function(hide_masked, (n,))
            n.replace_all_uses_with(hidden, delete_user_cb=lambda user, new=hidden: user is not new)
        elif n.op == "call_function" and n.target in (_F.max_pool2d, torch.max_pool2d):
            n.target = positive_max_pool
        elif n.op == "call_function" and n.target is torch.amax or n.op == "call_method" and n.target == "amax":
            n.op, n.target = "call_function", positive_amax
        elif n.op == "call_function" and n.target is _F.adaptive_max_pool2d:
            n.target, n.args = _F.adaptive_avg_pool2d, n.args[:2]
            n.kwargs = {k: v for k, v in n.kwargs.items() if k != "return_indices"}
        elif n.op == "call_function" and n.target in _SOFTMAX or n.op == "call_method" and n.target in (
                "softmax", "log_softmax"):
            dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
            n.op, n.target, n.args, n.kwargs = "call_function", positive_mix, (n.args[0], dim), {}
        elif n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)), (nn.Softmax, nn.LogSoftmax)):
            dim = gm.get_submodule(str(n.target)).dim
            n.op, n.target, n.args, n.kwargs = "call_function", positive_mix, (n.args[0], dim), {}
    gm.recompile()
    return gm


def _is_mask(gm: fx.GraphModule, target: str) -> bool:
    """A constant of the module with entries of -50 or less: an attention mask (Swin's shifted windows)."""
    value: Any = gm
    try:
        for atom in target.split("."):
            value = getattr(value, atom)
    except AttributeError:
        return False
    return hides_keys(value)


def inspection_problems(model: nn.Module, input_shape: Sequence[int], rows: Sequence[str] | None = None, *,
                        inspection: Inspection | None = None, batch: int = 3, seed: int = 0) -> list[str]:
    """Everything where the gradient oracle disagrees with ``rfcalc inspect``'s table of ``model`` (empty: none).

    ``rows`` limits the check to those rows (every row by default; the parameter count is always checked).
    """
    inspection = inspection or trace_module(model, tuple(input_shape))
    report = inspection.report
    wanted = [r.name for r in report.rows] if rows is None else list(rows)
    nodes: dict[str, list[str]] = {}
    for name in wanted:
        nodes.setdefault(inspection.row_nodes[name], []).append(name)
    switch = GateSwitch()
    gm = gated_graph(positive_graph(traced(positive_copy(model), leaves=(PositiveAttention,),
                                           shape=tuple(input_shape), batch=batch)), switch)
    x = torch.rand((batch, *input_shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    captured = _capture(gm, x, nodes)
    switch.on = True  # windows are read with broadcast 1x1 gates held constant (see _gated): a second run if any
    local = _capture(gm, x, nodes) if switch.seen else captured
    problems = _parameter_problems(model, input_shape, report.params)
    hw = (int(input_shape[1]), int(input_shape[2]))
    by_name = {r.name: r for r in report.rows}
    for name in wanted:
        row = by_name[name]
        if name not in captured:
            problems.append(f"{name}: node {inspection.row_nodes[name]} did not run in the positive copy")
            continue
        layout = inspection.row_layouts[name]
        reach = report.reaches[name]
        value = captured[name]
        if value.dim() == len(layout) and tuple(value.shape) == (batch * L.shape(layout)[0], *L.shape(layout)[1:]):
            value = value.reshape(batch, *L.shape(layout))  # tokens folded into the batch (LeViT's LinearNorm)
            if local is not captured:
                local[name] = local[name].reshape(batch, *L.shape(layout))
        if tuple(value.shape[1:]) != L.shape(layout):
            problems.append(f"{name}: the node outputs {tuple(value.shape[1:])}, its layout says {L.shape(layout)}")
            continue
        units = checked_units(reach)
        hull = name in inspection.hull_rows
        map_row = row.is_feature_map and isinstance(reach, R.Grid) and (
            L.is_map(layout, reach.dims) or hull and L.is_channels_last(layout, reach.dims))
        # a global row's window is checked too where gates held constant leave a window (squeeze-and-excitation)
        window = map_row and (not row.is_global or local is not captured)
        if window:
            units = list(dict.fromkeys([*units, *default_units(reach.dims[0], reach.dims[1])]))
            if hull:  # a window that holds every unit's: every unit of the middle row and column
                hu, wu = reach.dims
                units = list(dict.fromkeys([*units, *((i, wu // 2) for i in range(hu)),
                                            *((hu // 2, j) for j in range(wu))]))
        masks = _masks(x, value, layout, units, batch, seed)
        problems.extend(global_mismatches(row, reach, masks))  # type: ignore[arg-type]
        if hull:
            problems.extend(area_mismatches(name, reach, masks))
        if window and local is not captured:
            masks = _masks(x, local[name], layout, units, batch, seed)
            if row.is_global and all(bool(m.all()) for m in masks.values()):
                window = False  # global through more than a gate (attention, or the window covers the image)
        if window:
            extents = {(u[0], u[1]): mask_window(m) for u, m in masks.items()}
            problems.extend(outside_window(row, extents) if hull else window_mismatches(row, extents, hw))
            if hull and row.op in ("upsample", "conv_transpose"):
                problems.extend(loose_window(row, extents, hw))
    return problems


def area_mismatches(name: str, reach: R.Reach, masks: dict[tuple[int, ...], torch.Tensor]) -> list[str]:
    """Where a unit's measured pixels differ from the ones its reach names (rows after upsampling, whose
    window holds every unit's: each unit's own pixels are checked exactly here)."""
    problems = []
    image = reach.image
    for unit, mask in masks.items():
        expected = torch.zeros((image.h, image.w), dtype=torch.bool)
        for rows, cols in R.unit_area(reach, *unit):
            r = torch.tensor([rows >> i & 1 for i in range(image.h)], dtype=torch.bool)
            c = torch.tensor([cols >> j & 1 for j in range(image.w)], dtype=torch.bool)
            expected |= r[:, None] & c[None, :]
        if not torch.equal(expected, mask.cpu()):
            problems.append(f"{name} unit {unit}: {int((expected != mask.cpu()).sum())} pixels differ from its reach")
    return problems


def outside_window(row: Any, measured: dict[tuple[int, int], Any]) -> list[str]:
    """Where a unit depends on a pixel outside the row's window (rows whose window is a hull)."""
    problems = []
    for unit, intervals in measured.items():
        for axis, support in enumerate(intervals):
            if support is None:
                continue
            lo, hi = row.geo_out.window(axis, unit[axis])
            if support[0] < lo or support[1] > hi:
                problems.append(f"{row.name} unit {unit} axis {'hw'[axis]}: pixels {support[0]}..{support[1]} "
                                f"outside the window [{lo}, {hi}]")
    return problems


def loose_window(row: Any, measured: dict[tuple[int, int], Any], hw: tuple[int, int]) -> list[str]:
    """Where an upsampling row's window is wider than it needs: along each axis, some unit of the middle row or
    column whose window lies inside the image reaches each of its ends (the hull is the smallest)."""
    problems = []
    for axis in (0, 1):
        inside = []
        for unit, intervals in measured.items():
            lo, hi = row.geo_out.window(axis, unit[axis])
            if lo >= 0 and hi <= hw[axis] - 1 and intervals[axis] is not None:
                inside.append((lo, hi, intervals[axis]))
        if inside and not any(s[0] == lo for lo, _, s in inside):
            problems.append(f"{row.name} axis {'hw'[axis]}: no unit reaches the start of its window")
        if inside and not any(s[1] == hi for _, hi, s in inside):
            problems.append(f"{row.name} axis {'hw'[axis]}: no unit reaches the end of its window")
    return problems


def used_parameters(model: nn.Module, input_shape: Sequence[int]) -> int:
    """How many parameters the forward (in eval mode) uses: those that get a gradient."""
    states = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        first = next(model.parameters(), None)
        x = torch.rand((2, *input_shape), generator=torch.Generator().manual_seed(0))
        if first is not None:
            x = x.to(first.device, first.dtype if first.is_floating_point() else torch.float32)
        out = model(x)
        outputs = [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, torch.Tensor)]
        params = list(model.parameters())
        total = torch.stack([o.float().sum() for o in outputs]).sum()
        grads = torch.autograd.grad(total, params, allow_unused=True)
        return sum(p.numel() for p, g in zip(params, grads) if g is not None)
    finally:
        for m, training in states:
            m.train(training)


def _parameter_problems(model: nn.Module, input_shape: Sequence[int], counted: int) -> list[str]:
    used = used_parameters(model, input_shape)
    if used != counted:
        return [f"parameters: the forward uses {used:,}, the table counts {counted:,}"]
    return []
