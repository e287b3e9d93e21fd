"""What a traced PyTorch call means to ``rfcalc inspect``: the *actions* its lookup table answers with. Torch-free.

The op registry's converters (:mod:`rfcalc.ops`) and the structural entries of :mod:`rfcalc.inspection.lookup`
answer every call they know with one of these; :mod:`rfcalc.inspection.walk` turns the answer into rows:

- :class:`AsLayer` — a spec layer model (``ConvLayer``, ``PoolLayer``, ...) the calculator handles as is;
  ``spec_note`` says why the spec could not write it back exactly (``--to-spec`` refuses then);
- :class:`Pointwise` — a known element-wise op with no spec op (sigmoid, hardswish, instance norm, ...):
  passes the RF through;
- :class:`GlobalPool` / :class:`AdaptivePool` — global and adaptive pools (``gap`` or an exact pool);
- :class:`Reshape` — flatten / view / reshape / squeeze (only flattening to a vector keeps a meaning);
- :class:`Concat`, :class:`Binary` — merges (``torch.cat``, ``+``, ``*``, ...);
- :class:`Broadcast` — ``expand`` / ``expand_as``: a 1x1 map seen at every position (it stays 1x1 for the
  calculator, so the product or sum that uses it is a broadcast with a global context);
- :class:`Unsupported` — a known call whose windows the calculator cannot describe (a dilated max pool,
  asymmetric ``same`` padding, ...): the report stops there with the reason.

Calls that move data between dimensions or mix along one (read with the tensor's layout,
:mod:`rfcalc.inspection.layout`):

- :class:`Permute` — ``permute`` / ``transpose`` / ``movedim``; :class:`Copy` — ``contiguous``, ``clone``,
  ``detach``: the same values (no row of their own unless the layout's meaning changes);
- :class:`Reduce` — ``mean`` / ``sum`` / ``amax`` / ``var`` / ... over dimensions (a global pool when they
  are the image's);
- :class:`Along` — ``softmax`` along one dimension;
- :class:`Index` — ``x[:, 0]``, ``x[:, :2]``: a token, a range of channels;
- :class:`Split` — ``chunk`` / ``split`` / ``unbind``: several tensors, each followed at its ``x[i]``;
- :class:`MatMul` — ``@`` / ``matmul`` / ``bmm``; :class:`Attention` — ``nn.MultiheadAttention``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from rfcalc.ops.fields import LayerModel


@dataclass(frozen=True)
class AsLayer:
    layer: LayerModel
    spec_note: str | None = None
    # settings of the call the spec layer does not hold and that leave the RF as it is (``count_include_pad=False``);
    # ``--to-spec`` writes the layer and says each one it drops
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pointwise:
    op: str


@dataclass(frozen=True)
class GlobalPool:
    mode: str  # "avg" | "max"


@dataclass(frozen=True)
class AdaptivePool:
    mode: str


@dataclass(frozen=True)
class Reshape:
    pass


@dataclass(frozen=True)
class Concat:
    dim: int
    tensors: str = "tensors"


@dataclass(frozen=True)
class Binary:
    op: str  # "add" | "sub" | "mul" | "div"
    operands: tuple[str, str] = ("input", "other")


@dataclass(frozen=True)
class Broadcast:
    """``expand`` / ``expand_as`` / ``broadcast_to``: the same values seen at more positions (no row of its own)."""


@dataclass(frozen=True)
class Unsupported:
    reason: str


@dataclass(frozen=True)
class Permute:
    """Dimensions reordered: ``order`` (torch dims, batch included) or the two dims ``swap`` exchanges."""

    order: tuple[int, ...] | None = None
    swap: tuple[int, int] | None = None


@dataclass(frozen=True)
class Copy:
    """The same values (``contiguous``, ``clone``, ``detach``)."""


@dataclass(frozen=True)
class Reduce:
    """A reduction ``op`` over torch dims ``dims`` (batch included; None: every dim)."""

    op: str
    dims: tuple[int, ...] | None
    keepdim: bool = False


@dataclass(frozen=True)
class Along:
    """An op along one torch dim (``softmax``): each output depends on its whole line along ``dim``."""

    op: str
    dim: int


@dataclass(frozen=True)
class Index:
    """``x[index]`` on a tensor (``index`` as Python gives it: ints, slices, None, Ellipsis)."""

    index: Any


@dataclass(frozen=True)
class Split:
    """``chunk`` / ``split`` / ``unbind`` along torch dim ``dim``: ``sizes`` of the pieces (None: unbind)."""

    dim: int
    sizes: tuple[int, ...] | None = None
    chunks: int | None = None


@dataclass(frozen=True)
class MatMul:
    """A matrix product of ``operands`` (names of the bound arguments)."""

    operands: tuple[str, str] = ("input", "other")


@dataclass(frozen=True)
class Attention:
    """``nn.MultiheadAttention``: every query token sees every key and value token."""


Action = Union[AsLayer, Pointwise, GlobalPool, AdaptivePool, Reshape, Concat, Binary, Broadcast, Unsupported,
               Permute, Copy, Reduce, Along, Index, Split, MatMul, Attention]


@dataclass
class Call:
    """One traced call: the module (for ``call_module``) and its arguments bound by name to concrete values."""

    name: str
    module: Any  # the nn.Module of a call_module node, else None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


# a bound call -> its action; None: not this op after all (the generic rule applies)
Converter = Callable[[Call], "Action | None"]
