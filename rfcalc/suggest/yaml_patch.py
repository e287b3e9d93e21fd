"""The fix written into the user's YAML text: each change is spliced in at the position of its node, and every
other character stays as it was (comments, blank lines, key order, flow or block style, quoting).

Why splicing and not a round-trip library: ruamel.yaml 0.19 re-indents the nested path lists of
``arch_specs/two_branch_dilated.yaml`` and drops one of its comments even when nothing is edited; a splice
cannot touch what it does not edit. Positions come from PyYAML (already a base dependency): every node carries
its start and end in the text. The result is parsed again and compared with the edited data the search
evaluated; if they differ (YAML this module does not handle: aliases, a list item on the line of another's
dash), :func:`write_fix` falls back to plain YAML and says that comments were lost.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from rfcalc.errors import SpecError
from rfcalc.spec.source import Key, parse_yaml
from rfcalc.suggest.apply import apply_edits
from rfcalc.suggest.edits import Change, Edit, Op


class _Unsupported(Exception):
    """This layout is beyond the splicer; the caller falls back to a plain dump."""


def format_value(value: Any) -> str:
    """A value as YAML flow text: 2, same, [2, 2], {op: conv, k: 3}."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1, sort_keys=False, allow_unicode=True)
    text = text.rstrip("\n")
    return text[:-4].rstrip("\n") if text.endswith("\n...") else text


def _end(node: yaml.Node) -> int:
    """Where the node's own text ends (block collections: at their last character, not the next token)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return node.end_mark.index
    if isinstance(node, yaml.MappingNode):
        return max((_end(v) for _, v in node.value), default=node.start_mark.index)
    if isinstance(node, yaml.SequenceNode):
        return max((_end(v) for v in node.value), default=node.start_mark.index)
    return node.end_mark.index


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """The end of the line holding the character before ``index`` (before its "\\r\\n" or "\\n")."""
    end = text.find("\n", max(index - 1, 0))
    end = len(text) if end < 0 else end
    return end - 1 if end > 0 and text[end - 1] == "\r" and end - 1 >= index else end


def _find(root: yaml.Node, key: Key) -> tuple[yaml.Node, Any]:
    """The parent collection of ``key`` and the last part of the key (a mapping key or a list index)."""
    node = root
    for part in key[:-1]:
        node = _child(node, part)
    return node, key[-1]


def _child(node: yaml.Node, part: Any) -> yaml.Node:
    found: yaml.Node | None = None
    if isinstance(node, yaml.MappingNode):
        found = next((v for k, v in node.value if k.value == str(part)), None)
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        found = node.value[part]
    if found is None:
        raise _Unsupported(f"no node at {part!r}")
    return found


def _pair_index(node: yaml.MappingNode, name: Any) -> int | None:
    return next((i for i, (k, _) in enumerate(node.value) if k.value == str(name)), None)


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _replace_node(text: str, node: yaml.Node, value: Any) -> str:
    """A value in place of a node. A block collection starts on the line after its key: its flow replacement
    goes on the key's line, after the ':' (or the '-')."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return _splice(text, node.start_mark.index, _end(node), format_value(value))
    j = node.start_mark.index - 1
    while j >= 0 and text[j] in " \t\r\n":
        j -= 1
    if j < 0 or text[j] not in ":-":
        raise _Unsupported("a comment between a key and its block value")
    return _splice(text, j + 1, _end(node), " " + format_value(value))


def _apply(text: str, change: Change, newline: str) -> str:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise _Unsupported("empty document")
    parent, last = _find(root, change.key)
    if isinstance(parent, yaml.MappingNode):
        return _mapping(text, parent, last, change, newline)
    if isinstance(parent, yaml.SequenceNode):
        return _sequence(text, parent, last, change, newline)
    raise _Unsupported("a scalar on the way")


