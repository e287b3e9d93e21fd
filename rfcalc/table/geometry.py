"""Contract section 2 as pure functions: output sizes, one window op's geometry, and the union at merges.

Centres are integers in half-pixel units (``Geometry.start2``), so nothing rounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rfcalc.table.report import Geometry, IntPair, Shape


@dataclass(frozen=True)
class Flow:
    """What flows along an edge: the tensor's shape, its geometry and the row that produced it."""

    shape: Shape
    geo: Geometry
    producer: str


class LayerError(Exception):
    """Raised inside a handler; becomes a located problem for that layer."""


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(s) for s in shape) if len(shape) == 3 else f"a vector of {shape[0]}"


def fmt_pair(pair: tuple[object, object]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def step_geometry(geo: Geometry, k_eff: IntPair, stride: IntPair, padding: IntPair) -> Geometry:
    """Contract section 2: rf, jump and start after a window op."""
    (rf_h, rf_w), (j_h, j_w), (s_h, s_w) = geo.rf, geo.jump, geo.start2
    return Geometry((rf_h + (k_eff[0] - 1) * j_h, rf_w + (k_eff[1] - 1) * j_w), (j_h * stride[0], j_w * stride[1]),
                    (s_h + (k_eff[0] - 1 - 2 * padding[0]) * j_h, s_w + (k_eff[1] - 1 - 2 * padding[1]) * j_w))


def output_size(n: int, k_eff: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """PyTorch's output length, including its ceil_mode rule (the last window must start inside the input)."""
    span = n + 2 * padding - k_eff
    if span < 0:
        return 0
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def union_geometry(geos: list[Geometry]) -> Geometry:
    """The union (hull) of the inputs' windows; all inputs share one jump."""
    rf, start2 = [], []
    for a in (0, 1):  # in half-pixel units: the window of unit 0 is [start2 - (rf-1), start2 + (rf-1)]
        lo2 = min(g.start2[a] - (g.rf[a] - 1) for g in geos)
        hi2 = max(g.start2[a] + (g.rf[a] - 1) for g in geos)
        rf.append((hi2 - lo2) // 2 + 1)
        start2.append((lo2 + hi2) // 2)
    return Geometry((rf[0], rf[1]), geos[0].jump, (start2[0], start2[1]))


def fmt_centre(start2: tuple[int, int]) -> str:
    return "(" + ", ".join(str(s // 2) if s % 2 == 0 else str(s / 2) for s in start2) + ")"
