"""Tracing for ``rfcalc inspect``: the torch.fx graph of a module, the interpreter that runs it node by node,
and where in the user's code each node comes from. Needs torch."""
from __future__ import annotations

import functools
import inspect as _inspect
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.experimental.meta_tracer import MetaTracer

from rfcalc.errors import RfcalcError
from rfcalc.inspection.lookup import rfcalc_leaf_types

BATCH = 2  # two samples, so that an op that drops the batch dimension (x.squeeze()) shows it
_TORCH_DIR = os.path.dirname(torch.__file__)


class _Tracer(fx.Tracer):
    """torch.fx's tracer, recording where in the user's code each node comes from (the innermost frame outside
    torch, in ``node.meta["rfcalc_frame"]``: cheaper than fx's formatted stack traces, a third of the tracing
    time); rfcalc's own ``GlobalPool`` and ``Ultimus`` stay whole."""

    def __init__(self, leaves: tuple[type, ...] = ()) -> None:
        super().__init__()
        self._own = rfcalc_leaf_types() + leaves

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            file = frame.f_code.co_filename
            if not _skipped(file):
                node.meta["rfcalc_frame"] = (file, frame.f_lineno)
                break
            frame = frame.f_back
        return node

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self._own) or super().is_leaf_module(m, module_qualified_name)


class _ShapeTracer(_Tracer, MetaTracer):
    """The same tracer, with every proxy carrying a meta tensor of its real shape: ``x.shape`` and ``x.size()``
    are plain ints, so a forward that branches on its input's size (``if x.shape[-2] < k:``, ``if new_h != H:``)
    traces the branch that input size takes. The sizes come from running each call on real (zero) tensors
    beside the trace: parameters read directly keep their real values (the meta tracer would make them meta
    tensors, which do not meet a real input)."""

    def create_proxy(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                     name: str | None = None, type_expr: Any = None, proxy_factory_fn: Any = None) -> Any:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "get_attr" and hasattr(proxy, "install_tensor_meta"):
            value: Any = self.root
            self._disable_module_getattr = True  # the meta tracer's switch: plain attribute reads
            try:
                for atom in str(target).split("."):
                    value = getattr(value, atom)
            finally:
                self._disable_module_getattr = False
            if isinstance(value, torch.Tensor):
                proxy.install_tensor_meta(value)
        return proxy


SHAPE_TRACED = "shape-traced"  # the graph's meta key: traced for one input size (its (batch, C, H, W))


def traced(module: nn.Module, leaves: tuple[type, ...] = (), shape: tuple[int, ...] | None = None,
           batch: int = BATCH) -> fx.GraphModule:
    """The torch.fx graph module rfcalc walks (same tracer, same node names as ``trace_module``); modules of the
    ``leaves`` types stay whole too (the gradient oracle's stand-ins). ``shape`` (C, H, W) and ``batch``: the
    input a forward that branches on its size is traced for."""
    return trace_graph(module, type(module).__name__, leaves, shape, batch)


def trace_graph(module: nn.Module, label: str, leaves: tuple[type, ...] = (), shape: tuple[int, ...] | None = None,
                batch: int = BATCH) -> fx.GraphModule:
    """Trace ``module``; a failure is one :class:`RfcalcError` line naming ``label``. A forward that branches on
    its input's shape is traced again with the sizes of a ``batch x shape`` input (when ``shape`` is given): the
    graph then holds the branch that input takes and the sizes it reads as constants
    (``graph.meta[SHAPE_TRACED]``)."""
    tracer = _Tracer(leaves)
    try:
        graph = tracer.trace(module)
    except Exception as exc:
        if shape is None or "control flow" not in first_line(exc):
            raise RfcalcError(_trace_failure(exc, label)) from None
        shaped = _ShapeTracer(leaves)
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        dtype = first.dtype if first is not None else torch.float32
        device = first.device if first is not None else torch.device("cpu")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sizes it cannot compute: the branch on them fails as before
                graph = shaped.trace(module, {_input_name(module): torch.zeros((batch, *shape), dtype=dtype,
                                                                                   device=device)})
        except Exception as again:
            raise RfcalcError(_trace_failure(again, label)) from None
        gm = fx.GraphModule(shaped.root, graph)
        gm.meta[SHAPE_TRACED] = (batch, *shape)
        return gm
    return fx.GraphModule(tracer.root, graph)


def _input_name(module: nn.Module) -> str:
    """The name of the forward's first parameter (the image; fx names its placeholder so)."""
    parameters = list(_inspect.signature(module.forward).parameters)
    return parameters[0] if parameters else "x"


_RFCALC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trace_failure(exc: BaseException, label: str) -> str:
    """One line for a module torch.fx cannot trace: where in the user's code, what, and what is followed."""
    where, code = label, ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not _skipped(frame.filename) and not os.path.abspath(frame.filename).startswith(_RFCALC_DIR):
            where, code = f"{_display_path(frame.filename)}:{frame.lineno}", (frame.line or "").strip()
            break
    at = f" (`{code}`)" if code else ""
    if "control flow" in first_line(exc):
        what = f"`{code}`" if code else "its forward"
        return (f"{where}: cannot trace {label} with torch.fx: {what} branches on a value computed from the "
                f"input's values (tests of its shape are evaluated with the input size given); rfcalc inspects "
                f"forwards that run the same operations for every input: branch on module attributes or "
                f"constants instead, or inspect the branch's modules one by one")
    return f"{where}: cannot trace {label} with torch.fx{at}: {first_line(exc)}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Walker(fx.Interpreter):
    """Runs the graph node by node and hands each node, with its real output, to a visitor."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.extra_traceback = False
        self.current: fx.Node | None = None
        self.visiting = False
        self._visit: Callable[[fx.Node, Any], None] = lambda n, result: None

    def walk(self, x: torch.Tensor, visit: Callable[[fx.Node, Any], None]) -> Any:
        """Run the forward on ``x``, calling ``visit(node, output)`` after each node."""
        self._visit = visit
        return self.run(x)

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        result = super().run_node(n)
        self.visiting = True  # from here on a failure is rfcalc's own, not the user's forward
        self._visit(n, result)
        self.visiting = False
        return result

    def replay(self, n: fx.Node, args: Any, kwargs: Any) -> Any:
        """Run node ``n`` again on other arguments."""
        return getattr(self, n.op)(n.target, args, kwargs)

    def value(self, n: fx.Node) -> Any:
        """The output node ``n`` gave in this run (None before it ran)."""
        return self.env.get(n)


@functools.lru_cache(maxsize=1024)
def _skipped(file: str) -> bool:
    """torch's own files, this file and ``<string>``-like ones: not where a node comes from."""
    return file.startswith("<") or file == __file__ or os.path.abspath(file).startswith(_TORCH_DIR)


def source_line(n: fx.Node) -> str:
    """``model.py:42``: the innermost line of the user's code that made this node (else the node name)."""
    cwd = os.getcwd()
    frame = n.meta.get("rfcalc_frame")
    if frame is not None:
        shown = _user_file(frame[0], cwd)
        if shown is not None:
            return f"{shown}:{frame[1]}"
    return n.name


@functools.lru_cache(maxsize=1024)
def _user_file(file: str, cwd: str) -> str | None:
    """How a frame's file is shown, or None for torch's own files (cached: one stack trace per node)."""
    if file.startswith("<") or os.path.abspath(file).startswith(_TORCH_DIR):
        return None
    return _display_path(file)


def _display_path(file: str) -> str:
    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    return file if rel.startswith("..") else rel
