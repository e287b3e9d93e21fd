"""What each dimension of a traced tensor holds: channels (features) or units (positions, tokens). Torch-free.

``rfcalc inspect`` follows reshapes, permutes and transposes by keeping, for every tensor, its *layout*: per
dimension (batch excluded), the *factors* it is made of, outermost first. A factor is a piece of a feature
axis (``"c"``: channels, features) or one unit axis of the tensor's reach (``"u"``:
:mod:`rfcalc.table.reach`; a feature map's rows and columns, a token sequence). Size-1 pieces are left out,
so a dimension of size 1 holds no factor.

- a feature map ``C x H x W``: ``(c) (u0) (u1)``; channels-last ``H x W x C``: ``(u0) (u1) (c)``;
- ``flatten(1)`` of a map: one dimension ``(c u0 u1)``; ``flatten(2)`` then ``transpose(1, 2)``: tokens
  ``(u0 u1) (c)``;
- ShuffleNet's ``view(g, C/g, H, W)``: ``(c[g]) (c[C/g]) (u0) (u1)``; after ``transpose(1, 2)`` and
  ``view(C, H, W)``, one channel dimension whose two pieces are swapped: a channel shuffle.

A reshape regroups the factors in row-major order and may split a channel factor, never a unit axis (that
would cut the image's rows or a token sequence in pieces rfcalc cannot name); a permute reorders dimensions.
Where an op then works along a dimension (a norm, a linear layer, a softmax, a reduction, a matmul) the
factors say whether it stays within each unit (channels only) or mixes units.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Literal

_ids = count(1)


@dataclass(frozen=True)
class Factor:
    """One piece of a dimension: ``kind`` "c" (features), "u" (unit axis ``axis`` of the reach) or "b" (copies
    of the same values: what ``expand`` adds).

    A channel piece carries the feature axis it comes from (``axis``, an id) and its ``stride`` in that axis:
    element ``i`` of this piece is ``i·stride`` channels along the original axis.
    """

    kind: Literal["c", "u", "b"]
    size: int
    axis: int
    stride: int = 1


Dim = tuple[Factor, ...]
Layout = tuple[Dim, ...]


class LayoutError(Exception):
    """A reshape or permute rfcalc cannot follow; the message says why."""


def channels(size: int) -> Dim:
    """A fresh feature axis of ``size`` channels (no factor when size is 1)."""
    return (Factor("c", size, next(_ids)),) if size > 1 else ()


def units(axis: int, size: int) -> Dim:
    return (Factor("u", size, axis),) if size > 1 else ()


def dim_size(dim: Dim) -> int:
    return math.prod(f.size for f in dim)


def shape(layout: Layout) -> tuple[int, ...]:
    return tuple(dim_size(d) for d in layout)


# -- canonical layouts of the calculator's shapes -------------------------------------------------------------
def feature_map(c: int, unit_dims: Sequence[int]) -> Layout:
    """``C x H x W`` whose H x W positions are the reach's units (a 1x1 map: one unit)."""
    h, w = unit_dims if len(unit_dims) == 2 else (1, 1)
    return (channels(c), units(0, h), units(1, w))


def flat(c: int, unit_dims: Sequence[int], real_rank: int) -> Layout:
    """A vector: a flattened map ``(c u0 u1)`` or, with one unit, ``C`` features (held as ``C x 1 x 1`` by
    a global pool before its flatten: ``real_rank`` 3)."""
    dims: Dim = channels(c) + sum((units(a, n) for a, n in enumerate(unit_dims)), ())
    return (dims,) + ((),) * (real_rank - 1)


def tokens(unit_dims: Sequence[int], features: int) -> Layout:
    """``N x D``: the reach's units in one dimension (row-major), features in the other."""
    return (sum((units(a, n) for a, n in enumerate(unit_dims)), ()), channels(features))


# -- following ops ----------------------------------------------------------------------------------------------
def permute(layout: Layout, order: Sequence[int]) -> Layout:
    """Dimensions reordered: new dim k is old dim ``order[k]`` (negative indices allowed)."""
    n = len(layout)
    order = [o % n for o in order]
    if sorted(order) != list(range(n)):
        raise LayoutError(f"permutes {n} dimensions by {list(order)}")
    return tuple(layout[o] for o in order)


