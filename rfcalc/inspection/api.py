"""``rfcalc inspect``: the exact, branch-aware table of an ``nn.Module`` that already exists as PyTorch code.

The module's forward is traced with :mod:`torch.fx` and the same :class:`~rfcalc.analysis.calculator.Calculator`
that computes a spec's table walks the traced graph: no second receptive-field implementation. One
forward pass of a random input of the given shape (batch 2, eval mode, no grad) runs alongside the walk,
so every node's real output shape is known; every row the calculator writes is checked against it.

How nodes map (the lookup table is :mod:`rfcalc.inspection.lookup`):

- ``nn.Conv2d`` / ``F.conv2d``, max and average pools (``nn`` and functional), batch/group norm,
  ReLU/ReLU6/LeakyReLU/GELU/SiLU, dropout, ``nn.Linear`` / ``F.linear``: the spec op of the same meaning;
- global pools (``AdaptiveAvgPool2d(1)``, ``F.adaptive_*_pool2d(x, 1)``, ``x.mean((2, 3))``, ``amax``):
  ``gap`` when their result is only flattened to a vector (or is one already), else a pool whose kernel
  is the whole map; adaptive pools whose output divides the input: the exact ordinary pool;
- ``torch.cat`` along channels: a ``concat`` merge; ``+`` / ``torch.add`` of two computed tensors: an ``add``
  merge (``-``, ``*``, ``/`` likewise, under their own op name); with a constant: a pass-through row;
- flatten / view / reshape / squeeze to a vector: ``flatten``;
- known element-wise modules and functions without a spec op (sigmoid, hardswish, instance norm, ...):
  pass-through rows under their own name;
- anything else with one computed input: if it keeps the spatial size and a change at one pixel only
  moves that pixel's outputs (checked by running it twice), it passes the RF through, with an ``info``
  diagnostic; ops on vectors likewise. Anything else changes the spatial layout in a way the calculator
  cannot know (upsampling, transposed convs, padding, crops, spatial softmax, ...).

**Choice for the unknown:** the report stops at the first node the calculator cannot follow. It holds the
rows computed so far plus one ``error`` diagnostic naming that node and why;
:func:`inspect_module` raises :class:`~rfcalc.errors.RfcalcError` with that one line unless
``partial=True`` (``rfcalc inspect`` prints the partial table and exits 2; ``rfcalc check`` exits 2).
No number is ever guessed.

Every row says whether each of its units depends on every input pixel (``global``, computed exactly by
:mod:`rfcalc.table.reach`): a broadcast product with a 1x1 map from a global pool (squeeze-and-excitation),
attention across tokens, a linear layer over a flattened map. The window (``rf``, ``jump``, ``start``) stays
the local one of the full-size operand, as the contract defines it. Reshapes, permutes and transposes are
followed with the tensor's layout (:mod:`rfcalc.inspection.layout`): channel shuffles, channels-last round
trips (LayerNorm and Linear on the channels), tokenisation, class tokens, token selection, matmuls and
``nn.MultiheadAttention`` (:mod:`rfcalc.inspection.mixing`). The module is traced and run in eval mode.

Parameters are what PyTorch counts: a module or parameter used twice counts once (at its first use,
with an ``info`` diagnostic); parameters the forward never uses give a ``warning``.

The pieces: :mod:`rfcalc.inspection.tracing` traces and runs the graph; :mod:`rfcalc.inspection.walk` says what each
node is, :mod:`rfcalc.inspection.follow` and :mod:`rfcalc.inspection.merges` what rows it becomes, and
:mod:`rfcalc.inspection.record` records them with the calculator; :mod:`rfcalc.inspection.lookup` is the lookup table
(built from every op's inspect rules in :mod:`rfcalc.ops`; its answers are :mod:`rfcalc.ops.actions`).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from rfcalc.errors import RfcalcError
from rfcalc.inspection.record import CannotFollow, Recorder
from rfcalc.inspection.result import SKIP, Inspection
from rfcalc.inspection.target import parse_input_shape
from rfcalc.inspection.tracing import BATCH, SHAPE_TRACED, Walker, first_line, trace_graph, traced
from rfcalc.inspection.walk import Inspector
from rfcalc.table.reach import memo
from rfcalc.table.report import Diagnostic, Report

__all__ = ["BATCH", "SKIP", "Inspection", "inspect_module", "parse_shape", "trace_module", "traced"]


def parse_shape(input_shape: Any) -> tuple[int, int, int]:
    """(C, H, W) from a sequence of three positive ints or text like ``3x32x32``; one-line error otherwise."""
    if isinstance(input_shape, str):
        return parse_input_shape(input_shape)
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise RfcalcError(f"input_shape must be (C, H, W), e.g. (3, 32, 32), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        hint = " (without the batch dimension)" if len(shape) == 4 else ""
        raise RfcalcError(f"input_shape must be three positive sizes (C, H, W){hint}, got {tuple(input_shape)!r}")
    return (shape[0], shape[1], shape[2])


def inspect_module(module: nn.Module, input_shape: Any, *, name: str | None = None,
                   partial: bool = False) -> Report:
    """The report of ``module`` on a ``(C, H, W)`` input: the same rows, JSON and meaning as ``analyze``.

    Raises :class:`RfcalcError` (one line) when tracing fails or when a node changes the spatial layout in
    a way the calculator cannot know; with ``partial=True`` returns the rows up to that node instead,
    with an ``error`` diagnostic naming it.
    """
    inspection = trace_module(module, input_shape, name=name)
    if not inspection.complete and not partial:
        error = inspection.error
        assert error is not None
        raise RfcalcError(f"{error.path}: {error.message}")
    return inspection.report


def trace_module(module: nn.Module, input_shape: Any, *, name: str | None = None) -> Inspection:
    """Trace ``module`` and walk its graph with the calculator (see the module docstring)."""
    with memo():  # the reach caches live as long as this inspection
        return _trace(module, input_shape, name)


def _trace(module: nn.Module, input_shape: Any, name: str | None) -> Inspection:
    if not isinstance(module, nn.Module):
        raise RfcalcError(f"inspect needs a torch.nn.Module, got {type(module).__name__}")
    shape = parse_shape(input_shape)
    label = name or type(module).__name__
    states = [(m, m.training) for m in module.modules()]
    stopped: Diagnostic | None = None
    try:
        module.eval()  # traced as it runs for inference: no dropout, stochastic depth or auxiliary heads
        gm = trace_graph(module, label, shape=shape)
        required = [n for n in gm.graph.nodes if n.op == "placeholder" and not n.args]
        if len(required) != 1:
            raise RfcalcError(f"{label}.forward takes {len(required)} required inputs; rfcalc inspects modules "
                              f"with exactly one image input")
        walker = Walker(gm)
        recorder = Recorder(gm, module, walker, shape, label)
        if SHAPE_TRACED in gm.meta:
            recorder.notes.append(Diagnostic(
                "info", "shape-traced", label,
                f"{label}.forward branches on its input's size; traced for {'x'.join(map(str, shape))}, the "
                f"table holds the branch that size takes"))
        inspector = Inspector(gm, walker, recorder)
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        dtype = first.dtype if first is not None else torch.float32
        device = first.device if first is not None else torch.device("cpu")
        x = torch.rand((BATCH, *shape), generator=torch.Generator().manual_seed(0)).to(dtype=dtype, device=device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the user's own warnings on a random input are noise here
            try:
                walker.walk(x, inspector.visit)
            except CannotFollow as stop:
                stopped = stop.diagnostic
            except RfcalcError:
                raise
            except Exception as exc:  # the user's forward failed on this input
                if walker.visiting:  # rfcalc's own code failed on what the node gave: a bug (exit 3)
                    raise
                where = walker.current.name if walker.current is not None else "?"
                raise RfcalcError(f"{label}: the forward pass on a {'x'.join(map(str, shape))} input failed at "
                                  f"node '{where}': {first_line(exc)}") from None
    finally:
        for m, training in states:
            m.train(training)
    return recorder.finish(inspector.output, stopped)
