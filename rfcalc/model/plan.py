"""The module plan: which PyTorch module goes where, decided once for the builder and the exporter.

Torch-free. :func:`plan_model` walks the expanded graph and reads every resolved number
(channels, padding, groups) from the report's rows, so the module and the table cannot drift.
:mod:`rfcalc.model.builder` instantiates a plan; :mod:`rfcalc.model.export` prints it as Python source.

Module names equal the row names (full dotted names), with one addition: a conv that carries
a norm, an activation or dropout becomes an ``nn.Sequential`` under the conv's name whose
children are ``conv``, then ``bn``/``gn``/``ln``, the activation (``relu``, ...) and ``dropout``.
So row ``c1.bn`` is module ``c1.bn`` and row ``c1`` (the conv alone) is module ``c1.conv``;
:func:`row_modules` gives the exact module of every row.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Union

from rfcalc.ops.base import Leaf
from rfcalc.ops.registry import REGISTRY
from rfcalc.spec.graph import Group, Node, Parallel, Prim
from rfcalc.table.report import Report, Row

__all__ = ["Item", "Leaf", "Merge", "Seq", "children", "leaf", "plan_model", "row_modules", "walk"]


@dataclass(frozen=True)
class Seq:
    """An ``nn.Sequential`` of named children (a block use, a repeat, a separable conv, a path, a conv unit)."""

    name: str
    children: tuple[tuple[str, Item], ...]


@dataclass(frozen=True)
class Merge:
    """A ``Parallel`` (children ``0``, ``1``, ...) or a ``Residual`` (children ``body``, ``shortcut``)."""

    name: str
    kind: Literal["parallel", "residual"]
    branches: tuple[Seq, ...]
    shortcut: Seq | None
    merge: Literal["concat", "add"]
    act: str | None


Item = Union[Leaf, Seq, Merge]


def plan_model(nodes: tuple[Node, ...], report: Report) -> Seq:
    """The module tree of a spec's expanded graph; the root is a :class:`Seq` named ``""``."""
    rows = {row.name: row for row in report.rows}
    attached: dict[str, list[Row]] = {}
    for row in report.rows:
        if row.attached_to is not None:
            attached.setdefault(row.attached_to, []).append(row)
    return Seq("", _sequence(nodes, rows, attached))


def _sequence(nodes: tuple[Node, ...], rows: dict[str, Row], attached: dict[str, list[Row]]
              ) -> tuple[tuple[str, Item], ...]:
    return tuple((node.local_name, _item(node, rows, attached)) for node in nodes)


def _item(node: Node, rows: dict[str, Row], attached: dict[str, list[Row]]) -> Item:
    if isinstance(node, Prim):
        row = rows[node.name]
        own = attached.get(node.name, [])
        if not own:
            return leaf(row)
        return Seq(node.name, ((row.op, leaf(row)),) + tuple((r.name.rsplit(".", 1)[-1], leaf(r)) for r in own))
    if isinstance(node, Group):
        return Seq(node.name, _sequence(node.children, rows, attached))
    if isinstance(node, Parallel):
        paths = tuple(Seq(f"{node.name}.{j}", _sequence(p, rows, attached)) for j, p in enumerate(node.paths))
        return Merge(node.name, "parallel", paths, None, node.merge, node.act)
    body = Seq(f"{node.name}.body", _sequence(node.body, rows, attached))
    shortcut = None if node.shortcut is None else Seq(f"{node.name}.shortcut",
                                                      _sequence(node.shortcut, rows, attached))
    return Merge(node.name, "residual", (body,), shortcut, "add", node.act)


def walk(item: Item, path: str = "") -> Iterator[tuple[str, Item]]:
    """Every item of the tree with its module path (``c1.conv``, ``branches.0.conv1``), parents first."""
    yield path, item
    for name, child in children(item):
        yield from walk(child, f"{path}.{name}" if path else name)


def children(item: Item) -> list[tuple[str, Item]]:
    """The named children of an item, in module registration order."""
    if isinstance(item, Seq):
        return list(item.children)
    if isinstance(item, Merge):
        if item.kind == "parallel":
            return [(str(j), path) for j, path in enumerate(item.branches)]
        named: list[tuple[str, Item]] = [("body", item.branches[0])]
        return named + ([("shortcut", item.shortcut)] if item.shortcut is not None else [])
    return []


def row_modules(root: Seq) -> dict[str, str]:
    """Row name -> the module path whose output is exactly that row's output.

    Equal to the row name except for a conv with attached ops (``c1`` -> ``c1.conv``); a merge row
    maps to its ``Parallel``/``Residual`` module, whose output is taken after its activation
    (the same shape; the activation has a row of its own, ``branches.relu``).
    """
    out: dict[str, str] = {}
    for path, item in walk(root):
        if isinstance(item, Leaf):
            out[item.row] = path
        elif isinstance(item, Merge):
            out[item.name] = path
            if item.act is not None:
                out[f"{item.name}.{item.act}"] = f"{path}.{item.act}"
    return out


def leaf(row: Row) -> Leaf:
    """The module of one row, by its op's registered leaf rule."""
    return REGISTRY[row.op].leaf_of(row)