def transpose(layout: Layout, a: int, b: int) -> Layout:
    n = len(layout)
    order = list(range(n))
    order[a % n], order[b % n] = order[b % n], order[a % n]
    return permute(layout, order)


def reshape(layout: Layout, new_shape: Sequence[int]) -> Layout:
    """The same elements in row-major order, regrouped into dimensions of ``new_shape``."""
    if math.prod(new_shape) != math.prod(shape(layout)):
        raise LayoutError(f"reshapes {list(shape(layout))} to {list(new_shape)}")
    pending = [f for d in layout for f in d]
    out: list[Dim] = []
    for size in new_shape:
        dim: list[Factor] = []
        need = size
        while need > 1:
            f = pending.pop(0)
            if f.size <= need and need % f.size == 0:
                dim.append(f)
                need //= f.size
                continue
            if f.kind == "b":
                raise LayoutError(f"splits {f.size} copies of a broadcast into pieces of {need}")
            if f.kind == "u" and f.size % need:
                raise LayoutError("splits the rows or columns of the image (or a sequence of tokens) across "
                                  "dimensions unevenly")
            if f.size % need:
                raise LayoutError(f"splits {f.size} channels into pieces of {need}")
            inner = f.size // need  # row-major: this dimension takes the outer piece, the next ones the rest
            dim.append(Factor(f.kind, need, f.axis, f.stride * inner))
            pending.insert(0, Factor(f.kind, inner, f.axis, f.stride))
            need = 1
        out.append(tuple(dim))
    if pending:
        raise LayoutError(f"reshapes {list(shape(layout))} to {list(new_shape)}")
    return tuple(_joined(d) for d in out)


def _joined(dim: Dim) -> Dim:
    """Neighbouring pieces of one unit axis in order, joined again (a window partition reversed)."""
    out: list[Factor] = []
    for f in dim:
        last = out[-1] if out else None
        if last is not None and f.kind == last.kind == "u" and f.axis == last.axis \
                and last.stride == f.stride * f.size:
            out[-1] = Factor("u", last.size * f.size, f.axis, f.stride)
        else:
            out.append(f)
    return tuple(out)


def expand(layout: Layout, new_shape: Sequence[int]) -> Layout:
    """``expand``: size-1 dimensions repeated to ``new_shape`` (new leading dimensions too)."""
    lead = len(new_shape) - len(layout)
    if lead < 0:
        raise LayoutError(f"expands {list(shape(layout))} to {list(new_shape)}")
    out: list[Dim] = [(Factor("b", s, 0),) if s > 1 else () for s in new_shape[:lead]]
    for d, size in zip(layout, new_shape[lead:]):
        if dim_size(d) == size:
            out.append(d)
        elif dim_size(d) == 1:
            out.append((Factor("b", size, 0),))
        else:
            raise LayoutError(f"expands {list(shape(layout))} to {list(new_shape)}")
    return tuple(out)


def renumber(layout: Layout, mapping: dict[int, int]) -> Layout:
    """Unit factors pointed at other unit axes (after the reach's axes were reduced or reordered)."""
    return tuple(tuple(Factor("u", f.size, mapping[f.axis]) if f.kind == "u" else f for f in d) for d in layout)


def split_units(layout: Layout) -> bool:
    """Whether an image axis (or a token sequence) is cut into pieces held by several factors (blocks of rows
    or columns: a window partition, space-to-depth, pixel shuffle on the way)."""
    axes = [f.axis for d in layout for f in d if f.kind == "u"]
    return len(axes) != len(set(axes)) or any(f.kind == "u" and f.stride != 1 for d in layout for f in d)


