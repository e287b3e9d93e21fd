"""Where a spec can be edited: every layer as written (top level, inside parallel paths, residual bodies and
shortcuts, and in block definitions), every list of layers, and which expanded node came from which layer.

Edits are made to the raw spec, so that a fix reads the way the user wrote the spec: a field of a layer
(``layers[3].dilation``), a field of a layer inside a block definition (``blocks.dws.layers[0].k``: every use
changes), or a block parameter at one use site (``layers[2].out``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rfcalc.spec.graph import Group, Node, Parallel, Residual
from rfcalc.spec.models import LAYER_MODELS
from rfcalc.spec.source import Key, dotted

NESTED_LISTS = ("paths", "body", "shortcut")   # the fields of parallel / residual that hold layer lists
_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def scalar(value: Any) -> int | None:
    """An int, or [n, n]; None for anything an edit should not touch ([h, w] that differ, '$k', 'same')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(type(v) is int for v in value) \
            and value[0] == value[1]:
        return int(value[0])
    return None


def param_ref(value: Any) -> str | None:
    """'$out' -> 'out' (a whole-value block parameter reference); None otherwise."""
    match = _REF.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def op_default(op: str, name: str) -> Any:
    """The default of a field of an op's model (pairs as written: (3, 3) -> 3)."""
    model = LAYER_MODELS.get(op)
    if model is None or name not in model.model_fields:
        return None
    value = model.model_fields[name].default
    return scalar(value) if isinstance(value, tuple) and scalar(value) is not None else value


@dataclass(frozen=True)
class Site:
    """One layer as written: its key in the raw spec, the layer, its fields with ``defaults`` merged under them,
    a label for people, and the block whose definition holds it (None outside blocks)."""

    key: Key
    layer: Mapping[str, Any]
    fields: Mapping[str, Any]
    label: str
    block: str | None = None

    @property
    def op(self) -> str | None:
        op = self.layer.get("op")
        return op if isinstance(op, str) else None

    @property
    def use(self) -> str | None:
        use = self.layer.get("use")
        return use if isinstance(use, str) else None

    @property
    def path(self) -> str:
        return dotted(self.key)

    def value(self, name: str) -> Any:
        """The field's value in effect: written, from ``defaults``, or the op's default."""
        if name in self.fields:
            return self.fields[name]
        return op_default(self.op, name) if self.op else None


@dataclass(frozen=True)
class UseParam:
    """A block parameter at a use site: what it feeds (the op and field of a layer in the block)."""

    name: str
    op: str
    field: str
    default: Any


@dataclass
class SpecSites:
    """Every editable place of a raw spec."""

    data: Mapping[str, Any]
    sites: list[Site] = field(default_factory=list)
    sequences: list[Key] = field(default_factory=list)     # keys of every list of layers
    names: set[str] = field(default_factory=set)           # every layer name written in the spec

    def block_params(self, block: str) -> list[UseParam]:
        """The parameters of a block that feed one field of one of its layers (``k: $k`` -> k feeds conv.k)."""
        definition = self.data.get("blocks", {}).get(block)
        if not isinstance(definition, Mapping):
            return []
        params = definition.get("params") or {}
        found: dict[str, UseParam] = {}
        for layer in definition.get("layers") or []:
            if not isinstance(layer, Mapping) or not isinstance(layer.get("op"), str):
                continue
            for name, value in layer.items():
                ref = param_ref(value)
                if ref is not None and ref in params and ref not in found:
                    found[ref] = UseParam(ref, layer["op"], name, params[ref])
        return list(found.values())


def find_sites(data: Mapping[str, Any], node_names: Mapping[Key, str]) -> SpecSites:
    """Walk a raw spec (already known to be valid) for its layers and layer lists."""
    out = SpecSites(data)
    defaults = data.get("defaults") or {}

    def visit(items: Any, key: Key, block: str | None) -> None:
        if not isinstance(items, list):
            return
        out.sequences.append(key)
        for i, layer in enumerate(items):
            if not isinstance(layer, Mapping):
                continue
            here = key + (i,)
            if isinstance(layer.get("name"), str):
                out.names.add(layer["name"])
            op = layer.get("op")
            merged = {**defaults.get(op, {}), **layer} if isinstance(op, str) else dict(layer)
            name = layer.get("name")   # unnamed: the generated name, but in a block (one name per use) the path
            label = name if isinstance(name, str) else (dotted(here) if block else node_names.get(here, dotted(here)))
            out.sites.append(Site(here, layer, merged, label, block))
            if op == "parallel":
                for j, path in enumerate(layer.get("paths") or []):
                    visit(path, here + ("paths", j), block)
            elif op == "residual":
                for name in ("body", "shortcut"):
                    if isinstance(layer.get(name), list):
                        visit(layer[name], here + (name,), block)

    visit(data.get("layers"), ("layers",), None)
    for block, definition in (data.get("blocks") or {}).items():
        if isinstance(definition, Mapping):
            visit(definition.get("layers"), ("blocks", block, "layers"), block)
    return out


def node_keys(nodes: tuple[Node, ...]) -> tuple[dict[Key, str], dict[str, Key]]:
    """From the expanded graph: the first node name of every raw layer key, and the raw key of every node name
    (a prim's rows are named after it: ``c1``, ``c1.bn``; prims inside a block use map to the block's layer)."""
    names: dict[Key, str] = {}
    keys: dict[str, Key] = {}

    def walk(items: tuple[Node, ...]) -> None:
        for node in items:
            names.setdefault(node.key, node.name)
            keys[node.name] = node.key
            if isinstance(node, Group):
                walk(node.children)
            elif isinstance(node, Parallel):
                for path in node.paths:
                    walk(path)
            elif isinstance(node, Residual):
                walk(node.body)
                walk(node.shortcut or ())

    walk(nodes)
    return names, keys


def row_site(row_name: str, keys: Mapping[str, Key]) -> Key | None:
    """The raw key of the layer a report row came from (``c3.dw`` -> c3's key; ``c1.bn`` -> c1's)."""
    name = row_name
    while name:
        if name in keys:
            return keys[name]
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return None


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... whichever no layer of the spec uses."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name
