"""Candidate generation: for each failing rule, only the edits that move its quantity the right way.

Candidates come as :class:`Ladder` objects: the values of one edit kind at one layer, ordered from the smallest
change to the largest. The search climbs a ladder only until a value passes (a larger one is a larger change),
and bisects a monotone ladder (RF against dilation, params against width) instead of trying every rung.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rfcalc.spec.source import Key
from rfcalc.suggest import kinds
from rfcalc.suggest.apply import get
from rfcalc.suggest.edits import Edit, EditKind
from rfcalc.suggest.goals import Direction, Goal
from rfcalc.suggest.sites import Site, SpecSites, fresh_name, row_site, scalar

MAX_DILATION = 16       # dilations tried up to this
MAX_KERNEL = 11         # odd kernel sizes tried up to this
MAX_STRIDE = 3
MAX_WIDTH_FACTOR = 4    # widths tried up to 4x the current one (+8)
VECTOR_OPS = ("gap", "flatten", "linear", "ultimus")   # after these, a list holds vectors: no conv can go there
KIND_ORDER = (EditKind.DILATION, EditKind.PADDING, EditKind.STRIDE, EditKind.KERNEL, EditKind.WIDTH,
              EditKind.SEPARABLE, EditKind.DEPTHWISE, EditKind.REPLACE, EditKind.REMOVE, EditKind.INSERT)


@dataclass(frozen=True)
class Ladder:
    """One edit kind at one place, ``values`` ordered by growing change; ``make`` builds the edit of a value
    (None where it does not apply). ``monotone``: the goal's quantity moves one way along the values, so the
    first value that passes can be found by bisection."""

    goal: Goal
    kind: EditKind
    site: Key
    values: tuple[Any, ...]
    make: Callable[[Any], Edit | None]
    monotone: bool = False


def _up(start: int, stop: int, step: int = 1) -> tuple[int, ...]:
    return tuple(range(start + step, stop + 1, step))


def _down(start: int, stop: int = 1, step: int = 1) -> tuple[int, ...]:
    return tuple(range(start - step, stop - 1, -step))


def _width_step(site: Site) -> int:
    """Widths must stay multiples of GroupNorm's groups and of an int ``groups``."""
    step = 1
    groups = site.value("groups")
    if type(groups) is int and groups > 1:
        step = groups
    if site.value("norm") == "gn" and type(site.value("norm_groups")) is int:
        ng = site.value("norm_groups")
        step = step * ng // _gcd(step, ng)
    return step


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class Generator:
    """Ladders for the goals of one state of the search (one spec, possibly already edited)."""

    def __init__(self, sites: SpecSites, row_keys: Mapping[str, Key]) -> None:
        self.sites = sites
        self.row_keys = row_keys
        self.by_key = {s.key: s for s in sites.sites}

    # -- goals -> ladders ----------------------------------------------------------------------------------
    def ladders(self, goal: Goal) -> list[Ladder]:
        """Every ladder for ``goal``, the kinds that tend to cost least first (a search that finds enough fixes
        of the least possible change stops early)."""
        if goal.direction in (Direction.UP, Direction.DOWN):
            found = list(self._quantity(goal))
        elif goal.direction is Direction.ADD:
            found = list(self._add(goal))
        else:
            found = list(self._remove(goal))
        return sorted(found, key=lambda ladder: (KIND_ORDER.index(ladder.kind), not ladder.monotone))

    def _quantity(self, goal: Goal) -> Iterator[Ladder]:
        up = goal.direction is Direction.UP
        convs = [s for s in self.sites.sites if s.op == "conv"]
        uses = [s for s in self.sites.sites if s.use]
        if goal.quantity == "rf":
            for site in convs:
                yield from self._geometry(goal, site, up, strides=True)
            yield from self._use_params(goal, uses, ("dilation", "k", "padding", "stride"), up)
            if up:
                yield from self._inserts(goal, dilated=True)
            else:
                yield from self._removals(goal)
            return
        # params or macs
        for site in convs + [s for s in self.sites.sites if s.op == "linear"]:
            yield from self._width(goal, site, up)
        yield from self._use_params(goal, uses, ("out",), up)
        for site in convs:
            edit = kinds.separable(site, on=not up)
            if edit is not None:
                yield Ladder(goal, EditKind.SEPARABLE, site.key, (not up,), lambda on, s=site: kinds.separable(s, on))
            edit = kinds.depthwise(site, on=not up)
            if edit is not None:
                yield Ladder(goal, EditKind.DEPTHWISE, site.key, (not up,), lambda on, s=site: kinds.depthwise(s, on))
            k = scalar(site.value("k"))
            if k is not None:
                values = _up(k, MAX_KERNEL, 2) if up else _down(k, 1, 2)
                yield Ladder(goal, EditKind.KERNEL, site.key, values, lambda v, s=site: kinds.kernel(s, v), True)
            if goal.quantity == "macs":
                yield from self._stride_and_padding(goal, site, shrink=not up)
        if goal.quantity == "macs":
            yield from self._use_params(goal, uses, ("stride",), not up)
        if not up:
            yield from self._removals(goal)

    def _geometry(self, goal: Goal, site: Site, up: bool, strides: bool) -> Iterator[Ladder]:
        d, k = scalar(site.value("dilation")), scalar(site.value("k"))
        if d is not None:
            values = _up(d, MAX_DILATION) if up else _down(d)
            yield Ladder(goal, EditKind.DILATION, site.key, values, lambda v, s=site: kinds.dilation(s, v, True), True)
            yield Ladder(goal, EditKind.DILATION, site.key, values, lambda v, s=site: kinds.dilation(s, v, False))
        if k is not None:
            values = _up(k, MAX_KERNEL, 2) if up else _down(k, 1, 2)
            yield Ladder(goal, EditKind.KERNEL, site.key, values, lambda v, s=site: kinds.kernel(s, v), True)
        p = scalar(site.value("padding")) if site.value("padding") != "valid" else 0
        if p is not None and d is not None and k is not None:
            values = _up(p, max(p, d * (k - 1))) if up else _down(p, 0)
            yield Ladder(goal, EditKind.PADDING, site.key, values, lambda v, s=site: kinds.padding(s, v), True)
        s0 = scalar(site.value("stride"))
        if strides and s0 is not None:
            values = _up(s0, MAX_STRIDE) if up else _down(s0)
            yield Ladder(goal, EditKind.STRIDE, site.key, values, lambda v, s=site: kinds.stride(s, v))

    def _stride_and_padding(self, goal: Goal, site: Site, shrink: bool) -> Iterator[Ladder]:
        """Smaller maps (fewer MACs): a larger stride or less padding; larger maps the other way."""
        s0 = scalar(site.value("stride"))
        if s0 is not None:
            values = _up(s0, MAX_STRIDE) if shrink else _down(s0)
            yield Ladder(goal, EditKind.STRIDE, site.key, values, lambda v, s=site: kinds.stride(s, v))
        p = scalar(site.value("padding")) if site.value("padding") != "valid" else 0
        d, k = scalar(site.value("dilation")), scalar(site.value("k"))
        if p is not None and d is not None and k is not None:
            values = _down(p, 0) if shrink else _up(p, max(p, d * (k - 1)))
            yield Ladder(goal, EditKind.PADDING, site.key, values, lambda v, s=site: kinds.padding(s, v), True)

    def _width(self, goal: Goal, site: Site, up: bool) -> Iterator[Ladder]:
        out = scalar(site.value("out"))
        if out is None or site.value("groups") == "depthwise":
            return
        step = _width_step(site)
        if out % step:
            return
        values = _up(out, MAX_WIDTH_FACTOR * out + 8, step) if up else _down(out, step, step)
        yield Ladder(goal, EditKind.WIDTH, site.key, values, lambda v, s=site: kinds.width(s, v), True)

    def _use_params(self, goal: Goal, uses: list[Site], fields: tuple[str, ...], up: bool) -> Iterator[Ladder]:
        for site in uses:
            for param in self.sites.block_params(str(site.use)):
                if param.field not in fields:
                    continue
                current = scalar(site.layer.get(param.name, param.default))
                if current is None:
                    continue
                if param.field == "out":
                    values = _up(current, MAX_WIDTH_FACTOR * current + 8) if up else _down(current)
                elif param.field == "padding":
                    values = _up(current, current + 8) if up else _down(current, 0)
                elif param.field == "k":
                    values = _up(current, MAX_KERNEL, 2) if up else _down(current, 1, 2)
                else:
                    limit = MAX_STRIDE if param.field == "stride" else MAX_DILATION
                    values = _up(current, limit) if up else _down(current)
                yield Ladder(goal, kinds.PARAM_KINDS[param.field], site.key, values,
                             lambda v, s=site, p=param: kinds.use_param(s, p, v), param.field in ("out", "dilation"))

    def _inserts(self, goal: Goal, dilated: bool, depthwise_only: bool = False) -> Iterator[Ladder]:
        """A 3x3 conv (depthwise, and plain) with padding = dilation (the size stays) at every place of every
        list of layers that holds feature maps."""
        variants = (True,) if depthwise_only else (True, False)
        for sequence in self.sites.sequences:
            items = get(self.sites.data, sequence)
            stop = next((i for i, item in enumerate(items)
                         if isinstance(item, Mapping) and item.get("op") in VECTOR_OPS), len(items))
            for index in range(stop + 1):
                for dw in variants:
                    base = ("dilated_dw" if dw else "dilated_conv") if dilated else "dw"
                    name = fresh_name(base, self.sites.names)
                    values = _up(1, MAX_DILATION) if dilated else (1,)
                    yield Ladder(goal, EditKind.INSERT, sequence + (index,), values,
                                 lambda d, q=sequence, i=index, n=name, w=dw: kinds.insert(q, i, _new_conv(n, d, w)),
                                 dilated)

    def _removals(self, goal: Goal, only: set[Key] | None = None) -> Iterator[Ladder]:
        for site in self.sites.sites:
            if only is not None and site.key not in only:
                continue
            if site.op in ("parallel", "residual") and only is None:
                continue
            parent = get(self.sites.data, site.key[:-1])
            in_path = len(site.key) >= 3 and site.key[-3] == "paths"   # a parallel's path may be empty (identity)
            if len(parent) > 1 or in_path:
                yield Ladder(goal, EditKind.REMOVE, site.key, (None,), lambda _, s=site: kinds.remove(s))

    # -- features ------------------------------------------------------------------------------------------
    def _add(self, goal: Goal) -> Iterator[Ladder]:
        feature = goal.quantity
        convs = [s for s in self.sites.sites if s.op == "conv"]
        if feature == "dilated_conv":
            for site in convs:
                yield Ladder(goal, EditKind.DILATION, site.key, (2,), lambda v, s=site: kinds.dilation(s, v, True))
                yield Ladder(goal, EditKind.DILATION, site.key, (2,), lambda v, s=site: kinds.dilation(s, v, False))
            for site in (s for s in self.sites.sites if s.use):
                for param in self.sites.block_params(str(site.use)):
                    if param.field == "dilation":
                        yield Ladder(goal, EditKind.DILATION, site.key, (2,),
                                     lambda v, s=site, p=param: kinds.use_param(s, p, v))
            yield from self._single_inserts(goal, dilation=2)
        elif feature in ("depthwise_conv", "separable_conv"):
            for site in convs:
                yield Ladder(goal, EditKind.SEPARABLE, site.key, (True,), lambda on, s=site: kinds.separable(s, on))
                if feature == "depthwise_conv":
                    yield Ladder(goal, EditKind.DEPTHWISE, site.key, (True,),
                                 lambda on, s=site: kinds.depthwise(s, on))
            if feature == "depthwise_conv":
                yield from self._single_inserts(goal, dilation=1)
        elif feature == "strided_conv":
            for site in convs:
                yield Ladder(goal, EditKind.STRIDE, site.key, (2,), lambda v, s=site: kinds.stride(s, v))
            for site in (s for s in self.sites.sites if s.op in ("maxpool", "avgpool")):
                yield from self._pool_to_conv(goal, site)
        elif feature == "gap":
            for site in (s for s in self.sites.sites if s.op == "flatten"):
                yield Ladder(goal, EditKind.REPLACE, site.key, ("gap",), lambda op, s=site: kinds.replace_op(s, op))

    def _single_inserts(self, goal: Goal, dilation: int) -> Iterator[Ladder]:
        for ladder in self._inserts(goal, dilated=dilation > 1, depthwise_only=True):
            yield Ladder(goal, ladder.kind, ladder.site, (dilation,), ladder.make)

    def _pool_to_conv(self, goal: Goal, site: Site) -> Iterator[Ladder]:
        yield Ladder(goal, EditKind.REPLACE, site.key, (None,), lambda _, s=site: kinds.pool_to_conv(s))
        yield Ladder(goal, EditKind.REPLACE, site.key, (None,), lambda _, s=site: kinds.pool_to_conv(s, 3, 2, 1))

    def _remove(self, goal: Goal) -> Iterator[Ladder]:
        feature = goal.quantity
        keys = {k for k in (row_site(r, self.row_keys) for r in goal.offenders) if k is not None}
        offenders = [self.by_key[k] for k in sorted(keys, key=_order) if k in self.by_key]
        for site in offenders:
            if feature in ("maxpool", "avgpool") and site.op in ("maxpool", "avgpool"):
                other = "avgpool" if site.op == "maxpool" else "maxpool"
                yield Ladder(goal, EditKind.REPLACE, site.key, (other,), lambda op, s=site: kinds.replace_op(s, op))
                yield from self._pool_to_conv(goal, site)
            elif feature == "dilated_conv" and site.op == "conv":
                yield Ladder(goal, EditKind.DILATION, site.key, (1,), lambda v, s=site: kinds.dilation(s, v, True))
                yield Ladder(goal, EditKind.DILATION, site.key, (1,), lambda v, s=site: kinds.dilation(s, v, False))
            elif feature == "strided_conv" and site.op == "conv":
                yield Ladder(goal, EditKind.STRIDE, site.key, (1,), lambda v, s=site: kinds.stride(s, v))
            elif feature in ("depthwise_conv", "separable_conv") and site.op == "conv":
                yield Ladder(goal, EditKind.SEPARABLE, site.key, (False,), lambda on, s=site: kinds.separable(s, on))
                yield Ladder(goal, EditKind.DEPTHWISE, site.key, (False,), lambda on, s=site: kinds.depthwise(s, on))
        yield from self._removals(goal, only={s.key for s in offenders})


def _new_conv(name: str, dilation: int, depthwise: bool) -> dict[str, Any]:
    layer: dict[str, Any] = {"op": "conv", "name": name}
    if depthwise:
        layer["groups"] = "depthwise"
    layer.update(k=3, padding=dilation)
    if dilation != 1:
        layer["dilation"] = dilation
    return layer


def _order(key: Key) -> tuple[str, ...]:
    return tuple(f"{p:08d}" if isinstance(p, int) else str(p) for p in key)
