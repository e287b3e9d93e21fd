"""The validated, expanded graph: what the calculator, the builder and the exporter walk.

Blocks, `repeat` and `separable` are expanded into :class:`Group` nodes; every primitive
op is a :class:`Prim` holding its validated layer model. Names are full dotted names
(``d1.0``, ``branches.0.conv1``, ``res.body.0``) and equal the PyTorch module names that
:func:`rfcalc.build_model` gives the same layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from rfcalc.ops.activation import ActName
from rfcalc.spec.models import PrimLayer
from rfcalc.spec.source import Key

GroupKind = Literal["block", "repeat", "separable"]


@dataclass(frozen=True)
class _Named:
    """Every node: its full dotted name, its path in the spec and its YAML location key."""

    name: str
    path: str
    key: Key

    @property
    def local_name(self) -> str:
        """The last part of the dotted name: the module's attribute name inside its parent."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Prim(_Named):
    """One primitive op (one row of the table)."""

    layer: PrimLayer

    @property
    def op(self) -> str:
        return self.layer.op


@dataclass(frozen=True)
class Group(_Named):
    """A named sequence: an expanded block use, a repeat, or a separable conv (children ``dw``, ``pw``)."""

    kind: GroupKind
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Parallel(_Named):
    """Branches from the same input joined by ``merge``; an empty path is the identity."""

    paths: tuple[tuple[Node, ...], ...]
    merge: Literal["concat", "add"]
    act: ActName | None


@dataclass(frozen=True)
class Residual(_Named):
    """``body(x) + shortcut(x)``; ``shortcut`` None is the identity."""

    body: tuple[Node, ...]
    shortcut: tuple[Node, ...] | None
    act: ActName | None


Node = Union[Prim, Group, Parallel, Residual]
