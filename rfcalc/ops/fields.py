"""Field types every layer model shares: ``[h, w]`` pairs, names, the base model, optional choices.

Torch-free; imports nothing of rfcalc. The op families (:mod:`rfcalc.ops`) and the spec's top-level models
(:mod:`rfcalc.spec.models`) build on these.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

Pair = Annotated[tuple[int, int], WithJsonSchema({
    "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}],
    "description": "an integer, or [h, w]"})]
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NONE_FORMS = ("none",)  # besides null / false: how a spec says "no activation" / "no norm"


def spelled(value: Any) -> str:
    """A value as the spec file spells it, for messages: ``true``, ``false``, ``null``, else Python's repr."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def to_pair(value: Any, *, minimum: int) -> Any:
    """int or [h, w] -> (h, w); leaves other input to pydantic's own type errors."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer or [h, w], got {spelled(value)}")
    if isinstance(value, int):
        value = (value, value)
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"must be an integer or a list of two integers [h, w], got {list(value)!r}")
        if min(value) < minimum:
            raise ValueError(f"must be >= {minimum}, got {show_pair(value)}")
        return tuple(value)
    raise ValueError(f"must be an integer or [h, w], got {spelled(value)}")


def show_pair(value: Any) -> str:
    """(3, 3) -> '3'; (3, 5) -> '[3, 5]'."""
    value = list(value) if isinstance(value, tuple) else value
    return str(value[0]) if isinstance(value, list) and len(value) == 2 and value[0] == value[1] else str(value)


def one_of(choices: Sequence[str]) -> str:
    """"'a', 'b' or 'c'": pydantic's wording for a closed vocabulary, used by rfcalc's own validators too."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def optional_choice(choices: Sequence[str], description: str) -> Any:
    """An ``Annotated`` type for a field that names one of ``choices`` or nothing.

    ``none``, null and false all mean nothing and become ``None``; anything else outside ``choices`` is an error
    listing what is allowed. The JSON Schema offers the names, ``"none"`` and null.
    """
    names = tuple(choices)

    def check(value: Any) -> Any:
        if value is None or value is False or value in NONE_FORMS:
            return None
        if value not in names:
            shown = repr(value) if isinstance(value, str) else str(value)
            raise ValueError(f"must be one of {one_of(('none', *names))}, got {shown}")
        return value

    schema = {"anyOf": [{"enum": ["none", *names]}, {"type": "null"}], "description": description}
    return (BeforeValidator(check), WithJsonSchema(schema))


class LayerModel(BaseModel):
    """The base of every layer model: ``name`` and ``repeat`` are accepted on any layer (contract section 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    op: str
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    repeat: Annotated[int, Field(ge=1)] = 1


PairValidator = Callable[[Any], Any]


def pair_of(minimum: int) -> PairValidator:
    """A ``mode="before"`` validator body: int or [h, w] with every entry >= ``minimum``; None passes."""
    def check(value: Any) -> Any:
        return None if value is None else to_pair(value, minimum=minimum)
    return check
