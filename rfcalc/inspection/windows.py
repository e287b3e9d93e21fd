"""Window attention (Swin) and other rearrangements that fold blocks of the image into the batch. Needs torch.

Swin's block rolls its channels-last map (``torch.roll``, shifted windows), pads it to a multiple of the window
(``F.pad``), folds ``ws x ws`` blocks into the batch (``view`` → ``permute`` → ``view``), runs attention inside
each window (with an additive mask that hides the tokens a shifted window wrapped around), merges the windows
back, crops the padding and rolls back. The tensors in between are no feature map and no token sequence of the
image: their units are scattered over dimensions and the batch. :class:`Windows` follows such a stretch of the
graph (a *region*) element by element: every element of a region tensor carries an id (``tok``, a tensor of the
real shape, batch included) naming the set of the entry map's units it depends on:

- data movement (reshapes, permutes, rolls, pads, crops, unbind, ``window_reverse``; any call that, replayed on
  the element positions, gives the real output exactly) moves the ids (a padded element: :data:`ZERO`);
- per-token calls along the last dimension (a linear layer, a norm) give each output element the union of its
  line; element-wise calls keep ids;
- ``a @ b`` gives element ``(i, m)`` the union over ``j`` of ``a[i, j]`` and ``b[j, m]`` (pairs with an exact
  zero left out); a softmax gives each element the union of its line, except the entries a constant of
  -50 or less (Swin adds -100; or a boolean mask's ``False``) was added to: those are *hidden*, their
  weight is taken as zero (contract section 6.6, the convention of Swin's shifted-window mask);
- ``F.scaled_dot_product_attention`` is the product, the mask and the softmax together.

When a region tensor is a map again (``B x H' x W' x C``, ``B x C x H' x W'`` or ``B x H'W' x C``, the same ids in
every sample, one id per position, each position's set holding its own place ``(i·H/H', j·W/W')``) and a call
other than data movement reads it, it becomes one row (``window_attention``, ``patch_merging`` when no
attention ran and the map got smaller, else ``rearrange``) whose units see
exactly the union of what their entry units see, and whose window is the smallest of the contract's form that
holds every unit's window (a hull, as after upsampling: :func:`rfcalc.inspection.upsample.hull`). Its
parameters and MACs are those of every call in the region.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rfcalc.analysis.calculator import Flow
from rfcalc.inspection import layout as L
from rfcalc.inspection import upsample as U
from rfcalc.inspection.merges import HIDE, operands
from rfcalc.inspection.record import Recorder, _scope
from rfcalc.inspection.tracing import BATCH, Walker
from rfcalc.ops.actions import Along, AsLayer, Attention, Binary, MatMul, Pointwise
from rfcalc.ops.registry import REGISTRY
from rfcalc.table import reach as R

ZERO = 0    # an exact zero (padding; a hidden attention weight)
CONST = 1   # a value that depends on no pixel
HIDDEN = 2  # a constant score a mask hides


class Region:
    """One followed stretch: the entry map, the id table, and what the calls in it cost."""

    def __init__(self, flow: Flow, dims: tuple[int, int]) -> None:
        self.flow = flow
        self.dims = dims
        self.table: list[tuple[int, bool]] = [(0, False), (0, False), (0, True)]
        self.index: dict[tuple[int, bool], int] = {(0, False): CONST, (0, True): HIDDEN}
        for u in range(dims[0] * dims[1]):
            self.index[(1 << u, False)] = len(self.table)
            self.table.append((1 << u, False))
        self.params: list[torch.Tensor] = []
        self.macs = 0
        self.attention = False

    def id(self, mask: int, hidden: bool = False) -> int:
        key = (mask, hidden)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.table)
            self.table.append(key)
        return found

    def unit_ids(self, layout: L.Layout, shape: Sequence[int]) -> torch.Tensor:
        """The ids of a tensor of ``layout`` (batch first, ``shape`` with the batch) over the entry's units."""
        factors = [f for d in layout for f in d]
        sizes = [f.size for f in factors]
        coords = [torch.zeros(sizes or [1], dtype=torch.long) for _ in range(2)]
        for k, f in enumerate(factors):
            if f.kind == "u":
                view = [1] * len(sizes)
                view[k] = f.size
                coords[f.axis] = coords[f.axis] + (torch.arange(f.size) * f.stride).view(view)
        flat = coords[0] * self.dims[1] + coords[1] + 3
        return flat.reshape(tuple(shape[1:])).unsqueeze(0).expand(tuple(shape)).clone()


