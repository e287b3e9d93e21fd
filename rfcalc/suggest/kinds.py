"""One constructor per edit kind: a site (a layer as written) and a new value -> an :class:`Edit` with its
JSON-Patch changes, or None when the kind does not apply to that layer (a '$param' field, [h, w] that differ,
``padding: same`` where the edit would set it)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rfcalc.spec.source import Key
from rfcalc.suggest.edits import Change, Edit, EditKind, Op
from rfcalc.suggest.sites import Site, UseParam, scalar

# The field a block parameter feeds -> the kind of an edit of that parameter.
PARAM_KINDS: dict[str, EditKind] = {"dilation": EditKind.DILATION, "k": EditKind.KERNEL, "stride": EditKind.STRIDE,
                                    "padding": EditKind.PADDING, "out": EditKind.WIDTH}


def set_fields(site: Site, kind: EditKind, new: Mapping[str, Any], drop: tuple[str, ...] = ()) -> Edit | None:
    """Set fields of a layer (``replace`` when written, ``add`` when inherited) and remove ``drop``."""
    changes: list[Change] = []
    for name, value in new.items():
        key = site.key + (name,)
        if name in site.layer:
            if site.layer[name] != value:
                changes.append(Change(Op.REPLACE, key, value, site.layer[name]))
        else:
            inherited = site.value(name)
            if inherited != value and not (scalar(inherited) is not None and scalar(inherited) == value):
                changes.append(Change(Op.ADD, key, value, inherited))
    changes += [Change(Op.REMOVE, site.key + (name,), None, site.layer[name]) for name in drop if name in site.layer]
    return Edit(kind, site.key, site.label, tuple(changes)) if changes else None


def _padding(site: Site) -> int | str | None:
    """The padding in effect: an int, 'same', or None when an edit cannot reason about it."""
    value = site.value("padding")
    if value == "valid":
        return 0
    if value == "same":
        return "same"
    return scalar(value)


def dilation(site: Site, value: int, keep_size: bool) -> Edit | None:
    """Set the dilation; ``keep_size`` also moves the padding by half the change of the effective kernel."""
    k, d, p = scalar(site.value("k")), scalar(site.value("dilation")), _padding(site)
    if k is None or d is None or p is None or value == d or value < 1 or k == 1:
        return None   # a 1x1 conv's dilation changes nothing (it would only satisfy `dilated_conv` on paper)
    new: dict[str, Any] = {"dilation": value}
    if p == "same":
        return set_fields(site, EditKind.DILATION, new) if keep_size else None
    if keep_size:
        delta = (value - d) * (k - 1)
        if delta % 2 or int(p) + delta // 2 < 0:
            return None
        new["padding"] = int(p) + delta // 2
    return set_fields(site, EditKind.DILATION, new)


def kernel(site: Site, value: int) -> Edit | None:
    """Set the kernel size, moving the padding so that the output size stays."""
    k, d, p = scalar(site.value("k")), scalar(site.value("dilation")), _padding(site)
    if k is None or d is None or p is None or value == k or value < 1:
        return None
    new: dict[str, Any] = {"k": value}
    if p != "same":
        delta = d * (value - k)
        if delta % 2 or int(p) + delta // 2 < 0:
            return None
        new["padding"] = int(p) + delta // 2
    return set_fields(site, EditKind.KERNEL, new)


def padding(site: Site, value: int) -> Edit | None:
    p = _padding(site)
    if p is None or p == "same" or value == p or value < 0:
        return None
    return set_fields(site, EditKind.PADDING, {"padding": value})


def stride(site: Site, value: int) -> Edit | None:
    s = scalar(site.value("stride"))
    if s is None or value == s or value < 1:
        return None
    return set_fields(site, EditKind.STRIDE, {"stride": value})


def width(site: Site, value: int) -> Edit | None:
    out = scalar(site.value("out"))
    if out is None or value == out or value < 1:
        return None
    return set_fields(site, EditKind.WIDTH, {"out": value})


def separable(site: Site, on: bool) -> Edit | None:
    """Make a plain conv depthwise-separable (``on``), or a separable conv plain again."""
    is_on = site.value("separable") is True
    if on == is_on:
        return None
    if on:
        k = site.value("k")
        if site.value("groups") != 1 or scalar(k) == 1 or k is None or isinstance(k, str):
            return None
        return set_fields(site, EditKind.SEPARABLE, {"separable": True})
    if "separable" in site.layer:
        return set_fields(site, EditKind.SEPARABLE, {}, drop=("separable",))
    return set_fields(site, EditKind.SEPARABLE, {"separable": False})


def depthwise(site: Site, on: bool) -> Edit | None:
    """Make a conv depthwise (its output channels stay), or a depthwise conv dense again."""
    groups = site.value("groups")
    if on:
        if groups != 1 or site.value("separable") is True:
            return None
        return set_fields(site, EditKind.DEPTHWISE, {"groups": "depthwise"})
    if groups != "depthwise":
        return None
    if "groups" in site.layer:
        return set_fields(site, EditKind.DEPTHWISE, {}, drop=("groups",))
    return set_fields(site, EditKind.DEPTHWISE, {"groups": 1})


def use_param(site: Site, param: UseParam, value: Any) -> Edit | None:
    """Set a block parameter at a use site (``layers[2].out``)."""
    current = site.layer.get(param.name, param.default)
    if current == value or param.field not in PARAM_KINDS:
        return None
    key = site.key + (param.name,)
    change = (Change(Op.REPLACE, key, value, current) if param.name in site.layer
              else Change(Op.ADD, key, value, current))
    return Edit(PARAM_KINDS[param.field], site.key, site.label, (change,))


def insert(sequence: Key, index: int, layer: dict[str, Any]) -> Edit:
    """A new layer before ``index`` of a list of layers (at its end when ``index`` is its length)."""
    key = sequence + (index,)
    return Edit(EditKind.INSERT, key, str(layer.get("name", "")), (Change(Op.ADD, key, layer, None),))


def remove(site: Site) -> Edit:
    return Edit(EditKind.REMOVE, site.key, site.label, (Change(Op.REMOVE, site.key, None, dict(site.layer)),))


def pool_to_conv(site: Site, k: int | None = None, stride_: int | None = None, pad: int | None = None
                 ) -> Edit | None:
    """A max/avg pool replaced by a strided conv with the same input and output channels; by default the pool's
    own kernel, stride and padding."""
    pk, ps, pp = scalar(site.value("k")), site.value("stride"), scalar(site.value("padding"))
    ps = pk if ps is None else scalar(ps)
    if pk is None or ps is None or pp is None:
        return None
    new = {"op": "conv", "k": pk if k is None else k, "stride": ps if stride_ is None else stride_,
           "padding": pp if pad is None else pad}
    changes = [Change(Op.REPLACE, site.key + ("op",), "conv", site.layer["op"])]
    for name in ("k", "stride", "padding"):
        if name in site.layer:
            if site.layer[name] != new[name]:
                changes.append(Change(Op.REPLACE, site.key + (name,), new[name], site.layer[name]))
        else:  # written explicitly: the conv's own defaults (or `defaults.conv`) would differ from the pool's
            changes.append(Change(Op.ADD, site.key + (name,), new[name], site.value(name) if name != "stride"
                                  else ps))
    if "ceil_mode" in site.layer:
        changes.append(Change(Op.REMOVE, site.key + ("ceil_mode",), None, site.layer["ceil_mode"]))
    return Edit(EditKind.REPLACE, site.key, site.label, tuple(changes))


def replace_op(site: Site, op: str) -> Edit | None:
    """Swap a layer's op for one that takes the same fields (maxpool <-> avgpool, flatten -> gap)."""
    if site.op == op or site.op is None:
        return None
    return Edit(EditKind.REPLACE, site.key, site.label, (Change(Op.REPLACE, site.key + ("op",), op, site.op),))
