"""The calculator's output: one :class:`Row` per primitive op, totals and diagnostics (contract section 3)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rfcalc.table.reach import Reach

Shape = tuple[int, ...]
IntPair = tuple[int, int]
FracPair = tuple[Fraction, Fraction]
SCHEMA_VERSION = 1


def exact(value: Fraction | int) -> int | float:
    """Exact numbers for JSON: integers stay integers, halves become 0.5."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def _halves(start2: tuple[int, int]) -> list[int | float]:
    """Half-pixel integers -> exact JSON numbers (3 -> 1.5, 4 -> 2)."""
    return [v // 2 if v % 2 == 0 else v / 2 for v in start2]


def _pair(value: tuple[Any, Any] | None) -> list[int | float] | None:
    return None if value is None else [exact(v) for v in value]


@dataclass(frozen=True)
class Geometry:
    """Receptive field, jump and centre of unit 0, per axis (h, w), in input pixels.

    Centres are multiples of 1/2, kept exactly as integers in half-pixel units (``start2 = 2·start``);
    ``start`` gives them as fractions.
    """

    rf: IntPair
    jump: IntPair
    start2: IntPair

    @property
    def start(self) -> FracPair:
        return (Fraction(self.start2[0], 2), Fraction(self.start2[1], 2))

    def window(self, axis: int, unit: int) -> tuple[Fraction, Fraction]:
        """Input pixels [lo, hi] seen by output unit ``unit`` along ``axis``."""
        centre = Fraction(self.start2[axis], 2) + unit * self.jump[axis]
        half = Fraction(self.rf[axis] - 1, 2)
        return centre - half, centre + half


INPUT_GEOMETRY = Geometry((1, 1), (1, 1), (0, 0))


Severity = Literal["info", "warning", "error"]
# Every diagnostic code the report can carry (contract section 6.1): the calculator's, then rfcalc inspect's.
DiagnosticCode = Literal["misaligned-merge", "pointwise-op", "vector-op", "shared-parameters", "parameters",
                         "unused-parameters", "several-outputs", "output-not-last", "cannot-follow",
                         "partial-context", "shape-traced", "window-hull"]


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: DiagnosticCode
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "path": self.path, "message": self.message}


# The op settings the version-1 JSON has as keys of their own (contract 6.1: `bias` of conv and linear,
# `ceil_mode` of pools, `mode` of gap, `p` of dropout, `dim` of ultimus): kept there, and in "attrs" too.
V1_ATTRS = ("bias", "ceil_mode", "mode", "p", "dim")


@dataclass(frozen=True, kw_only=True)
class Row:
    """One primitive op after expansion (contract section 3), built by keyword.

    ``op`` is a registered op (:mod:`rfcalc.ops`), a merge (``concat``, ``add``; ``sub``, ``mul``, ``div`` from
    traced code) or, in ``rfcalc inspect``, the name of a call that passes the RF through. Spatial fields are
    (h, w); fields that do not apply are None. ``attrs`` holds the op's own settings that the common fields do not
    (``bias``, ``ceil_mode``, ``norm_type``, ...: JSON values, set by the op's calculator rule from its layer); the
    op's ``OpDef.layer`` reads its layer back from the row, so every setting reaches the module. In the JSON they
    are the object ``"attrs"``, and the version-1 keys among them (:data:`V1_ATTRS`) also stay where they were.
    ``geo_out`` is the window one unit sees; ``is_global`` (JSON ``"global"``) says that every unit depends
    on every input pixel, which a window cannot state (:mod:`rfcalc.table.reach`).
    """

    name: str
    op: str
    path: str
    inputs: tuple[str, ...]
    in_shape: Shape | None
    out_shape: Shape
    geo_in: Geometry
    geo_out: Geometry
    params: int = 0
    macs: int = 0
    is_global: bool = False                # every unit depends on every input pixel (rfcalc.table.reach)
    kernel: IntPair | None = None
    stride: IntPair | None = None
    padding: IntPair | None = None
    dilation: IntPair | None = None
    groups: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the op's own settings (see above)
    in_shapes: tuple[Shape, ...] | None = None  # merges: the shape of every input
    attached_to: str | None = None         # a conv's own norm/act/dropout, a merge's activation

    @property
    def is_feature_map(self) -> bool:
        return len(self.out_shape) == 3

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "op": self.op, "inputs": list(self.inputs),
            "in_shape": None if self.in_shape is None else list(self.in_shape),
            "out_shape": list(self.out_shape),
            "kernel": _pair(self.kernel), "stride": _pair(self.stride), "padding": _pair(self.padding),
            "dilation": _pair(self.dilation), "groups": self.groups,
            "jump_in": _pair(self.geo_in.jump), "jump_out": _pair(self.geo_out.jump),
            "rf_in": _pair(self.geo_in.rf), "rf_out": _pair(self.geo_out.rf),
            "start_in": _halves(self.geo_in.start2), "start_out": _halves(self.geo_out.start2),
            "global": self.is_global, "params": self.params, "macs": self.macs, "path": self.path,
        }
        extras = {**{key: self.attrs.get(key) for key in V1_ATTRS},
                  "in_shapes": None if self.in_shapes is None else [list(s) for s in self.in_shapes],
                  "attached_to": self.attached_to, "attrs": dict(self.attrs) or None}
        out.update({key: value for key, value in extras.items() if value is not None})
        return out


@dataclass(frozen=True)
class Report:
    """Everything `rfcalc table` shows; ``to_dict()`` is the contract's JSON."""

    name: str
    input_shape: Shape
    rows: tuple[Row, ...]
    diagnostics: tuple[Diagnostic, ...]
    # row name -> what each unit of its output sees (rfcalc.table.reach); not part of the JSON
    reaches: Mapping[str, Reach] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output(self) -> Row:
        return self.rows[-1]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def rf(self) -> IntPair:
        return self.output.geo_out.rf

    @property
    def is_global(self) -> bool:
        """Whether every unit of the output depends on every input pixel."""
        return self.output.is_global

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = self.output
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "input": list(self.input_shape),
            "layers": [r.to_dict() for r in self.rows],
            "totals": {"params": self.params, "macs": self.macs, "rf": _pair(out.geo_out.rf),
                       "jump": _pair(out.geo_out.jump), "start": _halves(out.geo_out.start2),
                       "global": out.is_global, "output_shape": list(out.out_shape)},
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }
