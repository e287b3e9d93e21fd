"""Pydantic models of the spec as users write it (contract section 1).

Layers are validated one at a time, after block expansion, `defaults` and `$param`
substitution (see :mod:`rfcalc.spec.expand`), with :data:`PRIM_LAYER` / :data:`LAYER_MODELS`.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from rfcalc.quantities import parse_comparison, parse_number
from rfcalc.trainer.config import TrainConfig

Pair = Annotated[tuple[int, int], WithJsonSchema({
    "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}],
    "description": "an integer, or [h, w]"})]
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

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

ActName = Literal["none", "relu", "relu6", "leaky_relu", "gelu", "silu"]
NormName = Literal["none", "bn", "gn", "ln"]
Feature = Literal["dilated_conv", "depthwise_conv", "separable_conv", "strided_conv", "maxpool", "avgpool", "gap",
                  "residual", "concat", "linear", "bn", "gn", "ln", "dropout", "ultimus"]
FEATURES: tuple[str, ...] = Feature.__args__  # type: ignore[attr-defined]
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "leaky_relu", "gelu", "silu")
NORMS: tuple[str, ...] = ("bn", "gn", "ln")


def _pair(value: Any, *, minimum: int) -> Any:
    """int or [h, w] -> (h, w); leaves other input to pydantic's own type errors."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer or [h, w], got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"must be an integer or a list of two integers [h, w], got {list(value)!r}")
        if min(value) < minimum:
            raise ValueError(f"must be >= {minimum}, got {_show(value)}")
        return tuple(value)
    raise ValueError(f"must be an integer or [h, w], got {value!r}")


def _show(value: Any) -> str:
    value = list(value) if isinstance(value, tuple) else value
    return str(value[0]) if isinstance(value, list) and len(value) == 2 and value[0] == value[1] else str(value)


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    repeat: Annotated[int, Field(ge=1)] = 1


class ConvLayer(_Layer):
    op: Literal["conv"]
    out: Annotated[int, Field(ge=1)] | None = None
    k: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Pair | Literal["same", "valid"] = (0, 0)
    dilation: Pair = (1, 1)
    groups: Annotated[int, Field(ge=1)] | Literal["depthwise"] = 1
    separable: bool = False
    bias: bool = True
    norm: NormName = "none"
    norm_groups: Annotated[int, Field(ge=1)] | None = None
    act: ActName = "none"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @field_validator("k", "stride", "dilation", mode="before")
    @classmethod
    def _positive_pair(cls, value: Any) -> Any:
        return _pair(value, minimum=1)

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any) -> Any:
        return value if value in ("same", "valid") else _pair(value, minimum=0)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        if value == "depthwise":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= 1 or 'depthwise', got {value!r}")
        if value < 1:
            raise ValueError(f"must be >= 1 or 'depthwise', got {value}")
        return value

    @field_validator("norm", "act", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        return "none" if value is None or value is False else value

    @model_validator(mode="after")
    def _norm_groups(self) -> ConvLayer:
        if self.norm == "gn" and self.norm_groups is None:
            raise ValueError("norm: gn needs norm_groups (the number of groups, a divisor of out)")
        if self.separable and self.groups != 1:
            raise ValueError(f"separable: true builds its own depthwise conv; leave groups at 1, got {self.groups!r}")
        return self


class PoolLayer(_Layer):
    op: Literal["maxpool", "avgpool"]
    k: Pair = (2, 2)
    stride: Pair | None = None
    padding: Pair = (0, 0)
    ceil_mode: bool = False

    @field_validator("k", "stride", mode="before")
    @classmethod
    def _positive_pair(cls, value: Any) -> Any:
        return None if value is None else _pair(value, minimum=1)

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any) -> Any:
        return _pair(value, minimum=0)

    @model_validator(mode="after")
    def _half_kernel(self) -> PoolLayer:
        if any(2 * p > k for p, k in zip(self.padding, self.k)):
            raise ValueError(f"padding must be at most half the kernel (PyTorch's rule), got padding "
                             f"{_show(self.padding)} for k {_show(self.k)}")
        return self

    @property
    def stride_pair(self) -> Pair:
        return self.stride if self.stride is not None else self.k


