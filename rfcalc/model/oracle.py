"""The gradient receptive-field oracle: which input pixels an output unit of a module really depends on.

Used by the tests to prove the table right against the module itself, and reusable on any
``nn.Module`` (``rfcalc.inspection.api`` checks its traced tables with it). Needs torch.

:func:`positive_copy` makes every path strictly positive (weights and biases ``|w| + c``,
activations, norms and dropout -> identity, max pools -> average pools), so no gradient can
cancel: the non-zero support of ``d out[unit] / d input`` is then exactly the set of input pixels
connected to the unit. :func:`window_mismatches` compares that support with the table's window
``start + u·jump ± (rf−1)/2``: exact where the window lies inside the image; where the image edge
clips it, strides and dilations can leave holes at the edge, so there the support need only stay
inside the window. :func:`global_mismatches` checks the table's ``global`` flag the same way: a global row's
units depend on every pixel, and a row that is not global has a unit (the one the table names) that does not.
A unit's output is seeded with random positive weights over its channels, so that nothing cancels (a
hand-written ``x - x.mean(1, keepdim=True)`` sums to zero over the channels).
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from rfcalc.analysis.load import Spec
from rfcalc.model.builder import constructor
from rfcalc.model.modules import GlobalPool
from rfcalc.model.plan import plan_model, row_modules
from rfcalc.ops.registry import REGISTRY
from rfcalc.table import reach as R
from rfcalc.table.report import Row

Interval = tuple[int, int] | None          # (lo, hi) of the support along one axis; None when empty
Unit = tuple[int, int]                      # (h, w) index of an output unit
Windows = dict[Unit, tuple[Interval, Interval]]

# Modules that may cancel or zero a gradient, replaced by the identity: every registered op whose `positive` is
# "identity" (norms, activations, dropout), and what inspected code uses besides (saturating gates such as
# Hardsigmoid would zero the gradient of a squeeze-and-excitation path).
_IDENTITY_TYPES: tuple[type[nn.Module], ...] = tuple(dict.fromkeys([
    *(constructor(ctor) for op in REGISTRY.values() if op.positive == "identity" for ctor in op.ctors),
    nn.ELU, nn.Sigmoid, nn.Tanh, nn.Mish, nn.Dropout1d, nn.AlphaDropout, nn.LayerNorm, nn.InstanceNorm2d,
    nn.LocalResponseNorm, nn.Hardsigmoid, nn.Hardtanh, nn.GroupNorm, nn.BatchNorm1d,
]))


class PositiveAttention(nn.Module):
    """The positive stand-in of ``nn.MultiheadAttention`` (batch first): query token ``i`` gets
    ``out(q(query_i) + mean_j k(key_j) + mean_j v(value_j))``, so it depends on its own query and on every key and
    value token, as attention does, without a softmax that saturates on large positive scores."""

    def __init__(self, module: nn.MultiheadAttention) -> None:
        super().__init__()
        e = module.embed_dim
        self.q = nn.Linear(e, e)
        self.k = nn.Linear(module.kdim, e)
        self.v = nn.Linear(module.vdim, e)
        self.out = nn.Linear(e, e)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                *args: object, **kwargs: object) -> tuple[torch.Tensor, None]:
        mixed = self.q(query) + self.k(key).mean(dim=1, keepdim=True) + self.v(value).mean(dim=1, keepdim=True)
        return self.out(mixed), None


def _positive_module(module: nn.Module) -> nn.Module:
    """The positive stand-in of one module (the module itself when it needs no change). A subclass defined
    outside torch.nn (torchvision's ``LayerNorm2d``) is traced through, not called whole: it stays, and
    :func:`rfcalc.inspection.check.positive_graph` makes the norm it calls the identity."""
    if isinstance(module, _IDENTITY_TYPES) and type(module).__module__.startswith("torch.nn"):
        return nn.Identity()
    if isinstance(module, nn.MaxPool2d):
        if module.dilation not in (1, (1, 1)):
            raise ValueError("a dilated max pool has no average-pool stand-in")
        return nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
    if isinstance(module, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(module.output_size)
    if isinstance(module, GlobalPool):
        return GlobalPool("avg")
    if isinstance(module, nn.MultiheadAttention):
        return PositiveAttention(module)
    return module


def positive_copy(model: nn.Module, offset: float = 0.1) -> nn.Module:
    """A float64, eval-mode copy of ``model`` in which every path from input to output is strictly positive.

    Weights and biases become ``|w| + offset``; a conv's or linear layer's weights are then scaled so that each
    output channel's weights sum to 1 (every output a weighted mean of its inputs), so that values neither
    overflow nor vanish through a hundred layers (torchvision's resnet101) while every connection stays.
    """
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            replacement = _positive_module(child)
            if replacement is not child:
                setattr(parent, name, replacement)
    model = model.double().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.abs() + offset)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight = module.weight
                weight.div_(weight.flatten(1).sum(dim=1).view(-1, *([1] * (weight.dim() - 1))))
    return model


def default_units(height: int, width: int) -> list[Unit]:
    """The first, the middle and the last unit (along both axes at once)."""
    return [(0, 0), ((height - 1) // 2, (width - 1) // 2), (height - 1, width - 1)]


class GradientProbe:
    """Runs a positive model once and reads the input support of units of any of its modules.

    ``probe = GradientProbe(model, (3, 32, 32), ["c1.conv", "branches"])``; then
    ``probe.windows("branches")`` -> {unit: ((lo_h, hi_h), (lo_w, hi_w))}.
    Pass ``positive=False`` when ``model`` already is a :func:`positive_copy`.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], module_names: Sequence[str],
                 batch: int = 3, positive: bool = True, seed: int = 0) -> None:
        self.model = positive_copy(model) if positive else model
        generator = torch.Generator().manual_seed(seed)
        self.input = (torch.rand((batch, *input_shape), generator=generator, dtype=torch.float64) + 0.5)
        self.input.requires_grad_(True)
        self.outputs: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())
        handles = []
        for name in module_names:
            if name not in modules:
                raise KeyError(f"the model has no module named {name!r}")
            handles.append(modules[name].register_forward_hook(self._keeper(name)))
        try:
            self.model(self.input)
        finally:
            for handle in handles:
                handle.remove()

    def _keeper(self, name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            self.outputs[name] = output
        return hook

    def windows(self, module_name: str, units: Sequence[Unit] | None = None) -> Windows:
        """Per unit, per axis, the extremes of the input pixels its output depends on (all channels)."""
        out = self.outputs[module_name]
        if out.dim() != 4:
            raise ValueError(f"{module_name!r} outputs {tuple(out.shape[1:])}, not a feature map")
        units = list(units) if units is not None else default_units(out.shape[2], out.shape[3])
        masks = self.masks(module_name, units)
        return {unit: mask_window(mask) for unit, mask in masks.items()}

    def masks(self, module_name: str, units: Sequence[Unit], grid: tuple[int, int] | None = None
              ) -> dict[Unit, torch.Tensor]:
        """Per unit, the (H, W) mask of the input pixels it depends on. A feature map's unit ``(h, w)`` is its
        channels at that position; a vector's, the elements a flatten made from position ``(h, w)`` of a
        ``grid`` map (no grid, or 1x1: the whole vector)."""
        out = self.outputs[module_name]
        selectors = [unit_selector(out.shape[1:], unit, grid) for unit in units]
        return dict(zip(units, unit_masks(self.input, out, selectors)))


Selector = Callable[[torch.Tensor], torch.Tensor]


def unit_selector(shape: Sequence[int], unit: Sequence[int], grid: tuple[int, int] | None = None) -> Selector:
    """The elements of one unit in one sample's output of ``shape`` (see :meth:`GradientProbe.masks`)."""
    if len(shape) == 3:
        h, w = unit
        return lambda y: y[:, h, w]
    if len(shape) == 1 and grid is not None and grid != (1, 1):
        h, w = unit
        flat = h * grid[1] + w
        return lambda y: y.reshape(-1, grid[0] * grid[1])[:, flat]
    if len(shape) == 1:
        return lambda y: y
    raise ValueError(f"no unit selector for an output of shape {tuple(shape)}")


def unit_masks(x: torch.Tensor, out: torch.Tensor, selectors: Sequence[Selector], seed: int = 0
               ) -> list[torch.Tensor]:
    """For sample ``i``, the (H, W) mask of the input pixels that ``selectors[i](out[i])`` depends on.

    ``x`` is the (batch, C, H, W) input ``out`` was computed from, with ``requires_grad``; one backward pass.
    Each selected element gets a random positive weight, so that no sum of them cancels.
    """
    if len(selectors) > x.shape[0]:
        raise ValueError(f"at most {x.shape[0]} units per call (one per sample of the batch)")
    generator = torch.Generator().manual_seed(seed)
    total = out.new_zeros(())
    for i, select in enumerate(selectors):
        part = select(out[i])
        weights = torch.rand(part.shape, generator=generator, dtype=torch.float64).to(part) + 0.5
        total = total + (part * weights).sum()
    (grad,) = torch.autograd.grad(total, x, retain_graph=True, allow_unused=True)
    if grad is None:
        return [torch.zeros(x.shape[2:], dtype=torch.bool) for _ in selectors]
    return [(grad[i] != 0).any(dim=0) for i in range(len(selectors))]


def global_mismatches(row: Row, reach: R.Reach, masks: dict[Unit, torch.Tensor]) -> list[str]:
    """Where measured unit masks disagree with the row's ``global`` flag: a global row's checked units must
    depend on every pixel; a row that is not global is checked at the unit its reach names
    (:func:`rfcalc.table.reach.partial_unit`), which must miss some pixel."""
    problems = []
    if row.is_global:
        for unit, mask in masks.items():
            if not bool(mask.all()):
                problems.append(f"{row.name} unit {unit}: the table says global, but {int((~mask).sum())} "
                                f"pixels do not count")
        return problems
    partial: Any = R.partial_unit(reach)
    if partial is not None and partial in masks and bool(masks[partial].all()):
        problems.append(f"{row.name} unit {partial}: the table says not global, but it depends on every pixel")
    return problems


def check_units(row: Row, reach: R.Reach, out_shape: Sequence[int]) -> list[Unit]:
    """The units :func:`global_mismatches` (and the window check, on feature maps) read for ``row``: the
    first, middle and last unit, and the reach's unit that misses a pixel."""
    dims: tuple[int, int] = (reach.dims[0], reach.dims[1]) if len(reach.dims) == 2 else (1, 1)
    if len(out_shape) == 3:
        dims = (out_shape[1], out_shape[2])
    units = default_units(*dims) if len(out_shape) == 3 or dims != (1, 1) else [(0, 0)]
    partial = R.partial_unit(reach)
    if partial is not None and len(partial) == 2 and tuple(partial) not in units:
        units.append((partial[0], partial[1]))
    return list(dict.fromkeys(units))


def _extent(mask: torch.Tensor) -> Interval:
    index = torch.nonzero(mask).flatten()
    return None if index.numel() == 0 else (int(index[0]), int(index[-1]))


def mask_window(mask: torch.Tensor) -> tuple[Interval, Interval]:
    """The first and last input row, and column, that an (H, W) dependency mask holds (None: none)."""
    return _extent(mask.any(dim=1)), _extent(mask.any(dim=0))


def gradient_windows(model: nn.Module, input_shape: Sequence[int], module_name: str,
                     units: Sequence[Unit] | None = None) -> Windows:
    """The measured input support of the first, middle and last unit (or ``units``) of one module's output."""
    return GradientProbe(model, input_shape, [module_name]).windows(module_name, units)


def window_mismatches(row: Row, measured: Windows, input_hw: tuple[int, int]) -> list[str]:
    """Where the measured supports disagree with the row's table window (empty list: they agree)."""
    problems = []
    for unit, intervals in measured.items():
        windows = [row.geo_out.window(axis, unit[axis]) for axis in (0, 1)]
        inside = [lo >= 0 and hi <= input_hw[axis] - 1 for axis, (lo, hi) in enumerate(windows)]
        for axis, support in enumerate(intervals):
            lo, hi = windows[axis]
            where = f"{row.name} unit {unit} axis {'hw'[axis]}: table [{_num(lo)}, {_num(hi)}]"
            if support is None:  # fine only where the image edge clips the window
                if all(inside):
                    problems.append(f"{where}, but the unit depends on no input pixel")
                continue
            got_lo, got_hi = support
            if (lo >= 0 and got_lo != lo) or got_lo < lo:
                problems.append(f"{where}, gradient starts at {got_lo}")
            if (hi <= input_hw[axis] - 1 and got_hi != hi) or got_hi > hi:
                problems.append(f"{where}, gradient ends at {got_hi}")
    return problems


def _num(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))