def _mapping(text: str, node: yaml.MappingNode, name: Any, change: Change, newline: str) -> str:
    index = _pair_index(node, name)
    pairs = node.value
    if change.op is Op.REPLACE:
        if index is None:
            raise _Unsupported("replace of a missing key")
        return _replace_node(text, pairs[index][1], change.value)
    if change.op is Op.ADD:
        if index is not None:
            raise _Unsupported("add of an existing key")
        entry = f"{format_value(name)}: {format_value(change.value)}"
        if node.flow_style:
            if not pairs:
                return _splice(text, node.start_mark.index + 1, node.start_mark.index + 1, entry)
            at = _end(pairs[-1][1])
            return _splice(text, at, at, f", {entry}")
        one_line = [(k, v) for k, v in pairs if k.start_mark.line == text.count("\n", 0, _end(v) - 1)
                    and (isinstance(v, yaml.ScalarNode) or getattr(v, "flow_style", False))]
        if not one_line:
            raise _Unsupported("no one-line key to add after")
        at = _line_end(text, _end(one_line[-1][1]))
        indent = " " * pairs[0][0].start_mark.column
        return _splice(text, at, at, f"{newline}{indent}{entry}")
    # remove
    if index is None:
        raise _Unsupported("remove of a missing key")
    key_node, value = pairs[index]
    if node.flow_style:
        if index > 0:
            return _splice(text, _end(pairs[index - 1][1]), _end(value), "")
        if len(pairs) > 1:
            return _splice(text, key_node.start_mark.index, pairs[1][0].start_mark.index, "")
        return _splice(text, key_node.start_mark.index, _end(value), "")
    if index == 0:
        if len(pairs) < 2:
            raise _Unsupported("removing the only key of a block mapping")
        return _splice(text, key_node.start_mark.index, pairs[1][0].start_mark.index, "")
    start = _line_start(text, key_node.start_mark.index)
    if text[start:key_node.start_mark.index].strip():
        raise _Unsupported("a key that shares its line")
    end = _line_end(text, _end(value))
    end = min(len(text), end + len(newline)) if text.startswith(newline, end) else end
    return _splice(text, start, end, "")


def _dash(text: str, item: yaml.Node) -> int:
    """The index of the '-' that starts a block sequence item (it must be on the item's own line)."""
    i = item.start_mark.index - 1
    while i >= 0 and text[i] == " ":
        i -= 1
    if i < 0 or text[i] != "-":
        raise _Unsupported("a list item whose dash is not on its line")
    return i


def _sequence(text: str, node: yaml.SequenceNode, index: Any, change: Change, newline: str) -> str:
    items = node.value
    if not isinstance(index, int):
        raise _Unsupported("a mapping key on a list")
    if change.op is Op.REPLACE:
        return _replace_node(text, items[index], change.value)
    if change.op is Op.ADD:
        entry = format_value(change.value)
        if node.flow_style:
            if index < len(items):
                at = items[index].start_mark.index
                return _splice(text, at, at, f"{entry}, ")
            if items:
                at = _end(items[-1])
                return _splice(text, at, at, f", {entry}")
            return _splice(text, node.start_mark.index + 1, node.start_mark.index + 1, entry)
        indent = " " * node.start_mark.column
        if index == 0:
            at = node.start_mark.index
            return _splice(text, at, at, f"- {entry}{newline}{indent}")
        at = _line_end(text, _end(items[index - 1]))
        return _splice(text, at, at, f"{newline}{indent}- {entry}")
    # remove
    item = items[index]
    if node.flow_style:
        if index > 0:
            return _splice(text, _end(items[index - 1]), _end(item), "")
        if len(items) > 1:
            return _splice(text, item.start_mark.index, items[1].start_mark.index, "")
        return _splice(text, item.start_mark.index, _end(item), "")
    if len(items) == 1:            # the list becomes empty (a parallel's path that becomes the identity)
        return _replace_node(text, node, [])
    dash = _dash(text, item)
    start = _line_start(text, dash)
    if text[start:dash].strip():   # `- - a` (an inner list's first item on its parent's line): pull up the next
        return _splice(text, dash, _dash(text, items[index + 1]), "")
    end = _line_end(text, _end(item))
    end = min(len(text), end + len(newline)) if text.startswith(newline, end) else end
    return _splice(text, start, end, "")


def patch_text(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with every change of ``edits`` spliced in, in order; raises :class:`_Unsupported` on YAML this
    module does not handle."""
    newline = "\r\n" if "\r\n" in text else "\n"
    for edit in edits:
        for change in edit.changes:
            text = _apply(text, change, newline)
    return text


def write_fix(text: str, edits: Sequence[Edit], file: str) -> tuple[str, bool]:
    """The fixed spec's text and whether the original formatting and comments were kept. The text always parses
    to exactly the data the search evaluated."""
    original, _ = parse_yaml(text, file)
    expected = apply_edits(original, edits)
    try:
        patched = patch_text(text, edits)
        if parse_yaml(patched, file)[0] == expected:
            return patched, True
    except (_Unsupported, yaml.YAMLError, SpecError):
        pass
    return yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=100), False