class Windows:
    """The regions of one inspection: entered, stepped and left as the walk visits nodes."""

    def __init__(self, rec: Recorder, walker: Walker) -> None:
        self.rec = rec
        self.walker = walker
        self.toks: dict[fx.Node, tuple[Region, Any]] = {}  # a tensor, or a tuple of them (unbind)
        self.results: dict[fx.Node, Any] = {}  # the real output of the node just followed (not yet in the env)

    # -- entering ------------------------------------------------------------------------------------------
    def holds(self, n: fx.Node) -> bool:
        return any(i in self.toks for i in n.all_input_nodes)

    def enter(self, node: fx.Node) -> bool:
        """Make the followed tensor of ``node`` (a map, tokens, or a map cut into blocks) a region's."""
        flow, layout = self.rec.flows.get(node), self.rec.layouts.get(node)
        value = self.walker.value(node)
        if flow is None or layout is None or not isinstance(value, torch.Tensor):
            return False
        dims = self.rec.unit_dims(flow)
        if self.rec.channels_of(flow) is not None:
            return False  # channels that see different windows (a concatenation's): followed per channel elsewhere
        if len(dims) != 2 or len(flow.shape) != 3 or tuple(value.shape[1:]) != L.shape(layout):
            return False
        region = Region(flow, (dims[0], dims[1]))
        self.toks[node] = (region, region.unit_ids(layout, tuple(value.shape)))
        return True

    # -- one node --------------------------------------------------------------------------------------------
    def step(self, n: fx.Node, result: Any, action: Any, call: Any) -> bool:
        """Follow node ``n`` inside its region; False when it cannot (the caller then leaves the region)."""
        inputs = [i for i in n.all_input_nodes if i in self.toks]
        regions = {id(self.toks[i][0]) for i in inputs}
        if len(regions) != 1 or any(i in self.rec.flows for i in n.all_input_nodes if i not in self.toks):
            return False
        region = self.toks[inputs[0]][0]
        if n.op == "call_function" and n.target is operator.getitem and isinstance(self.toks[inputs[0]][1], tuple):
            item = n.args[1]
            if not isinstance(item, int):
                return False
            self._keep(n, region, self.toks[inputs[0]][1][item], result)
            return True
        if isinstance(self.toks[inputs[0]][1], tuple):
            return False
        module = self.rec.modules[str(n.target)] if n.op == "call_module" else None
        tok = self.toks[inputs[0]][1]
        out: Any = None
        if isinstance(module, (nn.Dropout, nn.Identity)):
            out = tok
        elif isinstance(module, (nn.Linear, nn.LayerNorm)) or (
                isinstance(action, AsLayer) and action.layer.op == "linear"):
            if len(inputs) != 1 or not isinstance(result, torch.Tensor):
                return False
            out = self._lines(region, tok, result)
            if isinstance(module, nn.Linear):
                region.macs += result.numel() // BATCH * int(module.in_features)
        elif isinstance(action, Attention) and call is not None and module is None:
            out = self._sdpa(n, region, call, result)
        elif isinstance(action, Along) and action.op == "softmax" and len(inputs) == 1:
            out = self._softmax(region, tok, action.dim)
        elif isinstance(action, MatMul):
            out = self._matmul_node(region, n, call, result)
        elif isinstance(action, Binary):
            out = self._binary(region, n, action, call, result)
        elif (isinstance(action, Pointwise) or (isinstance(action, AsLayer)
                                                and REGISTRY[action.layer.op].mixing == "pointwise")) \
                and len(inputs) == 1:
            out = tok if isinstance(action, AsLayer) and action.layer.op == "dropout" else \
                torch.where(tok == ZERO, CONST, tok)
        else:
            out = self._moved(n, inputs, result)
        if out is None:
            return False
        if module is not None:
            region.params.extend(module.parameters())
        region.params.extend(self.rec._constant_params(n))
        self._keep(n, region, out, result)
        return True

    def _keep(self, n: fx.Node, region: Region, tok: Any, result: Any) -> None:
        self.toks[n] = (region, tok)
        self.results = {n: result}

    # -- leaving -------------------------------------------------------------------------------------------
    def leave(self, n: fx.Node, eager: bool = False) -> bool:
        """Make region tensor ``n`` a row, when it is a map again (see the module's text); False if not.
        ``eager`` (a call that the region could follow reads it): only a map, not a token sequence (attention
        over the tokens of one window follows)."""
        region, tok = self.toks[n]
        value = self.results[n] if n in self.results else self.walker.value(n)
        if isinstance(tok, tuple) or not isinstance(value, torch.Tensor) or value.dim() < 3 \
                or value.shape[0] != BATCH or not bool((tok == tok[:1]).all()):
            return False
        H, W = region.dims
        one = tok[0]
        grid: tuple[int, int] | None = None
        layout: L.Layout | None = None
        if one.dim() == 3 and bool((one == one[..., :1]).all()) and _divides(one.shape[0], H) \
                and _divides(one.shape[1], W):
            grid, ids, c = (one.shape[0], one.shape[1]), one[..., 0], one.shape[2]
            layout = (L.units(0, grid[0]), L.units(1, grid[1]), L.channels(c))
        elif one.dim() == 3 and bool((one == one[:1]).all()) and _divides(one.shape[1], H) \
                and _divides(one.shape[2], W):
            grid, ids, c = (one.shape[1], one.shape[2]), one[0], one.shape[0]
            layout = L.feature_map(c, grid)
        elif not eager and one.dim() == 2 and one.shape[0] == H * W and bool((one == one[:, :1]).all()):
            grid, ids, c = (H, W), one[:, 0].reshape(H, W), one.shape[1]
            layout = L.tokens(grid, c)
        if grid is None or layout is None:
            return False
        flow = region.flow
        masks = [[region.table[int(i)][0] for i in row] for row in ids.tolist()]
        steps = (_stride(grid[0], H), _stride(grid[1], W))
        if not all(masks[i][j] >> (i * steps[0] * W + j * steps[1]) & 1 for i in range(grid[0])
                   for j in range(grid[1])):
            return False  # a unit of a map sees its own place (a roll not undone, channels read as rows: no map)
        jumps = (flow.geo.jump[0] * steps[0], flow.geo.jump[1] * steps[1])
        src_h = [sorted({u // W for j in range(grid[1]) for u in _bits(masks[i][j])}) for i in range(grid[0])]
        src_w = [sorted({u % W for i in range(grid[0]) for u in _bits(masks[i][j])}) for j in range(grid[1])]
        product = all(masks[i][j] == _product(src_h[i], src_w[j], W) for i in range(grid[0]) for j in range(grid[1]))
        base = self.rec.reach(flow)
        if product:
            reach: R.Reach = U.resampled(base, src_h, src_w)
        else:
            units = R.as_units(base)
            reach = R.Units(units.image, grid, tuple(R.join(*(units.areas[u] for u in _bits(m)))
                                                      for row in masks for m in row))
        geo = U.hull(flow.geo, (src_h, src_w), jumps)
        op = "window_attention" if region.attention else "patch_merging" if grid != (H, W) else "rearrange"
        desc = f"{op} of {H}x{W} units"
        note = f"{op} (blocks of the map folded into the batch and back) has no spec op"
        real = tuple(int(s) for s in value.shape[1:])
        scope = _scope(n) or ""
        if n.op == "call_module" and scope == str(n.target):
            scope = scope.rsplit(".", 1)[0] if "." in scope else ""
        name = self.rec.row(n, op, flow, real, desc, note, layout=layout, reach=reach, geo=geo, macs=region.macs,
                            channels=None, label=f"{scope}.{op}" if scope else op)
        self.rec.add_params(name, region.params)
        self.rec.hull.add(name)
        gap = U.slack(flow.geo, (src_h, src_w), geo)
        if gap:
            self.rec.diagnose("info", "window-hull", n,
                              f"'{name}' ({op}): its units see blocks that do not step with them; rf/jump/start "
                              f"give the smallest window that holds every unit's pixels (some see up to {gap} px "
                              f"less), and the rows after it step that window")
        del self.toks[n]
        return True

    # -- the rules -------------------------------------------------------------------------------------------
    def _moved(self, n: fx.Node, inputs: list[fx.Node], result: Any) -> Any:
        """Data movement: the call replayed on element positions must give the real output exactly."""
        if len(inputs) != 1:
            return None
        source = inputs[0]
        region, tok = self.toks[source]
        real_in = self.walker.value(source)
        if not isinstance(real_in, torch.Tensor) or tok.shape != real_in.shape:
            return None
        pos = torch.arange(1, real_in.numel() + 1, dtype=torch.float64).reshape(real_in.shape)
        values = {i: self.walker.value(i) for i in n.all_input_nodes}

        def sub(a: fx.Node) -> Any:
            return pos if a is source else values[a]

        try:
            moved = self.walker.replay(n, fx.node.map_arg(n.args, sub), fx.node.map_arg(n.kwargs, sub))
        except Exception:  # a call that does not run on positions is no data movement
            return None
        flat_in, flat_tok = real_in.reshape(-1), tok.reshape(-1)

        def one(p: Any, real: Any) -> Any:
            if not isinstance(p, torch.Tensor) or not isinstance(real, torch.Tensor) or p.shape != real.shape \
                    or not p.is_floating_point():
                return None
            index = p.double().round().long()
            if not bool((index.double() == p.double()).all()) or bool((index < 0).any()) \
                    or bool((index > flat_in.numel()).any()):
                return None
            gathered = torch.where(index > 0, flat_in[(index - 1).clamp(min=0)], torch.zeros((), dtype=real.dtype))
            if not torch.equal(gathered.to(real.dtype), real):
                return None
            return torch.where(index > 0, flat_tok[(index - 1).clamp(min=0)], ZERO)

        if isinstance(moved, (tuple, list)):
            if not isinstance(result, (tuple, list)) or len(result) != len(moved):
                return None
            parts = tuple(one(p, r) for p, r in zip(moved, result))
            return None if any(p is None for p in parts) else parts
        return one(moved, result)

    def _lines(self, region: Region, tok: torch.Tensor, result: torch.Tensor) -> torch.Tensor | None:
        """A call along the last dimension (a linear layer, a norm): each output sees its whole line."""
        lines = tok.reshape(-1, tok.shape[-1])
        unique, inverse = torch.unique(lines, dim=0, return_inverse=True)
        joined = torch.tensor([self._union(region, row, zero_is_const=True) for row in unique.tolist()],
                              dtype=torch.long)
        out = joined[inverse].reshape(tuple(tok.shape[:-1]) + (1,))
        if tuple(out.shape[:-1]) != tuple(result.shape[:-1]):
            return None
        return out.expand(tuple(result.shape)).clone()

    @staticmethod
    def _union(region: Region, ids: Sequence[int], zero_is_const: bool = False) -> int:
        if not zero_is_const and all(i == ZERO for i in ids):
            return ZERO
        mask = 0
        for i in ids:
            mask |= region.table[i][0]
        return region.id(mask)

    def _softmax(self, region: Region, tok: torch.Tensor, dim: int) -> torch.Tensor:
        """Each element sees its line; hidden entries (a mask of -100 or less added) get weight zero."""
        moved = tok.movedim(dim, -1)
        lines = moved.reshape(-1, moved.shape[-1])
        unique, inverse = torch.unique(lines, dim=0, return_inverse=True)
        rows = []
        for row in unique.tolist():
            hidden = [region.table[i][1] for i in row]
            shown = [i for i, h in zip(row, hidden) if not h] or row
            joined = self._union(region, shown, zero_is_const=True)
            rows.append([ZERO if h and len(shown) < len(row) else joined for h in hidden])
        out = torch.tensor(rows, dtype=torch.long)[inverse].reshape(moved.shape)
        region.attention = True
        return out.movedim(-1, dim)

    def _constant(self, value: Any, like: torch.Tensor, kind: str) -> torch.Tensor:
        """The ids of a constant operand: hidden where a mask hides (``kind`` "add"), zero where it is 0
        (``kind`` "mul")."""
        c = torch.as_tensor(value)
        if kind == "add" and c.dtype == torch.bool:
            return torch.where(c, CONST, HIDDEN)
        if kind == "add":
            return torch.where(c <= HIDE, HIDDEN, CONST) if c.is_floating_point() else \
                torch.full(c.shape, CONST, dtype=torch.long)
        if kind == "mul":
            return torch.where(c == 0, ZERO, CONST)
        return torch.full(c.shape, CONST, dtype=torch.long)

    def _binary(self, region: Region, n: fx.Node, action: Any, call: Any, result: Any) -> torch.Tensor | None:
        if call is None or not isinstance(result, torch.Tensor):
            return None
        nodes = operands(self.rec, call, action.operands)
        values = [call.get(k) for k in action.operands]
        kind = "add" if action.op in ("add", "sub") else "mul" if action.op == "mul" else "div"
        toks = []
        for node, value in zip(nodes, values):
            if isinstance(node, fx.Node) and node in self.toks:
                toks.append(self.toks[node][1])
            elif isinstance(node, fx.Node) and node in self.rec.flows:
                return None
            else:
                toks.append(self._constant(self.walker.value(node) if isinstance(node, fx.Node) else value,
                                           result, kind))
        try:
            broadcast: tuple[torch.Tensor, ...] = torch.broadcast_tensors(*toks)  # type: ignore[no-untyped-call]  # torch's stub
            a, b = (t.expand(tuple(result.shape)) for t in broadcast)
        except RuntimeError:
            return None
        if tuple(a.shape) != tuple(result.shape):
            return None
        return combine(region, a, b, kind)

    def _operand(self, node: Any, value: Any) -> torch.Tensor:
        if isinstance(node, fx.Node) and node in self.toks:
            known: torch.Tensor = self.toks[node][1]
            return known
        real = self.walker.value(node) if isinstance(node, fx.Node) else value
        return self._constant(real, real, "mul")

    def _matmul_node(self, region: Region, n: fx.Node, call: Any, result: Any) -> torch.Tensor | None:
        if call is None or not isinstance(result, torch.Tensor):
            return None
        nodes = operands(self.rec, call, ("input", "other"))
        if any(isinstance(x, fx.Node) and x in self.rec.flows and x not in self.toks for x in nodes):
            return None
        a, b = (self._operand(x, call.get(k)) for x, k in zip(nodes, ("input", "other")))
        if a.dim() < 2 or b.dim() < 2:
            return None
        out = matmul_ids(region, a, b)
        if tuple(out.shape) != tuple(result.shape):
            return None
        region.macs += result.numel() // BATCH * a.shape[-1]
        return out

    def _sdpa(self, n: fx.Node, region: Region, call: Any, result: Any) -> torch.Tensor | None:
        if call.get("is_causal") or not isinstance(result, torch.Tensor):
            return None
        q, k, v, mask = operands(self.rec, call, ("query", "key", "value", "attn_mask"))
        if any(isinstance(x, fx.Node) and x in self.rec.flows and x not in self.toks for x in (q, k, v, mask)):
            return None
        tq, tk, tv = (self._operand(x, call.get(name)) for x, name in zip((q, k, v), ("query", "key", "value")))
        scores = matmul_ids(region, tq, tk.transpose(-2, -1))
        bias = call.get("attn_mask")
        if bias is not None:
            if isinstance(mask, fx.Node) and mask in self.toks:
                return None
            hide = self._constant(bias, scores, "add")
            try:
                hide = hide.expand(tuple(scores.shape))
            except RuntimeError:
                return None
            scores = combine(region, scores, hide, "add")
        weights = self._softmax(region, scores, -1)
        out = matmul_ids(region, weights, tv)
        if tuple(out.shape) != tuple(result.shape):
            return None
        region.macs += result.numel() // result.shape[-1] // BATCH * tk.shape[-2] * (tq.shape[-1] + tv.shape[-1])
        return out



def combine(region: Region, a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Element by element, the ids of ``a + b`` (``kind`` "add"; a hidden operand hides the sum), ``a * b``
    ("mul": an exact zero stays one) or ``a / b`` ("div")."""
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    unique, inverse = torch.unique(pairs, dim=0, return_inverse=True)
    ids = []
    for x, y in unique.tolist():
        if kind == "mul" and ZERO in (x, y) or kind == "div" and x == ZERO or x == y == ZERO:
            ids.append(ZERO)
            continue
        (mx, hx), (my, hy) = region.table[x], region.table[y]
        ids.append(region.id(mx | my, hx or hy))
    return torch.tensor(ids, dtype=torch.long)[inverse].reshape(a.shape)


def matmul_ids(region: Region, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The ids of ``a @ b``: element (i, m) sees every ``a[i, j]`` and ``b[j, m]`` whose product is not an exact
    zero."""
    batch = torch.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))  # type: ignore[no-untyped-call]  # torch's stub
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    a2 = a.expand(*batch, n, k).reshape(-1, n, k)
    b2 = b.expand(*batch, k, m).reshape(-1, k, m)
    out = torch.empty((a2.shape[0], n, m), dtype=torch.long)
    cache: dict[tuple[bytes, bytes], torch.Tensor] = {}
    table = region.table
    for s in range(a2.shape[0]):
        key = (a2[s].numpy().tobytes(), b2[s].numpy().tobytes())
        found = cache.get(key)
        if found is None:
            rows, ia = torch.unique(a2[s], dim=0, return_inverse=True)
            cols, ib = torch.unique(b2[s].t(), dim=0, return_inverse=True)
            row_list, col_list = rows.tolist(), cols.tolist()
            row_masks = [None if ZERO in r else _or(table, r) for r in row_list]
            col_masks = [None if ZERO in c else _or(table, c) for c in col_list]
            grid = torch.empty((len(row_list), len(col_list)), dtype=torch.long)
            for x, row in enumerate(row_list):
                for y, col in enumerate(col_list):
                    rm, cm = row_masks[x], col_masks[y]
                    if rm is not None and cm is not None:
                        grid[x, y] = region.id(rm | cm)
                        continue
                    mask, any_pair = 0, False
                    for p, q in zip(row, col):
                        if p != ZERO and q != ZERO:
                            mask |= table[p][0] | table[q][0]
                            any_pair = True
                    grid[x, y] = region.id(mask) if any_pair else ZERO
            found = cache[key] = grid[ia][:, ib]
        out[s] = found
    return out.reshape(*batch, n, m)


def _or(table: list[tuple[int, bool]], ids: Sequence[int]) -> int:
    mask = 0
    for i in ids:
        mask |= table[i][0]
    return mask


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _product(rows: Sequence[int], cols: Sequence[int], width: int) -> int:
    mask = 0
    for r in rows:
        for c in cols:
            mask |= 1 << (r * width + c)
    return mask


def _divides(part: int, whole: int) -> bool:
    """Whether ``whole`` units, padded to a multiple of some step, make ``part`` units (Swin's patch merging
    of an odd map pads it by one)."""
    return 0 < part <= whole and -(-whole // _stride(part, whole)) == part


def _stride(part: int, whole: int) -> int:
    """The step ``s`` with ``ceil(whole / s) == part`` (the smallest), else 1."""
    return next((s for s in range(1, whole + 1) if -(-whole // s) == part), 1)


__all__ = ["CONST", "HIDDEN", "ZERO", "Region", "Windows", "combine", "matmul_ids"]