def module_problems(spec: Spec, model: nn.Module | None = None) -> list[str]:
    """Everything where ``build_model(spec)`` (or ``model``) disagrees with the spec's report.

    Parameters (PyTorch's count against the report's), the output shape of every row (read with
    forward hooks) against ``out_shape``, the gradient windows of the first, middle and last
    unit of every row that outputs a feature map, and every row's ``global`` flag (those units, and a unit
    the table says misses a pixel). An empty list means the table is right.
    """
    from rfcalc.model.builder import build_model

    report = spec.report
    model = build_model(spec) if model is None else model
    problems: list[str] = []
    params = sum(p.numel() for p in model.parameters())
    if params != report.params:
        problems.append(f"parameters: the module has {params}, the report says {report.params}")
    modules = row_modules(plan_model(spec.nodes, report))
    names = sorted(set(modules.values()))
    probe = GradientProbe(model, spec.input_shape, names)
    held = probe  # windows are read with gates held constant (a squeeze-and-excitation's: see HeldGate)
    if any(isinstance(m, _GATED_TYPES) for m in probe.model.modules()):
        held = GradientProbe(held_gates(probe.model), spec.input_shape, names, positive=False)
    for row in report.rows:
        shape = tuple(probe.outputs[modules[row.name]].shape[1:])
        if shape != row.out_shape:
            problems.append(f"{row.name}: the module outputs {shape}, the report says {row.out_shape}")
            continue
        reach = report.reaches[row.name]
        units = check_units(row, reach, shape)
        grid = (reach.dims[0], reach.dims[1]) if len(reach.dims) == 2 else None
        masks = _row_masks(probe, modules[row.name], units, grid)
        if row.is_feature_map:
            local = masks if held is probe else _row_masks(held, modules[row.name], units, grid)
            windows = {u: mask_window(m) for u, m in local.items()}
            problems.extend(window_mismatches(row, windows, spec.input_shape[1:]))
        problems.extend(global_mismatches(row, reach, masks))
    return problems


