"""Paths into a raw spec (the YAML as written): parse them, check them against the base spec, set values.

A path is dotted keys with ``[i]`` list indexes: ``train.lr``, ``defaults.conv.norm``, ``layers[4].dilation``,
``blocks.dws.params.out``. A key applied to a list picks the item with that ``name``: ``layers.c2_2.dilation`` is
the ``dilation`` of the layer named ``c2_2`` (also inside ``paths``/``body`` lists:
``layers.br.paths[0][0].out``). Pure Python: no torch, no optuna.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from rfcalc.quantities import BOUNDED
from rfcalc.spec.messages import suggest
from rfcalc.spec.models import LAYER_MODELS, OPS, Bound, Constraints, SpecFile
from rfcalc.spec.train import TrainConfig

Token = str | int
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class PathError(ValueError):
    """A path that does not parse or does not lead anywhere in the base spec; the message says why."""


def parse_path(text: str) -> tuple[Token, ...]:
    """'layers.c2_2.dilation' -> ('layers', 'c2_2', 'dilation'); 'layers[4].k' -> ('layers', 4, 'k')."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or (position == 0 and text.startswith(".")):
            raise PathError(f"cannot read path {text!r} at character {position + 1}; write dotted keys with [i] "
                            f"indexes, e.g. layers.c1.out, layers[3].dilation or train.lr")
        tokens.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not tokens or not isinstance(tokens[0], str):
        raise PathError(f"path {text!r} must start with a top-level key such as layers, defaults, blocks or train")
    return tuple(tokens)


def show_path(tokens: tuple[Token, ...]) -> str:
    text = ""
    for token in tokens:
        text += f"[{token}]" if isinstance(token, int) else (f".{token}" if text else token)
    return text


def _named(items: list[Any], name: str, where: tuple[Token, ...]) -> int:
    """Index of the one item of ``items`` whose ``name`` is ``name``."""
    names = [item.get("name") for item in items if isinstance(item, dict)]
    found = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get("name") == name]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise PathError(f"{show_path(where)} has {len(found)} items named {name!r}; use an index like "
                        f"{show_path(where)}[{found[0]}]")
    known = [n for n in names if isinstance(n, str)]
    listed = ", ".join(known) if known else "none of its items has a name; use an index like [0]"
    raise PathError(f"{show_path(where)} has no item named {name!r}{suggest(name, known)}; names: {listed}")


def allowed_keys(prefix: tuple[Token, ...], parent: dict[str, Any], base: dict[str, Any]) -> tuple[str, ...]:
    """Keys that may be added to the mapping at ``prefix`` (fields the spec left at their defaults)."""
    if prefix == ():
        return tuple(SpecFile.model_fields)
    if prefix == ("train",):
        return tuple(TrainConfig.model_fields)
    if prefix == ("defaults",):
        return OPS
    if len(prefix) == 2 and prefix[0] == "defaults" and prefix[1] in LAYER_MODELS:
        return tuple(k for k in LAYER_MODELS[str(prefix[1])].model_fields if k not in ("op", "name", "repeat"))
    if prefix == ("constraints",):
        return tuple(Constraints.model_fields)
    if len(prefix) == 2 and prefix[0] == "constraints" and prefix[1] in BOUNDED:
        return tuple(Bound.model_fields)
    op, use = parent.get("op"), parent.get("use")
    if isinstance(op, str) and op in LAYER_MODELS:
        return tuple(LAYER_MODELS[op].model_fields)
    if isinstance(use, str):
        block = base.get("blocks", {}).get(use)
        params = block.get("params", {}) if isinstance(block, dict) else {}
        return ("name", "repeat", *(params if isinstance(params, dict) else {}))
    return ()


def locate(data: dict[str, Any], tokens: tuple[Token, ...], *, create: bool = False) -> tuple[Any, Token]:
    """The container that holds the value at ``tokens``, and the key or index of the value in it.

    With ``create``, missing mappings along the way (``train``, ``defaults.conv``) are added; without it,
    the path is checked against ``data`` and every problem is a :class:`PathError`.
    """
    node: Any = data
    for depth, token in enumerate(tokens):
        here = tokens[:depth]
        last = depth == len(tokens) - 1
        if isinstance(node, list):
            if isinstance(token, str):
                token = _named(node, token, here)
            elif token >= len(node):
                raise PathError(f"{show_path(here)} has {len(node)} items; index {token} is past its end")
            if last:
                return node, token
            node = node[token]
            continue
        if not isinstance(node, dict):
            raise PathError(f"{show_path(here)} is {type(node).__name__} {node!r}, not a mapping or a list; "
                            f"{show_path(tokens)} goes through it")
        if isinstance(token, int):
            raise PathError(f"{show_path(here) or 'the spec'} is a mapping; use a key, not [{token}]")
        if token not in node:
            allowed = allowed_keys(here, node, data)
            if token not in allowed:
                where = show_path(here) or "the spec's top level"
                hint = suggest(token, list(allowed) or list(node))
                keys = ", ".join(sorted(allowed) if allowed else map(str, node))
                raise PathError(f"{where} has no key {token!r}{hint}; {'allowed' if allowed else 'keys'}: {keys}")
            if last:
                return node, token
            if create:
                node[token] = {}
            else:
                node = {}
                continue
        if last:
            return node, token
        node = node[token]
    raise PathError("empty path")  # pragma: no cover - parse_path never returns an empty path


def apply(base: dict[str, Any], settings: list[tuple[tuple[Token, ...], Any]]) -> dict[str, Any]:
    """A deep copy of ``base`` with each value set at its path (in order)."""
    data = copy.deepcopy(base)
    for tokens, value in settings:
        container, key = locate(data, tokens, create=True)
        container[key] = copy.deepcopy(value)
    return data
