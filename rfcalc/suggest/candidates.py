"""Candidate generation: for each failing rule, only the edits that move its quantity the right way.

Candidates come as :class:`Ladder` objects: the values of one edit kind at one layer, ordered from the smallest
change to the largest. The search climbs a ladder only until a value passes (a larger one is a larger change),
and bisects a monotone ladder (RF against dilation, params against width) instead of trying every rung.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import rfcalc.suggest.kinds as kinds
from rfcalc.quantities import BOUNDED, Lever, Quantity
from rfcalc.spec.source import Key
from rfcalc.suggest.apply import get
from rfcalc.suggest.edits import Edit, EditKind, starves
from rfcalc.suggest.goals import Direction, Goal
from rfcalc.suggest.sites import Site, SpecSites, fresh_name, row_site, scalar
from rfcalc.table.report import Report

MAX_DILATION = 16       # dilations tried up to this
MAX_KERNEL = 11         # odd kernel sizes tried up to this
MAX_STRIDE = 3
MAX_WIDTH_FACTOR = 4    # widths tried up to 4x the current one (+8)
WIDTH_QUANTUM = 8       # widths a designer writes: multiples of 8 (powers of two below it for narrow layers)
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
    gaps: bool = False     # values in between may be invalid (a width a later group rejects, an even kernel
                           # with `padding: same`): an invalid value does not end the ladder


def _up(start: int, stop: int, step: int = 1) -> tuple[int, ...]:
    return tuple(range(start + step, stop + 1, step))


def _down(start: int, stop: int = 1, step: int = 1) -> tuple[int, ...]:
    return tuple(range(start - step, stop - 1, -step))


def sensible_width(value: int, step: int) -> bool:
    """A width a designer would write: a multiple of 8 (or 1, 2, 4 for a narrow layer) that the layer's groups
    divide (``step``: see :func:`_width_step`; a depthwise conv's input channels)."""
    return value % step == 0 and (value % WIDTH_QUANTUM == 0 or value in (1, 2, 4))


def width_floor(out: int, in_channels: int) -> int:
    """The narrowest a layer ``out`` wide is cut to: half its width, and its input channels when it expands
    them (an expansion does not become a bottleneck)."""
    return max(math.ceil(out / 2), in_channels if out > in_channels else 1)


def width_values(out: int, step: int, in_channels: int, up: bool) -> tuple[int, ...]:
    """The widths tried from ``out``, nearest first: sensible ones up to 4x (+8), or down to the floor."""
    if up:
        candidates = range(out + 1, MAX_WIDTH_FACTOR * out + 8 + 1)
    else:
        candidates = range(out - 1, width_floor(out, in_channels) - 1, -1)
    return tuple(v for v in candidates if sensible_width(v, step))


def fits(extent: int, size: tuple[int, ...] | None) -> bool:
    """Whether a window ``extent`` pixels wide (``dilation * (k - 1) + 1``) fits a map of ``size`` (h, w)."""
    return size is None or extent <= min(size)


def _width_step(site: Site) -> int:
    """Widths must stay multiples of GroupNorm's groups and of an int ``groups``."""
    step = 1
    groups = site.value("groups")
    if type(groups) is int and groups > 1:
        step = groups
    if site.value("norm") == "gn" and type(site.value("norm_groups")) is int:
        step = math.lcm(step, site.value("norm_groups"))
    return step


class Generator:
    """Ladders for the goals of one state of the search (one spec, possibly already edited)."""

    def __init__(self, sites: SpecSites, row_keys: Mapping[str, Key], report: Report) -> None:
        self.sites = sites
        self.row_keys = row_keys
        self.by_key = {s.key: s for s in sites.sites}
        self.in_channels: dict[Key, int] = {}    # a conv or linear layer's input channels (its first row's)
        self.maps: dict[Key, tuple[tuple[int, ...], tuple[int, ...]]] = {}   # a layer's maps in, out (h, w)
        for row in report.rows:
            key = row_site(row.name, row_keys)
            if key is not None and row.in_shape is not None and len(row.in_shape) == 3 and row.is_feature_map:
                first = self.maps.get(key, (row.in_shape[1:], row.out_shape[1:]))[0]
                self.maps[key] = (first, row.out_shape[1:])
            if row.op in ("conv", "linear") and key is not None and row.in_shape is not None:
                self.in_channels.setdefault(key, row.in_shape[0])

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
        found = [ladder for ladder in found if ladder.values]
        return sorted(found, key=lambda ladder: (KIND_ORDER.index(ladder.kind), not ladder.monotone))

    def _quantity(self, goal: Goal) -> Iterator[Ladder]:
        """The edits that push the goal's quantity its way, by the registry's lever (rfcalc.quantities.Lever)."""
        quantity = BOUNDED[goal.quantity]
        levers = {Lever.GEOMETRY: self._window, Lever.COST: self._cost}
        yield from levers[quantity.lever](goal, quantity)

    def _window(self, goal: Goal, quantity: Quantity) -> Iterator[Ladder]:
        """A window (RF): dilations, kernels, paddings, strides; an inserted dilated conv, or a removed layer."""
        up = goal.direction is Direction.UP
        for site in (s for s in self.sites.sites if s.op == "conv"):
            yield from self._geometry(goal, site, up)
        yield from self._use_params(goal, [s for s in self.sites.sites if s.use],
                                    ("dilation", "k", "padding", "stride"), up)
        if up:
            yield from self._inserts(goal, dilated=True)
        else:
            yield from self._removals(goal)

    def _cost(self, goal: Goal, quantity: Quantity) -> Iterator[Ladder]:
        """A count (params, MACs): widths, separable and depthwise convs, kernels, removed layers; map sizes where
        they move it (a spatial quantity, or any quantity through a flatten: its linear's inputs)."""
        up = goal.direction is Direction.UP
        convs = [s for s in self.sites.sites if s.op == "conv"]
        uses = [s for s in self.sites.sites if s.use]
        spatial = quantity.spatial or any(s.op == "flatten" for s in self.sites.sites)
        for site in convs + [s for s in self.sites.sites if s.op == "linear"]:
            yield from self._width(goal, site, up)
        yield from self._use_params(goal, uses, ("out",), up)
        for site in convs:   # both ways: a separable 1x1 conv has more parameters than a plain one
            for on in (not up, up):
                if kinds.separable(site, on) is not None:
                    yield Ladder(goal, EditKind.SEPARABLE, site.key, (on,), partial(kinds.separable, site))
                if kinds.depthwise(site, on) is not None:
                    yield Ladder(goal, EditKind.DEPTHWISE, site.key, (on,), partial(kinds.depthwise, site))
            k = scalar(site.value("k"))
            if k is not None:
                values = self._kernels(site, _up(k, MAX_KERNEL) if up else _down(k))
                yield Ladder(goal, EditKind.KERNEL, site.key, values, partial(kinds.kernel, site), True, True)
            if spatial:
                yield from self._stride_and_padding(goal, site, shrink=not up)
        if spatial:
            yield from self._use_params(goal, uses, ("stride",), not up)
            for site in (s for s in self.sites.sites if s.op in ("maxpool", "avgpool")):
                yield from self._pool_to_conv(goal, site)   # a conv rounds down where a ceil_mode pool rounds up
            if not up:
                for site in (s for s in self.sites.sites if s.op == "flatten"):
                    yield Ladder(goal, EditKind.REPLACE, site.key, ("gap",), partial(kinds.replace_op, site))
        if not up:
            yield from self._removals(goal)

    def _geometry(self, goal: Goal, site: Site, up: bool) -> Iterator[Ladder]:
        """RF: a larger dilation, kernel, padding (a larger map for gap to pool) or stride; or smaller ones."""
        d, k = scalar(site.value("dilation")), scalar(site.value("k"))
        if d is not None:
            values = self._dilations(site, _up(d, MAX_DILATION) if up else _down(d))
            yield Ladder(goal, EditKind.DILATION, site.key, values, partial(kinds.dilation, site, keep_size=True),
                         True, True)
            yield Ladder(goal, EditKind.DILATION, site.key, values, partial(kinds.dilation, site, keep_size=False))
        if k is not None:
            values = self._kernels(site, _up(k, MAX_KERNEL) if up else _down(k))
            yield Ladder(goal, EditKind.KERNEL, site.key, values, partial(kinds.kernel, site), True, True)
        p = scalar(site.value("padding")) if site.value("padding") != "valid" else 0
        if p is not None and d is not None and k is not None:
            values = _up(p, max(p, d * (k - 1))) if up else _down(p, 0)
            yield Ladder(goal, EditKind.PADDING, site.key, values, partial(kinds.padding, site), True)
        s0 = scalar(site.value("stride"))
        if s0 is not None:
            values = _up(s0, MAX_STRIDE) if up else _down(s0)
            yield Ladder(goal, EditKind.STRIDE, site.key, values, partial(kinds.stride, site))

    def _stride_and_padding(self, goal: Goal, site: Site, shrink: bool) -> Iterator[Ladder]:
        """Smaller maps (fewer MACs): a larger stride, less padding, a dilation that widens the kernel without
        the padding to match; larger maps the other way."""
        d = scalar(site.value("dilation"))
        if d is not None:   # maps shrink step by step (with plateaus where a stride rounds down): monotone
            values = self._dilations(site, _up(d, MAX_DILATION) if shrink else _down(d))
            yield Ladder(goal, EditKind.DILATION, site.key, values, partial(kinds.dilation, site, keep_size=False),
                         True)
        s0 = scalar(site.value("stride"))
        if s0 is not None:
            values = _up(s0, MAX_STRIDE) if shrink else _down(s0)
            yield Ladder(goal, EditKind.STRIDE, site.key, values, partial(kinds.stride, site), True)
        p = scalar(site.value("padding")) if site.value("padding") != "valid" else 0
        d, k = scalar(site.value("dilation")), scalar(site.value("k"))
        if p is not None and d is not None and k is not None:
            values = _down(p, 0) if shrink else _up(p, max(p, d * (k - 1)))
            yield Ladder(goal, EditKind.PADDING, site.key, values, partial(kinds.padding, site), True)

    def _width(self, goal: Goal, site: Site, up: bool) -> Iterator[Ladder]:
        out = scalar(site.value("out"))
        if out is None:
            return
        step = _width_step(site)
        if site.value("groups") == "depthwise":   # out: a multiple of the input channels
            step = self.in_channels.get(site.key, 0)
        if not step or out % step:
            return
        yield from _width_ladders(goal, site.key, out, width_values(out, step, self.in_channels.get(site.key, 0), up),
                                  partial(kinds.width, site))

    def _in_map(self, site: Site) -> tuple[int, ...] | None:
        return self.maps[site.key][0] if site.key in self.maps else None

    def _dilations(self, site: Site, values: tuple[int, ...]) -> tuple[int, ...]:
        """The dilations whose window fits the conv's input map (a window wider than the map sees padding)."""
        k = scalar(site.value("k"))
        return values if k is None else tuple(d for d in values if fits(d * (k - 1) + 1, self._in_map(site)))

    def _kernels(self, site: Site, values: tuple[int, ...]) -> tuple[int, ...]:
        """The kernel sizes whose window fits the conv's input map."""
        d = scalar(site.value("dilation"))
        return values if d is None else tuple(k for k in values if fits(d * (k - 1) + 1, self._in_map(site)))

    def _use_params(self, goal: Goal, uses: list[Site], fields: tuple[str, ...], up: bool) -> Iterator[Ladder]:
        for site in uses:
            for param in self.sites.block_params(str(site.use)):
                if param.field not in fields:
                    continue
                current = scalar(site.layer.get(param.name, param.default))
                if current is None:
                    continue
                if param.field == "out":
                    values = width_values(current, 1, self.in_channels.get(site.key, 0), up)
                    yield from _width_ladders(goal, site.key, current, values, partial(kinds.use_param, site, param))
                    continue
                if param.field == "padding":
                    values = _up(current, current + 8) if up else _down(current, 0)
                elif param.field == "k":
                    values = _up(current, MAX_KERNEL, 2) if up else _down(current, 1, 2)
                else:
                    limit = MAX_STRIDE if param.field == "stride" else MAX_DILATION
                    values = _up(current, limit) if up else _down(current)
                yield Ladder(goal, kinds.PARAM_KINDS[param.field], site.key, values,
                             partial(kinds.use_param, site, param), param.field == "dilation")

    def _inserts(self, goal: Goal, dilated: bool, depthwise_only: bool = False,
                 dilations: tuple[int, ...] = ()) -> Iterator[Ladder]:
        """A 3x3 conv (depthwise, and plain) with padding = dilation (the size stays) at every place of every
        list of layers that holds feature maps, after the first conv (never on the raw input), with the
        dilations whose window fits the map there (``dilations``: these only)."""
        variants = (True,) if depthwise_only else (True, False)
        for sequence in self.sites.sequences:
            items = get(self.sites.data, sequence)
            stop = next((i for i, item in enumerate(items)
                         if isinstance(item, Mapping) and item.get("op") in VECTOR_OPS), len(items))
            for index in range(stop + 1):
                if not self._after_a_conv(sequence, index):
                    continue
                size = self._map_at(sequence, index)
                values = tuple(d for d in (dilations or (_up(1, MAX_DILATION) if dilated else (1,)))
                               if fits(2 * d + 1, size))
                # On a map too small for any dilated 3x3, a plain 3x3 still widens the window by two steps.
                plain = dilated and not dilations and not values and fits(3, size)
                values = (1,) if plain else values
                for dw in variants:
                    base = ("dilated_dw" if dw else "dilated_conv") if dilated and not plain else \
                        ("dw" if dw or not plain else "conv3x3")
                    name = fresh_name(base, self.sites.names)
                    yield Ladder(goal, EditKind.INSERT, sequence + (index,), values,
                                 partial(_insert_conv, sequence, index, name, dw),
                                 dilated and not plain)

    def _map_at(self, sequence: Key, index: int) -> tuple[int, ...] | None:
        """The map (h, w) a layer inserted before ``index`` of the list at ``sequence`` gets, or a bound above it
        (in a block definition: the largest map a use of the block gets); None when not known."""
        items = get(self.sites.data, sequence)
        if index < len(items) and sequence + (index,) in self.maps:
            return self.maps[sequence + (index,)][0]
        if 0 < index and sequence + (index - 1,) in self.maps:
            return self.maps[sequence + (index - 1,)][1]
        if len(sequence) == 1:
            return None
        if sequence[0] == "blocks":
            sizes = [self._map_at(s.key[:-1], int(s.key[-1])) for s in self.sites.sites if s.use == sequence[1]]
            if not sizes or any(size is None for size in sizes):
                return None
            return tuple(max(size[axis] for size in sizes if size is not None) for axis in range(2))
        holder = sequence[:-2] if sequence[-2] == "paths" else sequence[:-1]
        return self.maps[holder][0] if holder in self.maps else None

    def _after_a_conv(self, sequence: Key, index: int) -> bool:
        """Whether a layer inserted before ``index`` of the list at ``sequence`` sees the output of a conv: one
        before it in that list, or before the layer that holds the list (a parallel's path, a residual's body
        or shortcut; for a block definition, before each of its uses)."""
        items = get(self.sites.data, sequence)
        if any(self._has_conv(item) for item in items[:index]):
            return True
        if len(sequence) == 1:   # the top-level list: the raw input comes first
            return False
        if sequence[0] == "blocks":
            uses = [s.key for s in self.sites.sites if s.use == sequence[1]]
            return bool(uses) and all(self._after_a_conv(use[:-1], int(use[-1])) for use in uses)
        holder = sequence[:-2] if sequence[-2] == "paths" else sequence[:-1]
        return len(holder) >= 2 and self._after_a_conv(holder[:-1], int(holder[-1]))

    def _has_conv(self, item: Any) -> bool:
        """Whether a layer as written is or holds a conv (a block's use: its definition's layers)."""
        if not isinstance(item, Mapping):
            return False
        if item.get("op") == "conv":
            return True
        paths = item.get("paths")
        nested = [*(paths if isinstance(paths, list) else []), item.get("body"), item.get("shortcut")]
        if isinstance(item.get("use"), str):
            definition = (self.sites.data.get("blocks") or {}).get(item["use"])
            nested.append(definition.get("layers") if isinstance(definition, Mapping) else None)
        return any(self._has_conv(layer) for layers in nested if isinstance(layers, list) for layer in layers)

    def _removals(self, goal: Goal, only: set[Key] | None = None) -> Iterator[Ladder]:
        for site in self.sites.sites:
            if only is not None and site.key not in only:
                continue
            if site.op in ("parallel", "residual") and only is None:
                continue
            parent = get(self.sites.data, site.key[:-1])
            in_path = len(site.key) >= 3 and site.key[-3] == "paths"   # a parallel's path may be empty (identity)
            if len(parent) > 1 or in_path:
                yield Ladder(goal, EditKind.REMOVE, site.key, (None,), partial(_ignore_value, kinds.remove, site))

    # -- features ------------------------------------------------------------------------------------------
    def _add(self, goal: Goal) -> Iterator[Ladder]:
        feature = goal.quantity
        convs = [s for s in self.sites.sites if s.op == "conv"]
        if feature == "dilated_conv":   # 2, or 3 where an even kernel needs an even change to keep the size
            for site in convs:
                yield Ladder(goal, EditKind.DILATION, site.key, (2, 3), partial(kinds.dilation, site, keep_size=True))
                yield Ladder(goal, EditKind.DILATION, site.key, (2,), partial(kinds.dilation, site, keep_size=False))
            for site in (s for s in self.sites.sites if s.use):
                for param in self.sites.block_params(str(site.use)):
                    if param.field == "dilation":
                        yield Ladder(goal, EditKind.DILATION, site.key, (2,),
                                     partial(kinds.use_param, site, param))
            yield from self._single_inserts(goal, dilation=2)
        elif feature in ("depthwise_conv", "separable_conv"):
            for site in convs:
                yield Ladder(goal, EditKind.SEPARABLE, site.key, (True,), partial(kinds.separable, site))
                if feature == "depthwise_conv":
                    yield Ladder(goal, EditKind.DEPTHWISE, site.key, (True,),
                                 partial(kinds.depthwise, site))
            if feature == "depthwise_conv":
                yield from self._single_inserts(goal, dilation=1)
                declared = any(s.value("groups") == "depthwise" or s.value("separable") is True for s in convs)
                if declared:   # a conv declared depthwise sees one channel: widen or drop what narrows it to one
                    for site in convs:
                        if scalar(site.value("out")) == 1:
                            yield Ladder(goal, EditKind.WIDTH, site.key, (2, 4),
                                         partial(kinds.width, site))
                    yield from self._removals(goal)
        elif feature == "strided_conv":
            for site in convs:
                yield Ladder(goal, EditKind.STRIDE, site.key, (2,), partial(kinds.stride, site))
            for site in (s for s in self.sites.sites if s.op in ("maxpool", "avgpool")):
                yield from self._pool_to_conv(goal, site)
        elif feature == "gap":
            for site in (s for s in self.sites.sites if s.op == "flatten"):
                yield Ladder(goal, EditKind.REPLACE, site.key, ("gap",), partial(kinds.replace_op, site))

    def _single_inserts(self, goal: Goal, dilation: int) -> Iterator[Ladder]:
        for ladder in self._inserts(goal, dilated=dilation > 1, depthwise_only=True, dilations=(dilation,)):
            yield Ladder(goal, ladder.kind, ladder.site, ladder.values, ladder.make)

    def _pool_to_conv(self, goal: Goal, site: Site) -> Iterator[Ladder]:
        yield Ladder(goal, EditKind.REPLACE, site.key, (None,), partial(_ignore_value, kinds.pool_to_conv, site))
        yield Ladder(goal, EditKind.REPLACE, site.key, (None,), partial(_ignore_value, _pool_to_3x3_conv, site))

    def _remove(self, goal: Goal) -> Iterator[Ladder]:
        feature = goal.quantity
        keys = {k for k in (row_site(r, self.row_keys) for r in goal.offenders) if k is not None}
        offenders = [self.by_key[k] for k in sorted(keys, key=_order) if k in self.by_key]
        for site in offenders:
            if feature in ("maxpool", "avgpool") and site.op in ("maxpool", "avgpool"):
                other = "avgpool" if site.op == "maxpool" else "maxpool"
                yield Ladder(goal, EditKind.REPLACE, site.key, (other,), partial(kinds.replace_op, site))
                yield from self._pool_to_conv(goal, site)
            elif feature == "dilated_conv" and site.op == "conv":
                yield Ladder(goal, EditKind.DILATION, site.key, (1,), partial(kinds.dilation, site, keep_size=True))
                yield Ladder(goal, EditKind.DILATION, site.key, (1,), partial(kinds.dilation, site, keep_size=False))
            elif feature == "strided_conv" and site.op == "conv":
                yield Ladder(goal, EditKind.STRIDE, site.key, (1,), partial(kinds.stride, site))
            elif feature in ("depthwise_conv", "separable_conv") and site.op == "conv":
                yield Ladder(goal, EditKind.SEPARABLE, site.key, (False,), partial(kinds.separable, site))
                yield Ladder(goal, EditKind.DEPTHWISE, site.key, (False,), partial(kinds.depthwise, site))
        yield from self._removals(goal, only={s.key for s in offenders})


def _width_ladders(goal: Goal, key: Key, out: int, values: tuple[int, ...],
                   make: Callable[[Any], Edit | None]) -> Iterator[Ladder]:
    """Widths as two ladders: the cuts that leave the layer three quarters of its width or more, then those that
    starve it (walked on their own, the first ladder yields its deepest cut as a partial fix even where a starving
    cut passes: the next level spreads the cut over another layer)."""
    for part in ((v for v in values if not starves(out, v)), (v for v in values if starves(out, v))):
        rungs = tuple(part)
        if rungs:
            yield Ladder(goal, EditKind.WIDTH, key, rungs, make, True, True)


def _ignore_value(make: Callable[[Site], Edit | None], site: Site, _value: Any) -> Edit | None:
    """For ladders of one rung whose edit takes no value (remove, pool to conv)."""
    return make(site)


def _pool_to_3x3_conv(site: Site) -> Edit | None:
    return kinds.pool_to_conv(site, 3, 2, 1)


def _insert_conv(sequence: Key, index: int, name: str, depthwise: bool, dilation: int) -> Edit:
    return kinds.insert(sequence, index, _new_conv(name, dilation, depthwise))


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