def _row_masks(probe: GradientProbe, module: str, units: list[Unit], grid: tuple[int, int] | None
               ) -> dict[Unit, torch.Tensor]:
    masks: dict[Unit, torch.Tensor] = {}
    for start in range(0, len(units), probe.input.shape[0]):
        masks.update(probe.masks(module, units[start:start + probe.input.shape[0]], grid))
    return masks


# The modules of registered ops whose `mixing` is "gated": ``forward(x) = x * gate_of(x)`` (rfcalc's SqueezeExcite).
_GATED_TYPES: tuple[type[nn.Module], ...] = tuple(
    constructor(ctor) for op in REGISTRY.values() if op.mixing == "gated" for ctor in op.ctors)


class HeldGate(nn.Module):
    """A gated module with its gate held constant: ``x * gate_of(x).detach()``. A unit's window is what it sees
    through its own value; what the gate adds is what ``global`` reports (contract section 6.6), as
    :func:`rfcalc.inspection.check.gated_graph` does for gates written out in traced code."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate: Callable[[torch.Tensor], torch.Tensor] = getattr(self.inner, "gate_of")
        return x * gate(x).detach()


def held_gates(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every gated module wrapped in :class:`HeldGate` (module names unchanged)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _GATED_TYPES):
                setattr(parent, name, HeldGate(child))
    return model


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: tiny tensors go several times faster, above all on a busy shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