class GapLayer(_Layer):
    op: Literal["gap"]
    mode: Literal["avg", "max"] = "avg"


class NormLayer(_Layer):
    op: Literal["bn", "gn", "ln"]
    groups: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _groups(self) -> NormLayer:
        if self.op == "gn" and self.groups is None:
            raise ValueError("gn needs groups (the number of groups, a divisor of the channels)")
        if self.op != "gn" and self.groups is not None:
            raise ValueError(f"groups applies to gn only, not {self.op}")
        return self


class ActLayer(_Layer):
    op: Literal["relu", "relu6", "leaky_relu", "gelu", "silu"]


class DropoutLayer(_Layer):
    op: Literal["dropout"]
    p: Annotated[float, Field(ge=0, lt=1)] = 0.1


class FlattenLayer(_Layer):
    op: Literal["flatten"]


class LinearLayer(_Layer):
    op: Literal["linear"]
    out: Annotated[int, Field(ge=1)]
    bias: bool = True


class UltimusLayer(_Layer):
    op: Literal["ultimus"]
    dim: Annotated[int, Field(ge=1)] = 8


class ParallelLayer(_Layer):
    op: Literal["parallel"]
    paths: Annotated[list[list[dict[str, Any]]], Field(min_length=1)]
    merge: Literal["concat", "add"] = "concat"
    act: ActName = "none"

    @field_validator("act", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        return "none" if value is None else value


class ResidualLayer(_Layer):
    op: Literal["residual"]
    body: Annotated[list[dict[str, Any]], Field(min_length=1)]
    shortcut: list[dict[str, Any]] | None = None
    act: ActName = "none"

    @field_validator("act", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        return "none" if value is None else value


PrimLayer = Union[ConvLayer, PoolLayer, GapLayer, NormLayer, ActLayer, DropoutLayer, FlattenLayer, LinearLayer,
                  UltimusLayer]
LAYER_MODELS: dict[str, type[_Layer]] = {
    "conv": ConvLayer, "maxpool": PoolLayer, "avgpool": PoolLayer, "gap": GapLayer,
    "bn": NormLayer, "gn": NormLayer, "ln": NormLayer, "dropout": DropoutLayer, "flatten": FlattenLayer,
    "linear": LinearLayer, "ultimus": UltimusLayer, "parallel": ParallelLayer, "residual": ResidualLayer,
    **{act: ActLayer for act in ACTIVATIONS},
}
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
        return None if value is None else _number(value)

    @model_validator(mode="after")
    def _some(self) -> Bound:
        if not self.items():
            raise ValueError("give at least one bound: gt, ge, lt, le or eq")
        return self

    def items(self) -> list[tuple[str, int | float]]:
        return [(op, getattr(self, op)) for op in ("gt", "ge", "lt", "le", "eq") if getattr(self, op) is not None]


class Constraints(BaseModel):
    """What `rfcalc check` enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rf: Bound | None = None
    params: Bound | None = None
    macs: Bound | None = None
    require: list[Feature] = Field(default_factory=list)
    forbid: list[Feature] = Field(default_factory=list)

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
        return _pair(value, minimum=1)


class BlockDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    params: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Any] = Field(default_factory=dict)
    layers: Annotated[list[dict[str, Any]], Field(min_length=1)]


class SpecFile(BaseModel):
    """The top level of a spec file. ``layers`` are checked one by one after expansion."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1]
    name: Annotated[str, Field(min_length=1)]
    input: InputSpec
    classes: Annotated[int, Field(ge=1)] | None = None
    defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    blocks: dict[Annotated[str, Field(pattern=NAME_PATTERN)], BlockDef] = Field(default_factory=dict)
    layers: Annotated[list[dict[str, Any]], Field(min_length=1)]
    constraints: Constraints | None = None
    train: TrainConfig | None = None
