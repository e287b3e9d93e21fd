"""The edit vocabulary: what `suggest` may change in a spec, as data.

An :class:`Edit` is one change as a person would describe it ("dilate conv4a to 2, padding to keep its size"):
the unit that "fewest edits" counts. It holds one or more :class:`Change` objects, each one JSON-Patch operation
(RFC 6902's ``add`` / ``remove`` / ``replace``) on the *raw* spec, the spec as written before blocks, repeats and
``defaults`` are expanded, at the key of the changed value: ``("layers", 3, "dilation")`` (printed
``layers[3].dilation``), ``("blocks", "dws", "layers", 0, "k")``, a block parameter at a use site
``("layers", 2, "out")``. ``add`` on a list index inserts before that index, as in JSON Patch.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rfcalc.spec.source import Key, dotted

STARVE = 0.25   # a width cut by more than this fraction of the layer starves it


def starves(old: Any, new: Any) -> bool:
    """Whether a width ``old`` -> ``new`` leaves the layer less than three quarters of its width."""
    return type(old) is int and type(new) is int and old > 0 and new < old * (1 - STARVE)


class Op(StrEnum):
    """A JSON-Patch operation."""

    ADD = "add"          # a key the mapping did not have, or a new list item before the index
    REMOVE = "remove"    # a key of a mapping, or a list item
    REPLACE = "replace"  # the value of an existing key


class EditKind(StrEnum):
    """What an edit does, in the words of the `suggest` output."""

    DILATION = "dilation"    # a conv's dilation (with the padding that keeps its output size, or as it is)
    KERNEL = "kernel"        # a conv's kernel size, padding adjusted to keep the output size
    STRIDE = "stride"        # a conv's stride
    PADDING = "padding"      # a conv's padding
    WIDTH = "width"          # a conv's or linear's `out` (or the block parameter that sets it)
    SEPARABLE = "separable"  # make a conv depthwise-separable (or a separable conv plain again)
    DEPTHWISE = "depthwise"  # make a conv depthwise (groups: depthwise), or a depthwise conv dense again
    INSERT = "insert"        # a new layer (a dilated 3x3, plain or depthwise)
    REMOVE = "remove"        # drop a layer
    REPLACE = "replace"      # change a layer's op: a pool to a strided conv or the other pool, flatten to gap


@dataclass(frozen=True)
class Change:
    """One operation on the raw spec.

    ``value`` is the new value (``add``, ``replace``). ``old`` is what it replaces: the written value for
    ``replace`` and ``remove``; for ``add`` of a layer field, the value the field had without it (from
    ``defaults``, the block's parameter default or the op's own default), None for a new layer.
    """

    op: Op
    key: Key
    value: Any = None
    old: Any = None

    @property
    def path(self) -> str:
        return dotted(self.key)

    @property
    def pointer(self) -> str:
        """The RFC 6901 JSON pointer of the changed value (for JSON-Patch tools)."""
        return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in self.key)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op.value, "path": self.path, "pointer": self.pointer}
        if self.op is not Op.REMOVE:
            out["value"] = self.value
        out["old"] = self.old
        return out


@dataclass(frozen=True)
class Edit:
    """One suggested change: its kind, the layer it touches (``site``: the key of the layer as written, or for an
    insert the position the new layer takes), that layer's name as the table shows it, and its operations."""

    kind: EditKind
    site: Key
    label: str
    changes: tuple[Change, ...]

    @property
    def site_path(self) -> str:
        return dotted(self.site)

    @property
    def magnitude(self) -> int:
        """How far the written numbers move (|new - old| summed; 1 for any other change): the last tie-break."""
        return sum(_distance(c.old, c.value) for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "site": self.site_path, "layer": self.label,
                "changes": [c.to_dict() for c in self.changes]}


def _distance(old: Any, new: Any) -> int:
    def number(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, (list, tuple)) and value and all(type(v) is int for v in value):
            return max(int(v) for v in value)
        return None

    a, b = number(old), number(new)
    return abs(a - b) if a is not None and b is not None else 1
