"""Which input pixels each unit of a tensor depends on: what makes a row ``global`` (contract: ``"global"``).

Torch-free and exact. A tensor's *units* are its spatial positions, all channels together (a feature map's
H x W positions, the elements of a vector that a flatten made from them, the tokens of a sequence); a unit's
*area* is the set of input pixels its value depends on (through any path, as a gradient with all weights
positive sees it). A row is ``global`` when every unit's area is the whole image. The table's window
``rf/jump/start`` stays the hull of what one unit sees; ``global`` is the fact no window can state: after
a squeeze-and-excitation gate, attention across tokens, a linear layer over a flattened map, or a global
pool over units that together see every pixel.

Areas are kept as unions of products of per-axis pixel sets (Python ints used as bit sets: bit ``i`` is
pixel row or column ``i``), so nothing is approximated: a strided 1x1 conv that skips pixels leaves holes,
and a global pool over it is not global.

- :class:`Grid`: the units of a feature map, ``hu x wu``; unit ``(i, j)`` sees
  ``∪_t rows_t[i] x cols_t[j]`` over its product terms (one term for a chain; a merge of branches whose
  windows do not nest keeps one term per branch). Window ops (conv, pools, gap) map each axis on its own.
- :class:`Units`: explicit areas over any unit axes (token sequences with a class token, the pairwise
  scores of hand-written attention).

Norm statistics are not counted (a group or layer norm over H x W makes every output depend on every pixel
through its mean and variance; like the RF, ``global`` leaves them out, as the gradient oracle's identity
stand-ins do).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property, reduce
from itertools import product
from operator import or_
from typing import Union

Rel = tuple[int, ...]               # one axis: per unit, the bit set of input pixels along that axis
Term = tuple[Rel, Rel]              # a product term of a grid: (rows per unit row, cols per unit column)
Area = tuple[tuple[int, int], ...]  # a set of pixels: a union of products (row bits, col bits)

EMPTY: Area = ()


@dataclass(frozen=True)
class Image:
    """The input's pixel grid; ``full_h`` / ``full_w``: every row / column."""

    h: int
    w: int
    full_h: int = field(init=False, repr=False, compare=False)
    full_w: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "full_h", (1 << self.h) - 1)
        object.__setattr__(self, "full_w", (1 << self.w) - 1)


@dataclass(frozen=True)
class Grid:
    """The units of a feature map (or of what a flatten made of it): ``hu x wu`` units, product terms."""

    image: Image
    hu: int
    wu: int
    terms: tuple[Term, ...]

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.hu, self.wu)

    @cached_property
    def everywhere(self) -> bool:
        """Every unit sees every pixel (computed once: rows that share a reach share the answer)."""
        return _grid_global(self)


@dataclass(frozen=True)
class Units:
    """Explicit unit areas over unit axes ``dims`` (row-major); ``dims == ()`` is one unit."""

    image: Image
    dims: tuple[int, ...]
    areas: tuple[Area, ...]

    @cached_property
    def everywhere(self) -> bool:
        return all(is_full(a, self.image) for a in self.areas)


Reach = Union[Grid, Units]


# -- areas ---------------------------------------------------------------------------------------------------
def area(pairs: Iterable[tuple[int, int]]) -> Area:
    """A normalised union of products: no empty, repeated or contained term; terms sharing an axis joined."""
    items = [(a, b) for a, b in pairs if a and b]
    changed = True
    while changed and len(items) > 1:
        changed = False
        for i in range(len(items)):
            for j in range(len(items)):
                if i == j:
                    continue
                (a1, b1), (a2, b2) = items[i], items[j]
                if a1 & ~a2 == 0 and b1 & ~b2 == 0:          # i inside j
                    del items[i]
                    changed = True
                    break
                if a1 == a2 or b1 == b2:                      # one axis shared: one product
                    items[j] = (a1 | a2, b1 | b2)
                    del items[i]
                    changed = True
                    break
            if changed:
                break
    return tuple(sorted(items))


def join(*areas: Area) -> Area:
    """The union of areas."""
    return area(pair for a in areas for pair in a)


def pixel_count(a: Area, image: Image) -> int:
    """How many pixels area ``a`` holds."""
    return sum(reduce(or_, (c for rows, c in a if rows >> r & 1), 0).bit_count() for r in range(image.h))


