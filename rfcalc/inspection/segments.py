"""Windows per channel segment: what the channels of a concatenation see, kept until a split takes them apart.
Torch-free.

A row's window (``rf``, ``jump``, ``start``) is that of a unit, all channels together (contract section 2): a
``torch.cat`` of a 9x9 path and a 3x3 path has the 9x9 window. But a later channel split (MixNet's grouped
pointwise conv after its mixed depthwise convs) may take back only the 3x3 path's channels, whose units see the
3x3 window. So beside the row's own window, ``rfcalc inspect`` keeps, for a tensor whose channels do not all
see the same, the :class:`Part` each run of channels sees (:data:`Runs`, in the calculator's channel order),
through the ops that keep channels apart (element-wise ops, norms, pools, grouped and depthwise convs,
channel shuffles, merges), and gives a piece of it the union of the parts of the channels it takes (one part:
exactly that part's window).

Where an op without such a rule follows such a tensor, its channels are :data:`UNKNOWN`: a later split of them
stops the walk (no number is guessed). An op that mixes all channels (a conv with one group, a linear layer)
makes every channel see the same again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Union

from rfcalc.inspection import layout as L
from rfcalc.table import reach as R
from rfcalc.table.geometry import union_geometry
from rfcalc.table.report import Geometry


@dataclass(frozen=True)
class Part:
    """What the channels of one run see: their window and their units' pixels."""

    geo: Geometry
    reach: R.Reach

    def same(self, other: Part) -> bool:
        return self is other or (self.geo == other.geo and (self.reach is other.reach or self.reach == other.reach))


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
Runs = tuple[tuple[int, Part], ...]   # (channel count, what they see), in channel order; two parts at least
Channels = Union[Runs, _Unknown, None]  # None: every channel sees the row's own window


def runs(items: Sequence[tuple[int, Part]]) -> Runs | None:
    """Runs with neighbours that see the same joined; None when every channel sees the same."""
    out: list[tuple[int, Part]] = []
    for count, part in items:
        if count <= 0:
            continue
        if out and out[-1][1].same(part):
            out[-1] = (out[-1][0] + count, out[-1][1])
        else:
            out.append((count, part))
    if len(out) <= 1 or all(p.same(out[0][1]) for _, p in out):
        return None
    return tuple(out)


def per_channel(r: Runs) -> list[Part]:
    return [part for count, part in r for _ in range(count)]


def joined(parts: Sequence[Part]) -> Part:
    """What a unit of several parts' channels sees: the union of their windows and pixels."""
    distinct: list[Part] = []
    for p in parts:
        if not any(p.same(q) for q in distinct):
            distinct.append(p)
    if len(distinct) == 1:
        return distinct[0]
    return Part(union_geometry([p.geo for p in distinct]), R.union([p.reach for p in distinct]))


def pick(r: Runs, chosen: Sequence[int]) -> tuple[Part, Runs | None]:
    """Channels ``chosen`` (indices, in their new order): what a unit of them sees, and their own runs."""
    every = per_channel(r)
    parts = [every[c] for c in chosen]
    return joined(parts), runs([(1, p) for p in parts])


def concat(items: Sequence[tuple[int, Channels, Part]]) -> Channels:
    """The channels of a concatenation: each input's ``(channel count, its channels, its own part)``."""
    if any(ch is UNKNOWN for _, ch, _ in items):
        return UNKNOWN
    out: list[tuple[int, Part]] = []
    for count, ch, own in items:
        out.extend(ch if isinstance(ch, tuple) else [(count, own)])
    return runs(out)


def elementwise(items: Sequence[tuple[Channels, Part]], count: int) -> Channels:
    """Channel by channel, the union of equal-shaped inputs (``a + b``)."""
    if any(ch is UNKNOWN for ch, _ in items):
        return UNKNOWN
    if all(ch is None for ch, _ in items):
        return None
    columns = [per_channel(ch) if isinstance(ch, tuple) else [own] * count for ch, own in items]
    return runs([(1, joined(list(column))) for column in zip(*columns)])


def mapped(r: Runs, step: Callable[[Part], Part]) -> Runs | None:
    """Each run through the same op (a pool, a norm, a gate broadcast over every channel)."""
    cache: dict[int, Part] = {}
    out = []
    for count, part in r:
        if id(part) not in cache:
            cache[id(part)] = step(part)
        out.append((count, cache[id(part)]))
    return runs(out)


def grouped(r: Runs, groups: int, out: int, step: Callable[[Part], Part]) -> Runs | None:
    """A grouped conv: output group ``g`` sees what input group ``g``'s channels see, through ``step``."""
    every = per_channel(r)
    c_in = len(every)
    if groups <= 1 or c_in % groups or out % groups:
        return None
    size = c_in // groups
    return runs([(out // groups, step(joined(every[g * size:(g + 1) * size]))) for g in range(groups)])


def reordered(r: Runs, order: Sequence[int]) -> Runs | None:
    """The channels permuted: new channel ``k`` is old channel ``order[k]`` (a channel shuffle)."""
    every = per_channel(r)
    return runs([(1, every[o]) for o in order])


def logical_channels(layout: L.Layout, dim: int, chosen: Sequence[int]) -> list[int] | None:
    """The calculator's channels that picking elements ``chosen`` of dimension ``dim`` (which holds channels
    only) keeps, in the row-major order of the result; None when the layout's channels are not pieces of one
    feature axis (then rfcalc cannot tell which they are)."""
    if len({f.axis for d in layout for f in d if f.kind == "c"}) > 1:
        return None
    result = [0]
    for k, d in enumerate(layout):
        if k == dim:
            offsets = []
            for index in chosen:
                rest, offset = index, 0
                for f in reversed(d):
                    rest, digit = divmod(rest, f.size)
                    offset += digit * f.stride if f.kind == "c" else 0
                offsets.append(offset)
        else:
            offsets = [0]
            for f in d:
                if f.kind == "c":
                    offsets = [base + i * f.stride for base in offsets for i in range(f.size)]
        result = [base + offset for base in result for offset in offsets]
    return result
