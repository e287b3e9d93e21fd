"""Pydantic models of the spec as users write it (contract section 1): the top level, constraints, blocks,
and the structural layers (``parallel``, ``residual``). Each op's own layer model lives with the op
(:mod:`rfcalc.ops`); :data:`LAYER_MODELS` maps every op name to its model.

Layers are validated one at a time, after block expansion, `defaults` and `$param` substitution
(see :mod:`rfcalc.spec.expand`).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rfcalc.ops.activation import OptionalAct
from rfcalc.ops.fields import NAME_PATTERN, LayerModel, Pair, to_pair
from rfcalc.ops.merges import SpecMerge
from rfcalc.ops.registry import FEATURES, REGISTRY, Feature
from rfcalc.quantities import SYMBOLS, BoundOp, parse_comparison, parse_number

__all__ = ["FEATURES", "LAYER_MODELS", "NAME_PATTERN", "OPS", "RESERVED_NAMES", "Bound", "Constraints", "Feature",
           "InputSpec", "BlockDef", "LayerModel", "Pair", "ParallelLayer", "PrimLayer", "ResidualLayer", "SpecFile"]

# Public attributes of torch.nn.Module / nn.Sequential: a layer with one of these names would hide a method
# of the built module. Listed here so the core can refuse them without importing torch.
RESERVED_NAMES: frozenset[str] = frozenset((
    "add_module", "append", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda",
    "double", "dump_patches", "eval", "extend", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "insert", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "pop", "register_buffer",
    "register_module", "register_parameter", "requires_grad_", "set_extra_state", "set_submodule", "share_memory",
    "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad",
))

class ParallelLayer(LayerModel):
    op: Literal["parallel"]
    paths: Annotated[list[list[dict[str, Any]]], Field(min_length=1)]
    merge: SpecMerge = "concat"
    act: OptionalAct = None


class ResidualLayer(LayerModel):
    op: Literal["residual"]
    body: Annotated[list[dict[str, Any]], Field(min_length=1)]
    shortcut: list[dict[str, Any]] | None = None
    act: OptionalAct = None


# A primitive op's layer model, after validation (the registry's models all derive from LayerModel).
PrimLayer = LayerModel
_STRUCTURAL: dict[str, type[LayerModel]] = {"parallel": ParallelLayer, "residual": ResidualLayer}


class _LayerModels(Mapping[str, type[LayerModel]]):
    """Op -> its layer model: every registered op (its family loads at the first lookup), then the structural
    layers."""

    def __getitem__(self, op: str) -> type[LayerModel]:
        return _STRUCTURAL[op] if op in _STRUCTURAL else REGISTRY[op].model

    def __contains__(self, op: object) -> bool:
        return op in _STRUCTURAL or op in REGISTRY

    def __iter__(self) -> Iterator[str]:
        yield from REGISTRY
        yield from _STRUCTURAL

    def __len__(self) -> int:
        return len(REGISTRY) + len(_STRUCTURAL)


LAYER_MODELS: Mapping[str, type[LayerModel]] = _LayerModels()
OPS: tuple[str, ...] = tuple(LAYER_MODELS)


def _number(value: Any) -> Any:
    return parse_number(value)


Number = Annotated[Union[int, float, str], Field(description="200000, 200_000 or \"200k\"")]


class Bound(BaseModel):
    """Bounds on a measured value; every bound given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    gt: Number | None = None
    ge: Number | None = None
    lt: Number | None = None
    le: Number | None = None
    eq: Number | None = None

    @field_validator("gt", "ge", "lt", "le", "eq", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        number = None if value is None else _number(value)
        if number is not None and number < 0:
            raise ValueError(f"must be >= 0, got {number}")
        return number

    @model_validator(mode="after")
    def _some(self) -> Bound:
        items = self.items()
        if not items:
            raise ValueError("give at least one bound: gt, ge, lt, le or eq")
        lower = [(op, v) for op, v in items if op in ("gt", "ge", "eq")]
        upper = [(op, v) for op, v in items if op in ("lt", "le", "eq")]
        for lo_op, lo in lower:
            for up_op, up in upper:
                if lo > up or lo == up and (lo_op == "gt" or up_op == "lt"):
                    raise ValueError(f"no value is {SYMBOLS[lo_op]} {lo:g} and {SYMBOLS[up_op]} {up:g}: the bounds "
                                     f"contradict each other")
        return self

    def items(self) -> list[tuple[BoundOp, int | float]]:
        ops: tuple[BoundOp, ...] = get_args(BoundOp)
        return [(op, getattr(self, op)) for op in ops if getattr(self, op) is not None]


class Constraints(BaseModel):
    """What `rfcalc check` enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rf: Bound | None = None
    params: Bound | None = None
    macs: Bound | None = None
    # plain defaults, which pydantic copies per instance: `Field(default_factory=list)` costs a pre-commit hook
    # ~2.5 ms, pydantic reading `list`'s signature (which imports and compiles `tokenize`)
    require: list[Feature] = []
    forbid: list[Feature] = []

    @field_validator("rf", "params", "macs", mode="before")
    @classmethod
    def _comparisons(cls, value: Any) -> Any:
        """Also accept the command line's form: ">44", or a list of them: [">44", "<=60"]."""
        texts = [value] if isinstance(value, str) else value
        if isinstance(texts, list) and all(isinstance(t, str) for t in texts):
            bound: dict[str, Any] = {}
            for text in texts:
                op, number = parse_comparison(text)
                bound[op] = number
            return bound
        return value

    @field_validator("require", "forbid", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """Also accept "dilated_conv, gap"."""
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    channels: Annotated[int, Field(ge=1)]
    size: Pair

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return to_pair(value, minimum=1)


class BlockDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    params: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Any] = {}
    layers: Annotated[list[dict[str, Any]], Field(min_length=1)]


class SpecFile(BaseModel):
    """The top level of a spec file. ``layers`` are checked one by one after expansion."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1]
    name: Annotated[str, Field(min_length=1)]
    input: InputSpec
    classes: Annotated[int, Field(ge=1)] | None = None
    defaults: dict[str, dict[str, Any]] = {}
    blocks: dict[Annotated[str, Field(pattern=NAME_PATTERN)], BlockDef] = {}
    layers: Annotated[list[dict[str, Any]], Field(min_length=1)]
    constraints: Constraints | None = None
    # `train:` as written: :func:`rfcalc.analysis.load.load_spec` validates it as a
    # :class:`~rfcalc.spec.train.TrainConfig` when it is given (that model, built at import, costs a `check` of a
    # spec without it ~2%); the JSON Schema shows TrainConfig here (:mod:`rfcalc.spec.schema`)
    train: Any = None