def is_full(a: Area, image: Image) -> bool:
    """Whether area ``a`` is every pixel of ``image``."""
    full_h, full_w = image.full_h, image.full_w
    if not a:
        return False
    if any(rows == full_h and cols == full_w for rows, cols in a):
        return True
    if len(a) <= 8:  # every pattern of which terms hold a pixel row must cover all columns
        for chosen in product((False, True), repeat=len(a)):
            mask, cols = full_h, 0
            for (rows, c), inside in zip(a, chosen):
                mask &= rows if inside else ~rows
                cols |= c if inside else 0
            if mask and cols != full_w:
                return False
        return True
    return all(reduce(or_, (c for rows, c in a if rows >> r & 1), 0) == full_w for r in range(image.h))


# -- building reaches ----------------------------------------------------------------------------------------
def image_reach(h: int, w: int) -> Grid:
    """The input itself: pixel ``(i, j)`` sees itself."""
    image = Image(h, w)
    rows = tuple(1 << i for i in range(h))
    cols = rows if w == h else tuple(1 << j for j in range(w))  # one tuple: square maps compute one axis
    return Grid(image, h, w, ((rows, cols),))


def single(a: Area, image: Image) -> Grid:
    """One unit (a 1x1 map, a pooled vector) that sees area ``a``."""
    return Grid(image, 1, 1, tuple(((rows,), (cols,)) for rows, cols in a))


def grid(image: Image, hu: int, wu: int, terms: Iterable[Term]) -> Grid:
    """A grid with normalised terms (see :func:`area`, term by term and unit by unit). Widest terms first, so
    that nested terms (a branch's windows inside another's: a residual's shortcut, densenet's concatenations of
    every earlier layer) drop in one pass."""
    items: list[Term] = []
    seen: set[int] = set()
    for t in terms:  # the same term object from several inputs: once (by identity: no hashing of long tuples)
        if id(t) not in seen and any(t[0]) and any(t[1]):
            seen.add(id(t))
            items.append(t)
    if len(items) <= 1:
        return Grid(image, hu, wu, tuple(items))
    items.sort(key=lambda t: _width(t, image), reverse=True)
    kept: list[Term] = []
    for h1, w1 in items:
        for k, (h2, w2) in enumerate(kept):
            if _inside(h1, h2, image.h) and _inside(w1, w2, image.w):
                break
            if h1 == h2:
                kept[k] = (h2, tuple(a | b for a, b in zip(w1, w2)))
                break
            if w1 == w2:
                kept[k] = (tuple(a | b for a, b in zip(h1, h2)), w2)
                break
        else:
            kept.append((h1, w1))
    if len(kept) > 1 and len(kept) < len(items):
        return grid(image, hu, wu, kept)  # a join may now hold another kept term
    return Grid(image, hu, wu, tuple(kept))


def _width(term: Term, image: Image) -> int:
    return _packed(term[0], image.h).bit_count() * _packed(term[1], image.w).bit_count()


# -- the caches of one analysis -----------------------------------------------------------------------------------
class Memo:
    """The identity caches of one analysis (a spec's calculation, a module's inspection): packed axes, window
    steps and unions, keyed by the ``id`` of the tuples they hold (each entry keeps its tuple alive, so an id is
    not reused while the cache lives). :func:`memo` makes one for the length of an analysis; when it ends the
    caches go with it, so a long process (suggest, sweep, a notebook) does not keep every analysis's tuples."""

    def __init__(self) -> None:
        self.packed: dict[tuple[int, int], tuple[Rel, int]] = {}
        self.windows: dict[tuple[int, int, int, int, int, int], tuple[Rel, Rel]] = {}
        self.unions: dict[tuple[int, ...], tuple[tuple[Reach, ...], Reach]] = {}


_MEMO: ContextVar[Memo | None] = ContextVar("rfcalc_reach_memo", default=None)


@contextmanager
def memo() -> Iterator[Memo]:
    """The caches of the analysis this block runs (the enclosing one's when it is inside one); outside any
    analysis the reach functions compute without caching."""
    current = _MEMO.get()
    if current is not None:
        yield current
        return
    fresh = Memo()
    token = _MEMO.set(fresh)
    try:
        yield fresh
    finally:
        _MEMO.reset(token)


def active_memo() -> Memo | None:
    """The caches of the analysis under way, or None."""
    return _MEMO.get()


