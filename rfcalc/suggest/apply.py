"""Applying edits to a raw spec (plain dicts and lists), without touching the original.

Only the mappings and lists on the path of a change are copied; everything else is shared with the original, so
a candidate costs a few small copies instead of a deep copy. Nothing downstream mutates a spec dict.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rfcalc.spec.source import Key
from rfcalc.suggest.edits import Change, Edit, Op


def get(data: Any, key: Key) -> Any:
    """The value at ``key`` (raises KeyError / IndexError when it is not there)."""
    for part in key:
        data = data[part]
    return data


def apply_change(data: Any, change: Change) -> Any:
    """``data`` with one change applied (a new object along the path, the rest shared)."""
    return _update(data, change.key, change)


def _update(node: Any, key: Key, change: Change) -> Any:
    head, rest = key[0], key[1:]
    if isinstance(node, dict):
        copy: Any = dict(node)
    elif isinstance(node, list):
        copy = list(node)
    else:
        raise TypeError(f"cannot apply {change.op.value} at {change.path}: {type(node).__name__} on the way")
    if rest:
        copy[head] = _update(node[head], rest, change)
        return copy
    if change.op is Op.REMOVE:
        del copy[head]
    elif change.op is Op.ADD and isinstance(copy, list):
        copy.insert(head, change.value)
    else:
        copy[head] = change.value
    return copy


def apply_edit(data: Any, edit: Edit) -> Any:
    for change in edit.changes:
        data = apply_change(data, change)
    return data


def apply_edits(data: Any, edits: Iterable[Edit]) -> Any:
    for edit in edits:
        data = apply_edit(data, edit)
    return data
