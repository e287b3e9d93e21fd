"""Pydantic validation errors -> the contract's one-line messages (what, the value, what is allowed)."""
from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rfcalc.errors import Problem
from rfcalc.ops.fields import NAME_PATTERN, spelled
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


SHOW_LIMIT = 48  # characters of a value quoted in a message; longer values are previewed


def show(value: Any) -> str:
    """A value as a message quotes it: whole when short, else its type and a short preview
    ('a list of 2 items: [{op: residual, body: [...]}, {op: relu}]' rather than the whole block)."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool) or value is None:  # as the spec file spells them
        return spelled(value)
    if isinstance(value, str):
        if len(value) <= SHOW_LIMIT:
            return repr(value)
        return f"{value[:SHOW_LIMIT - 8]!r}… ({len(value)} characters)"
    if isinstance(value, dict):
        return "a mapping" if not value else f"a mapping {_preview(value, SHOW_LIMIT)}"
    if isinstance(value, list) and len(str(value)) > SHOW_LIMIT:
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}: {_preview(value, SHOW_LIMIT)}"
    text = str(value)
    return text if len(text) <= SHOW_LIMIT else text[:SHOW_LIMIT - 1] + "…"


def _preview(value: Any, room: int, depth: int = 0) -> str:
    """A YAML-flow-like preview of at most about ``room`` characters; what does not fit becomes '…'."""
    if isinstance(value, (dict, list)):
        items = ([f"{k}: {_preview(v, room // 2, depth + 1)}" for k, v in value.items()] if isinstance(value, dict)
                 else [_preview(v, room // 2, depth + 1) for v in value])
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if depth >= 2 and items:
            return f"{opening}...{closing}"
        shown: list[str] = []
        for item in items:
            if shown and len(", ".join([*shown, item])) > room:
                shown.append("…")
                break
            shown.append(item)
        return opening + ", ".join(shown) + closing
    text = str(value) if not isinstance(value, str) or value.isidentifier() else repr(value)
    return text if len(text) <= room else text[:max(room - 1, 1)] + "…"


def name_problem(value: Any) -> str:
    """Why ``value`` is not a layer or block name. Names are ASCII: they become PyTorch module attributes and the
    identifiers of exported source, where Python folds Unicode names (NFKC: 'ﬁ' is read as 'fi'), so a checkpoint's
    keys and the exported code could disagree; plain ASCII also survives every terminal, CSV and grep."""
    others = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c == "_"))}) if isinstance(value,
                                                                                                           str) else []
    why = f" ({', '.join(repr(c) for c in others)} {'is' if len(others) == 1 else 'are'} not allowed)" if others else ""
    return ("must be a name of ASCII letters (a-z, A-Z), digits and '_' that does not start with a digit, "
            f"got {show(value)}{why}")


def _keys_of(model: type[BaseModel]) -> str:
    """' with layers (required) and params': the keys a mapping of ``model`` takes."""
    fields = [f"{name} (required)" if info.is_required() else name for name, info in model.model_fields.items()]
    fields.sort(key=lambda text: not text.endswith("(required)"))
    return " with " + (fields[0] if len(fields) == 1 else f"{', '.join(fields[:-1])} and {fields[-1]}")


def describe_error(err: ErrorDetails | Mapping[str, Any], model: type[BaseModel] | None,
                   expected: type[BaseModel] | None = None) -> str:
    """One pydantic error as the contract's message: what is wrong, the value, what is allowed. ``model`` owns the
    field (its keys are listed for an unknown key); ``expected`` is the model the value should have been."""
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
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {ctx.get('expected')}, got {show(value)}{suggest(value, choices)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {show(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {show(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {show(value)}"
    if kind == "string_type":
        return f"must be a string, got {show(value)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return name_problem(value)
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {show(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        keys = _keys_of(expected) if expected is not None else ""
        return f"must be a mapping{keys}, got {show(value)}"
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
        message = describe_error(err, _field_model(model, loc), _value_model(model, loc))
        if loc and origin is not None:
            message += _from_defaults({str(loc[0]): origin}, source, named=False)
        elif not loc and origins and model is not None:  # a rule across fields: name those `defaults` gave
            given = {f: o for f, o in origins.items() if o[:1] == ("defaults",) and _causes(f, err, model)}
            message += _from_defaults(given, source, named=True)
        problems.append(source.problem(where, _path_text(path, loc), message, at_key=err["type"] == "extra_forbidden"))
    return problems


def _causes(field: str, err: ErrorDetails, model: type[BaseModel]) -> bool:
    """Whether leaving ``field`` out of the input (its default applies) clears the rule that ``err`` broke."""
    data = err.get("input")
    if not isinstance(data, dict) or field not in data or model.model_fields.get(field, None) is None \
            or model.model_fields[field].is_required():
        return False
    try:
        model.model_validate({k: v for k, v in data.items() if k != field})
    except ValidationError as exc:
        return all(other["msg"] != err["msg"] for other in exc.errors())
    return True


def _from_defaults(origins: dict[str, Key], source: Source, *, named: bool) -> str:
    """' (from defaults.conv at line 7)', or with ``named`` ' (groups from defaults.conv at line 7)': where the
    values merged from `defaults:` are written; '' when none of ``origins`` is in `defaults:`."""
    given = [(field, origin) for field, origin in origins.items() if len(origin) == 3 and origin[0] == "defaults"]
    parts = [f"{f'{field} ' if named else ''}from defaults.{origin[1]} at line {source.locate(origin)[0]}"
             for field, origin in given]
    return f" ({', '.join(parts)})" if parts else ""


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


def _value_model(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model the value at ``loc`` should be (``blocks.basic`` -> BlockDef), or None when it is not one model."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) in (list, tuple):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X; any other union stays (it is not one model)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