def _packed(rel: Rel, slot: int) -> int:
    """One axis's bit sets side by side in one int (unit i at bits ``i·slot``, ``slot`` the image's size along
    that axis): a whole axis compared in one step. Cached by identity in the analysis's :class:`Memo` (hashing a
    long tuple of ints costs as much as packing it)."""
    cache = _MEMO.get()
    key = (id(rel), slot)
    hit = cache.packed.get(key) if cache is not None else None
    if hit is not None and hit[0] is rel:
        return hit[1]
    out = 0
    for bits in reversed(rel):
        out = (out << slot) | bits
    if cache is not None:
        if len(cache.packed) > 8192:
            cache.packed.clear()
        cache.packed[key] = (rel, out)
    return out


def _covers(big: Grid, small: Grid) -> bool:
    """Every term of ``small`` inside one of ``big`` (then their union is ``big``)."""
    image = big.image
    return all(any(_inside(h1, h2, image.h) and _inside(w1, w2, image.w) for h2, w2 in big.terms)
               for h1, w1 in small.terms)


def _inside(a: Rel, b: Rel, slot: int) -> bool:
    return a is b or _packed(a, slot) & ~_packed(b, slot) == 0


# -- window ops ----------------------------------------------------------------------------------------------
def _window_axis(rel: Rel, k: int, s: int, p: int, d: int, n_out: int) -> Rel:
    """One axis of a window op. Cached by the identity of ``rel`` in the analysis's :class:`Memo` (a chain of
    equal convs maps the same tuple again and again; hashing it would cost as much as the map)."""
    if k == 1 and s == 1 and p == 0 and n_out == len(rel):
        return rel  # a 1x1 conv, an element-wise step: the same units
    cache = _MEMO.get()
    key = (id(rel), k, s, p, d, n_out)
    hit = cache.windows.get(key) if cache is not None else None
    if hit is not None and hit[0] is rel:
        return hit[1]
    n = len(rel)
    out = []
    for u in range(n_out):
        acc, t = 0, u * s - p
        for _ in range(k):
            if 0 <= t < n:
                acc |= rel[t]
            t += d
        out.append(acc)
    result = tuple(out)
    if result == rel:
        result = rel  # the same object: later steps (and the caches) see one tuple
    if cache is not None:
        if len(cache.windows) > 8192:
            cache.windows.clear()
        cache.windows[key] = (rel, result)
    return result


def window(g: Grid, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           dilation: tuple[int, int], out_hw: tuple[int, int]) -> Grid:
    """A window op (conv, pool, gap): output unit ``u`` sees the input units ``u·s − p + j·d`` that exist."""
    terms = [(_window_axis(h, kernel[0], stride[0], padding[0], dilation[0], out_hw[0]),
              _window_axis(w, kernel[1], stride[1], padding[1], dilation[1], out_hw[1])) for h, w in g.terms]
    if all(a is h and b is w for (a, b), (h, w) in zip(terms, g.terms)):
        return g  # 1x1: the same reach (and its cached answers)
    if len(terms) == 1 and any(terms[0][0]) and any(terms[0][1]):
        return Grid(g.image, out_hw[0], out_hw[1], (terms[0],))  # a chain: nothing to normalise
    return grid(g.image, out_hw[0], out_hw[1], terms)


# -- questions -----------------------------------------------------------------------------------------------
def window_units(u: Units, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int], out_hw: tuple[int, int]) -> Units:
    """:func:`window` over explicit units (a map rebuilt from tokens that attention mixed): each output unit
    sees what the input units under its kernel see (positions in the padding see nothing)."""
    if len(u.dims) != 2:
        raise ValueError(f"a window over units of {len(u.dims)} axes; a kernel slides over 2")
    hu, wu = u.dims

    def taps(axis: int, out: int, size: int) -> list[int]:
        at = (out * stride[axis] - padding[axis] + a * dilation[axis] for a in range(kernel[axis]))
        return [i for i in at if 0 <= i < size]

    areas = tuple(join(*(u.areas[i * wu + j] for i in taps(0, oi, hu) for j in taps(1, oj, wu)))
                  for oi in range(out_hw[0]) for oj in range(out_hw[1]))
    return Units(u.image, out_hw, areas)


def coverage(r: Reach) -> Area:
    """Every pixel some unit sees."""
    if isinstance(r, Grid):
        return area((reduce(or_, h, 0), reduce(or_, w, 0)) for h, w in r.terms)
    return join(*r.areas)


def is_global(r: Reach) -> bool:
    """Whether every unit sees every pixel."""
    return r.everywhere


