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

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union

from rfcalc.spec.graph import Group, Node, Parallel, Prim
from rfcalc.table.report import Report, Row

ACTIVATION_CTORS: dict[str, str] = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU",
                                    "gelu": "nn.GELU", "silu": "nn.SiLU"}


@dataclass(frozen=True)
class Leaf:
    """One module made by one constructor call, e.g. ``nn.Conv2d(3, 16, kernel_size=3, padding=1)``."""

    row: str
    ctor: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


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
    act: str


Item = Union[Leaf, Seq, Merge]


def plan_model(nodes: tuple[Node, ...], report: Report) -> Seq:
    """The module tree of a spec's expanded graph; the root is a :class:`Seq` named ``""``."""
    rows = {row.name: row for row in report.rows}
    attached: dict[str, list[Row]] = {}
    for row in report.rows:
        if "attached_to" in row.attrs:
            attached.setdefault(row.attrs["attached_to"], []).append(row)
    return Seq("", _sequence(nodes, rows, attached))


def _sequence(nodes: tuple[Node, ...], rows: dict[str, Row], attached: dict[str, list[Row]]
              ) -> tuple[tuple[str, Item], ...]:
    return tuple((node.local_name, _item(node, rows, attached)) for node in nodes)


def _item(node: Node, rows: dict[str, Row], attached: dict[str, list[Row]]) -> Item:
    if isinstance(node, Prim):
        row = rows[node.name]
        leaf = LEAVES[row.op](row)
        extra = attached.get(node.name, []) if row.op == "conv" else []
        if not extra:
            return leaf
        return Seq(node.name, (("conv", leaf),) + tuple((r.name.rsplit(".", 1)[-1], LEAVES[r.op](r)) for r in extra))
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
            if item.act != "none":
                out[f"{item.name}.{item.act}"] = f"{path}.{item.act}"
    return out


# -- one leaf per op: the constructor and its arguments, PyTorch defaults left out -------------------------
def _pair(value: tuple[int, int]) -> int | tuple[int, int]:
    return value[0] if value[0] == value[1] else value


def _conv(row: Row) -> Leaf:
    assert row.in_shape is not None and row.kernel and row.stride and row.padding and row.dilation
    kwargs: list[tuple[str, Any]] = [("kernel_size", _pair(row.kernel))]
    for key, value, default in (("stride", row.stride, (1, 1)), ("padding", row.padding, (0, 0)),
                                ("dilation", row.dilation, (1, 1))):
        if value != default:
            kwargs.append((key, _pair(value)))
    if row.groups not in (None, 1):
        kwargs.append(("groups", row.groups))
    if not row.attrs.get("bias", True):
        kwargs.append(("bias", False))
    return Leaf(row.name, "nn.Conv2d", (row.in_shape[0], row.out_shape[0]), tuple(kwargs))


def _pool(row: Row) -> Leaf:
    assert row.kernel and row.stride and row.padding
    kwargs: list[tuple[str, Any]] = [("kernel_size", _pair(row.kernel))]
    if row.stride != row.kernel:
        kwargs.append(("stride", _pair(row.stride)))
    if row.padding != (0, 0):
        kwargs.append(("padding", _pair(row.padding)))
    if row.attrs.get("ceil_mode"):
        kwargs.append(("ceil_mode", True))
    return Leaf(row.name, "nn.MaxPool2d" if row.op == "maxpool" else "nn.AvgPool2d", (), tuple(kwargs))


def _norm(row: Row) -> Leaf:
    channels = row.out_shape[0]
    if row.op == "bn":
        return Leaf(row.name, "nn.BatchNorm2d" if row.is_feature_map else "nn.BatchNorm1d", (channels,))
    return Leaf(row.name, "nn.GroupNorm", (row.groups if row.op == "gn" else 1, channels))


def _dropout(row: Row) -> Leaf:
    return Leaf(row.name, "nn.Dropout2d" if row.is_feature_map else "nn.Dropout", (), (("p", row.attrs["p"]),))


def _linear(row: Row) -> Leaf:
    assert row.in_shape is not None
    kwargs = () if row.attrs.get("bias", True) else (("bias", False),)
    return Leaf(row.name, "nn.Linear", (row.in_shape[0], row.out_shape[0]), kwargs)


LEAVES: dict[str, Callable[[Row], Leaf]] = {
    "conv": _conv,
    "maxpool": _pool,
    "avgpool": _pool,
    "gap": lambda row: Leaf(row.name, "GlobalPool", (row.attrs.get("mode", "avg"),)),
    "bn": _norm,
    "gn": _norm,
    "ln": _norm,
    "dropout": _dropout,
    "flatten": lambda row: Leaf(row.name, "nn.Flatten"),
    "linear": _linear,
    "ultimus": lambda row: Leaf(row.name, "Ultimus", (row.out_shape[0],), (("dim", row.attrs["dim"]),)),
    **{act: (lambda row, ctor=ctor: Leaf(row.name, ctor)) for act, ctor in ACTIVATION_CTORS.items()},
}