def space_to_depth(layout: Layout, unit_dims: Sequence[int]) -> int | None:
    """The block size ``s`` when ``layout`` is a map whose units are ``s x s`` blocks of ``unit_dims``'s units,
    their pixels folded into the channels (``C·s·s x H/s x W/s``: TResNet's SpaceToDepth, ``pixel_unshuffle``);
    else None."""
    if len(layout) != 3 or len(unit_dims) != 2 or any(f.kind == "b" for d in layout for f in d):
        return None
    h, w = unit_dims
    blocks = []
    for k, axis, size in ((1, 0, h), (2, 1, w)):
        dim = layout[k]
        if len(dim) != 1 or dim[0].kind != "u" or dim[0].axis != axis:
            return None
        block = dim[0].stride
        if dim[0].size * block != size:
            return None
        inner = [f for f in layout[0] if f.kind == "u" and f.axis == axis]
        if block > 1 and (len(inner) != 1 or inner[0].size != block or inner[0].stride != 1):
            return None
        blocks.append(block)
    if blocks[0] != blocks[1] or blocks[0] < 2 or len([f for f in layout[0] if f.kind == "u"]) != 2:
        return None
    return blocks[0]


def unit_signature(layout: Layout) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per dimension, its unit factors (axis, size): what two operands of an element-wise op must share."""
    return tuple(tuple((f.axis, f.size) for f in d if f.kind == "u") for d in layout)


# -- what a layout is ----------------------------------------------------------------------------------------
def unit_axes(dim: Dim) -> list[int]:
    return [f.axis for f in dim if f.kind == "u"]


def has_units(dim: Dim) -> bool:
    return any(f.kind == "u" for f in dim)


def all_unit_axes(layout: Layout) -> list[int]:
    return [a for d in layout for a in unit_axes(d)]


def is_map(layout: Layout, unit_dims: Sequence[int]) -> bool:
    """``C x H x W`` in this order (channels possibly split or permuted, see :func:`channel_order`)."""
    if len(layout) != 3 or has_units(layout[0]):
        return False
    h, w = unit_dims if len(unit_dims) == 2 else (1, 1)
    return _is_axis(layout[1], 0, h) and _is_axis(layout[2], 1, w)


def _is_axis(dim: Dim, axis: int, size: int) -> bool:
    """``dim`` is exactly unit axis ``axis`` of ``size`` (no factor when size is 1)."""
    if size == 1:
        return not dim
    return len(dim) == 1 and dim[0].kind == "u" and dim[0].axis == axis and dim[0].size == size


def is_channels_last(layout: Layout, unit_dims: Sequence[int]) -> bool:
    """``H x W x C``."""
    if len(layout) != 3 or has_units(layout[2]) or len(unit_dims) != 2:
        return False
    return layout[0] == units(0, unit_dims[0]) and layout[1] == units(1, unit_dims[1])


def is_tokens(layout: Layout, unit_dims: Sequence[int]) -> bool:
    """``N x D``: every unit axis in the first dimension, in order; only features in the second."""
    if len(layout) != 2 or has_units(layout[1]):
        return False
    return layout[0] == sum((units(a, n) for a, n in enumerate(unit_dims)), ())


def is_vector(layout: Layout) -> bool:
    """One dimension (what a flatten makes: channels, then units)."""
    return len(layout) == 1 or all(not d for d in layout[1:])


def channel_order(dim: Dim) -> list[int] | None:
    """The original channel of each channel of ``dim`` (all pieces of one feature axis), or None when the
    pieces do not make up a whole feature axis."""
    if not dim or any(f.kind != "c" for f in dim) or len({f.axis for f in dim}) != 1:
        return None
    order = [0]
    for f in dim:
        order = [base + i * f.stride for base in order for i in range(f.size)]
    return order if sorted(order) == list(range(len(order))) else None


def shuffle_groups(dim: Dim) -> int | None:
    """The ``groups`` of a channel shuffle when ``dim`` is one (two swapped pieces of a feature axis:
    ``C/g`` with stride 1, then ``g`` with stride ``C/g``)."""
    if len(dim) != 2 or channel_order(dim) is None:
        return None
    inner, outer = dim
    if inner.stride == 1 and outer.stride == inner.size:
        return outer.size
    return None


def is_plain(dim: Dim) -> bool:
    """A channel dimension in its original order (a split that was never permuted)."""
    if len(dim) <= 1:
        return True
    if any(f.kind != "c" for f in dim) or len({f.axis for f in dim}) != 1:
        return False
    stride = 1
    for f in reversed(dim):
        if f.stride != stride:
            return False
        stride *= f.size
    return True