def _grid_global(r: Grid) -> bool:
    image, terms = r.image, r.terms
    if not terms:
        return False
    if len(terms) == 1:
        (h, w), = terms
        return h.count(image.full_h) == len(h) and w.count(image.full_w) == len(w)
    corners = {(0, 0), (0, r.wu - 1), (r.hu - 1, 0), (r.hu - 1, r.wu - 1)}
    if not all(is_full(unit_area(r, i, j), image) for i, j in corners):
        return False
    # unit (i, j) is full when every pattern of terms holding some pixel row at unit row i covers all columns
    # at unit column j: group unit rows by their patterns and unit columns by the patterns they cover
    n = len(terms)
    row_patterns = []
    for i in range(r.hu):
        found = set()
        for chosen in product((False, True), repeat=n):
            mask = image.full_h
            for (h, _), inside in zip(terms, chosen):
                mask &= h[i] if inside else ~h[i]
            if mask:
                found.add(chosen)
        row_patterns.append(frozenset(found))
    needed = frozenset().union(*row_patterns)
    col_ok = []
    for j in range(r.wu):
        col_ok.append(frozenset(c for c in needed
                                if reduce(or_, (w[j] for (_, w), inside in zip(terms, c) if inside), 0)
                                == image.full_w))
    return all(p <= q for p in set(row_patterns) for q in set(col_ok))


def unit_area(r: Reach, *index: int) -> Area:
    """The area of one unit (grid: ``(i, j)``; units: one index per axis)."""
    if isinstance(r, Grid):
        i, j = index
        return area((h[i], w[j]) for h, w in r.terms)
    return r.areas[_flat(r.dims, index)]


def partial_unit(r: Reach) -> tuple[int, ...] | None:
    """A unit that does not see every pixel (corners first), or None when ``r`` is global."""
    if is_global(r):
        return None
    if isinstance(r, Grid):
        candidates = [(0, 0), (r.hu - 1, r.wu - 1), (0, r.wu - 1), (r.hu - 1, 0)]
        candidates += [(i, j) for i in range(r.hu) for j in range(r.wu)]
        return next(u for u in candidates if not is_full(unit_area(r, *u), r.image))
    flat = next(k for k, a in enumerate(r.areas) if not is_full(a, r.image))
    index = []
    for size in reversed(r.dims):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _flat(dims: Sequence[int], index: Sequence[int]) -> int:
    flat = 0
    for size, i in zip(dims, index):
        flat = flat * size + i
    return flat


def unit_count(r: Reach) -> int:
    n = 1
    for size in r.dims:
        n *= size
    return n


# -- combining -----------------------------------------------------------------------------------------------
def collapse(r: Reach) -> Grid:
    """One unit that sees everything any unit of ``r`` sees (a linear layer on a vector, attention's output)."""
    return single(coverage(r), r.image)


def is_single(r: Reach) -> bool:
    return unit_count(r) == 1


def as_units(r: Reach) -> Units:
    """The explicit form (grids are enumerated row-major)."""
    if isinstance(r, Units):
        return r
    return Units(r.image, r.dims, tuple(unit_area(r, i, j) for i in range(r.hu) for j in range(r.wu)))


def union(reaches: Sequence[Reach]) -> Reach:
    """Unit by unit, the union of reaches over the same units; a single unit is seen by every unit.

    A densenet block concatenates every earlier layer's output, each time one more: the union of all but the
    last input is looked up (by identity, in the analysis's :class:`Memo`) from the concatenation before, so each
    costs one two-way union."""
    cache = _MEMO.get()
    if len(reaches) > 2 and cache is not None:
        key = tuple(id(r) for r in reaches[:-1])
        hit = cache.unions.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], reaches[:-1])):
            return _union([hit[1], reaches[-1]])
    joined = _union(reaches)
    if len(reaches) > 1 and cache is not None:
        if len(cache.unions) > 1024:
            cache.unions.clear()
        cache.unions[tuple(id(r) for r in reaches)] = (tuple(reaches), joined)
    return joined


