"""Upsampling in ``rfcalc inspect``: ``nn.Upsample`` / ``F.interpolate`` (nearest, nearest-exact, bilinear) and
``nn.ConvTranspose2d``. Torch-free: the calls are read by attribute and by their arguments.

Each output unit ``u`` (per axis) depends on a set of input units, its *sources* (the ones it interpolates
from with a weight that is not zero, or that a transposed conv's kernel puts on it); what it sees is the union
of what they see (:mod:`rfcalc.table.reach`, exactly). Its window is the union of its sources' windows. Those
do not move by the same step from one output unit to the next (``⌊u/2⌋`` repeats each input unit twice), so
no single ``rf / jump / start`` gives every unit's window exactly: the row's window is the smallest window of
the contract's form (jump ``J·in/out``, an integer, else the walk stops) that holds every unit's window (a
*hull*); some units see less than it, by at most the jump of the input. Later rows step that window as usual,
so they hold every unit's pixels too. The gradient oracle checks, on those rows, that every checked unit's
pixels are exactly the ones its reach says and lie inside the window.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rfcalc.table import reach as R
from rfcalc.table.report import Geometry

MODES = ("nearest", "nearest-exact", "bilinear")


@dataclass(frozen=True)
class Resample:
    """How an upsampling call maps input units to output units, per axis."""

    op: str                              # the row's op: "upsample" or "conv_transpose"
    mode: str = "nearest"                # nearest, nearest-exact, bilinear, or "transposed"
    align_corners: bool = False
    kernel: tuple[int, int] = (1, 1)     # transposed conv
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    problem: str | None = None           # why rfcalc cannot follow it


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def from_module(module: Any) -> Resample | None:
    """The resampling a leaf module does (None: it is none of these)."""
    name = type(module).__name__
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        return interpolation(str(getattr(module, "mode", "nearest")), getattr(module, "align_corners", None))
    if name == "PixelShuffle":
        return Resample("pixel_shuffle", "nearest")  # output unit (i, j) reads input unit (i // s, j // s)
    if name == "PixelUnshuffle":
        return Resample("pixel_unshuffle", "unshuffle")
    if name == "ConvTranspose2d":
        return Resample("conv_transpose", "transposed", kernel=_pair(module.kernel_size), stride=_pair(module.stride),
                        padding=_pair(module.padding), dilation=_pair(module.dilation), groups=int(module.groups))
    return None


def interpolation(mode: str, align_corners: Any) -> Resample:
    if mode not in MODES:
        return Resample("upsample", mode, problem=f"interpolates with mode '{mode}'; rfcalc follows "
                                                  f"{', '.join(MODES)}")
    return Resample("upsample", mode, bool(align_corners))


def sources(r: Resample, axis: int, n_in: int, n_out: int) -> list[list[int]]:
    """Per output unit along ``axis``, the input units it depends on."""
    if r.mode == "transposed":
        k, s, p, d = r.kernel[axis], r.stride[axis], r.padding[axis], r.dilation[axis]
        out: list[list[int]] = [[] for _ in range(n_out)]
        for i in range(n_in):
            for j in range(k):
                o = i * s - p + j * d
                if 0 <= o < n_out:
                    out[o].append(i)
        return [sorted(set(x)) for x in out]
    scale = n_in / n_out
    result = []
    for u in range(n_out):
        if r.mode == "nearest":
            result.append([min(math.floor(u * scale), n_in - 1)])
        elif r.mode == "nearest-exact":
            result.append([min(math.floor((u + 0.5) * scale), n_in - 1)])
        else:
            if r.align_corners:
                x = u * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                x = max((u + 0.5) * scale - 0.5, 0.0)
            i0 = min(int(x), n_in - 1)
            picked = [i0]
            if x - i0 > 0 and i0 < n_in - 1:
                picked.append(i0 + 1)
            result.append(picked)
    return result


def jump_after(jump: int, n_in: int, n_out: int) -> int | None:
    """The output's jump ``J·in/out`` when it is a whole number of pixels (else None)."""
    return jump * n_in // n_out if (jump * n_in) % n_out == 0 and jump * n_in >= n_out else None


def hull(geo: Geometry, src: Sequence[Sequence[list[int]]], jumps: tuple[int, int]) -> Geometry:
    """The smallest window of the contract's form, with ``jumps``, that holds every output unit's window (the
    union of its sources' windows); units without sources are left out."""
    rf, start2 = [], []
    for axis in (0, 1):
        lo_rel, hi_rel = [], []
        for u, units in enumerate(src[axis]):
            if not units:
                continue
            centres = [geo.start2[axis] + 2 * i * geo.jump[axis] for i in units]
            lo2, hi2 = min(centres) - (geo.rf[axis] - 1), max(centres) + (geo.rf[axis] - 1)
            lo_rel.append(lo2 - 2 * u * jumps[axis])
            hi_rel.append(hi2 - 2 * u * jumps[axis])
        low, high = min(lo_rel), max(hi_rel)
        start2.append((low + high) // 2)
        rf.append((high - low) // 2 + 1)
    return Geometry((rf[0], rf[1]), jumps, (start2[0], start2[1]))


def resampled(reach: R.Reach, src_h: Sequence[list[int]], src_w: Sequence[list[int]]) -> R.Reach:
    """What each output unit sees: the union of what its sources see."""
    out_h, out_w = len(src_h), len(src_w)
    if isinstance(reach, R.Grid):
        terms = [(tuple(_joined_bits(h, s) for s in src_h), tuple(_joined_bits(w, s) for s in src_w))
                 for h, w in reach.terms]
        return R.grid(reach.image, out_h, out_w, terms)
    units = R.as_units(reach)
    if len(units.dims) != 2:
        raise ValueError("upsampling units that are not a grid")
    wu = units.dims[1]
    areas = tuple(R.join(*(units.areas[i * wu + j] for i in sh for j in sw)) for sh in src_h for sw in src_w)
    return R.Units(units.image, (out_h, out_w), areas)


def _joined_bits(rel: Sequence[int], picked: list[int]) -> int:
    bits = 0
    for i in picked:
        bits |= rel[i]
    return bits


def slack(geo: Geometry, src: Sequence[Sequence[list[int]]], row: Geometry) -> int:
    """By how many pixels (at most, along either axis) a unit's own window is narrower than the row's ``row``."""
    widest = 0
    for axis in (0, 1):
        for units in src[axis]:
            if units:
                own = (max(units) - min(units)) * geo.jump[axis] + geo.rf[axis]
                widest = max(widest, row.rf[axis] - own)
    return widest


__all__ = ["MODES", "Resample", "from_module", "hull", "interpolation", "jump_after", "resampled", "slack",
           "sources"]
