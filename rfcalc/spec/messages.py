"""Pydantic validation errors -> the contract's one-line messages (what, the value, what is allowed)."""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rfcalc.errors import Problem
from rfcalc.spec.source import Key, Source


# Names people bring from PyTorch and Keras, mapped to the spec's own.
ALIASES: dict[str, str] = {
    "kernel": "k", "kernel_size": "k", "ksize": "k", "out_channels": "out", "filters": "out", "channels": "out",
    "pad": "padding", "strides": "stride", "dilation_rate": "dilation", "activation": "act", "normalization": "norm",
    "type": "op", "layer": "op", "block": "use", "conv2d": "conv", "maxpool2d": "maxpool", "avgpool2d": "avgpool",
    "batchnorm": "bn", "batchnorm2d": "bn", "groupnorm": "gn", "layernorm": "ln", "dense": "linear", "fc": "linear",
    "global_avg_pool": "gap", "adaptiveavgpool2d": "gap", "add": "residual", "concat": "parallel", "cat": "parallel",
    "p": "dropout", "num_groups": "norm_groups", "padding_mode": "padding",
}


def suggest(word: object, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'conv'?)' or ''."""
    if not isinstance(word, str):
        return ""
    alias = ALIASES.get(word.lower())
    if alias in choices:
        return f" (did you mean '{alias}'?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


def describe_error(err: ErrorDetails, model: type[BaseModel] | None) -> str:
    """One pydantic error as the contract's message: what is wrong, the value, what is allowed."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    field = err["loc"][-1] if err["loc"] else ""
    if kind == "extra_forbidden":
        allowed = sorted(model.model_fields) if model is not None else []
        hint = suggest(field, allowed)
        return f"unknown key '{field}'{hint}; allowed: {', '.join(allowed)}" if allowed else f"unknown key '{field}'"
    if kind == "missing":
        return "required, but missing"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than": ("<", "lt"),
              "less_than_equal": ("<=", "le")}
    if kind in bounds:
        symbol, name = bounds[kind]
        return f"must be {symbol} {ctx.get(name)}, got {show(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {show(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {show(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {show(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {show(value)}"
    if kind == "string_type":
        return f"must be a string, got {show(value)}"
    if kind == "string_pattern_mismatch":
        return f"must be a name of letters, digits and '_' that does not start with a digit, got {show(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {show(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {show(value)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {show(value)}"


def _path_text(base: str, loc: tuple[Any, ...]) -> str:
    text = base
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def translate(exc: ValidationError, source: Source, key: Key, path: str, model: type[BaseModel] | None,
              origins: dict[str, Key] | None = None) -> list[Problem]:
    """One located :class:`Problem` per distinct location in a pydantic error."""
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        origin = (origins or {}).get(loc[0]) if loc and isinstance(loc[0], str) else None
        where = origin + loc[1:] if origin is not None else key + loc
        problems.append(source.problem(where, _path_text(path, loc), describe_error(err, _field_model(model, loc)),
                                       at_key=err["type"] == "extra_forbidden"))
    return problems


def _field_model(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that owns the last field of ``loc`` (for listing allowed keys of nested models)."""
    current = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            continue
        annotation = current.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), current)
    return current