def _union(reaches: Sequence[Reach]) -> Reach:
    shaped = [r for r in reaches if not is_single(r)]
    if not shaped:
        return single(join(*(coverage(r) for r in reaches)), reaches[0].image)
    dims = shaped[0].dims
    if any(r.dims != dims for r in shaped):
        raise ValueError(f"union of reaches over different units {[r.dims for r in shaped]}")
    broadcast = join(*(coverage(r) for r in reaches if is_single(r)))
    if len(shaped) == 2 and not broadcast and isinstance(shaped[0], Grid) and isinstance(shaped[1], Grid):
        a, b = shaped[0], shaped[1]
        if _covers(b, a):
            return b
        if _covers(a, b):
            return a
    if all(isinstance(r, Grid) for r in shaped):
        image, hu, wu = shaped[0].image, dims[0], dims[1]
        terms = [t for r in shaped for t in r.terms]  # type: ignore[union-attr]
        terms += [((rows,) * hu, (cols,) * wu) for rows, cols in broadcast]
        return grid(image, hu, wu, terms)
    explicit = [as_units(r) for r in shaped]
    return Units(explicit[0].image, dims,
                 tuple(join(broadcast, *(u.areas[k] for u in explicit)) for k in range(len(explicit[0].areas))))


def spread(a: Area, image: Image, dims: tuple[int, ...]) -> Reach:
    """Units over ``dims`` that all see area ``a``."""
    if len(dims) == 2:
        return grid(image, dims[0], dims[1], (((rows,) * dims[0], (cols,) * dims[1]) for rows, cols in a))
    n = 1
    for size in dims:
        n *= size
    return Units(image, dims, (a,) * n)


def reduce_axes(r: Reach, axes: Sequence[int]) -> Reach:
    """Units that see the union over unit axes ``axes`` (those axes are gone): a mean over tokens, the key
    axis of attention scores after softmax."""
    keep = [a for a in range(len(r.dims)) if a not in axes]
    if not keep:
        return collapse(r)
    if isinstance(r, Grid):
        (axis,) = axes
        if axis == 0:
            return Units(r.image, (r.wu,), tuple(area((reduce(or_, h, 0), w[j]) for h, w in r.terms)
                                                 for j in range(r.wu)))
        return Units(r.image, (r.hu,), tuple(area((h[i], reduce(or_, w, 0)) for h, w in r.terms)
                                             for i in range(r.hu)))
    dims = tuple(r.dims[a] for a in keep)
    out: dict[tuple[int, ...], list[Area]] = {}
    for index in product(*(range(size) for size in r.dims)):
        out.setdefault(tuple(index[a] for a in keep), []).append(r.areas[_flat(r.dims, index)])
    return Units(r.image, dims, tuple(join(*out[key]) for key in product(*(range(s) for s in dims))))


def mix(r: Reach, axes: Sequence[int]) -> Reach:
    """Every unit sees the union over unit axes ``axes`` (which stay): a softmax along tokens."""
    if len(axes) == len(r.dims):
        return spread(coverage(r), r.image, r.dims)
    u = as_units(r)
    keep = [a for a in range(len(u.dims)) if a not in axes]
    joined: dict[tuple[int, ...], Area] = {}
    indices = list(product(*(range(size) for size in u.dims)))
    for index in indices:
        key = tuple(index[a] for a in keep)
        joined[key] = join(joined.get(key, EMPTY), u.areas[_flat(u.dims, index)])
    return Units(u.image, u.dims, tuple(joined[tuple(index[a] for a in keep)] for index in indices))


def sequence(parts: Sequence[tuple[Reach | None, int]], image: Image) -> Units:
    """Units in a row from several reaches (a token concat): each part's units, enumerated row-major, or
    ``count`` units that see nothing where the part is None (a class token)."""
    areas: list[Area] = []
    for r, count in parts:
        areas.extend(as_units(r).areas if r is not None else (EMPTY,) * count)
    return Units(image, (len(areas),), tuple(areas))


def outer(a: Reach, b: Reach) -> Units:
    """Pairs: unit ``(i, j)`` sees unit ``i`` of ``a`` and unit ``j`` of ``b`` (attention scores q·kᵀ)."""
    ua, ub = as_units(a), as_units(b)
    dims = (() if is_single(a) else ua.dims) + (() if is_single(b) else ub.dims)
    return Units(ua.image, dims, tuple(join(x, y) for x in ua.areas for y in ub.areas))


def permute(r: Reach, order: Sequence[int]) -> Reach:
    """The same units with their axes reordered (``order[k]`` is the old axis now at position k)."""
    if list(order) == list(range(len(r.dims))):
        return r
    u = as_units(r)
    dims = tuple(u.dims[a] for a in order)
    areas = []
    for index in product(*(range(size) for size in dims)):
        old = [0] * len(order)
        for k, a in enumerate(order):
            old[a] = index[k]
        areas.append(u.areas[_flat(u.dims, old)])
    return Units(u.image, dims, tuple(areas))
