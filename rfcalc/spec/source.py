"""YAML text -> plain Python data, remembering the line and column of every node.

Errors found later (by pydantic, the expander or the calculator) carry a path such as
``("layers", 3, "dilation")``; :class:`Source` turns it back into ``file:line:col``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rfcalc.errors import Problem, SpecError

Key = tuple[Any, ...]
# libyaml's parser when PyYAML was built with it (about 5x faster on big specs); the pure-Python one otherwise.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Source:
    """Where each node of a loaded document sits in its file (1-based line and column)."""

    file: str
    values: dict[Key, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Key, tuple[int, int]] = field(default_factory=dict)

    def locate(self, key: Key, *, at_key: bool = False) -> tuple[int, int]:
        """Position of the node at ``key``, or of its nearest located ancestor."""
        table = self.keys if at_key else self.values
        probe = tuple(key)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, key: Key, path: str, message: str, *, at_key: bool = False) -> Problem:
        line, col = self.locate(key, at_key=at_key)
        return Problem(self.file, line, col, path, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: Any, source: Source) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, key: Key) -> Any:
        self.source.values[key] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        None, None, "YAML merge keys ('<<') are not supported; use `defaults` or `blocks`",
                        key_node.start_mark)
                k = self.loader.construct_object(key_node, deep=True)
                if not isinstance(k, (str, int, float, bool)) or k is None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"mapping keys must be plain scalars, got {k!r}", key_node.start_mark)
                if k in out:
                    line, col = _mark(key_node)
                    self.problems.append(Problem(self.source.file, line, col, dotted(key + (k,)),
                                                 f"duplicate key {k!r}; each key may appear once"))
                self.source.keys[key + (k,)] = _mark(key_node)
                out[k] = self.build(value_node, key + (k,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, key + (i,)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def dotted(key: Key) -> str:
    """("layers", 3, "dilation") -> "layers[3].dilation": the path of a value as error messages print it."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Contexts opened by one character that a later line can reveal as never closed: (what opened, what went wrong).
_OPENED: dict[str, tuple[str, str]] = {
    "while parsing a flow mapping": ("'{'", "is not closed, or an item before it lacks its ','"),
    "while parsing a flow sequence": ("'['", "is not closed, or an item before it lacks its ','"),
    "while scanning a quoted scalar": ("quote", "is never closed"),
}


def _yaml_problem(file: str, exc: yaml.MarkedYAMLError, text: str = "") -> Problem:
    """A YAML syntax error at the line that causes it: an unclosed '{', '[' or quote is reported where it opens
    (the parser notices only lines later), with where the parser stopped."""
    problem, context = exc.problem_mark, exc.context_mark
    what = exc.problem or exc.context or "invalid YAML"
    if problem is not None and context is not None and context.line != problem.line and exc.context in _OPENED:
        thing, verdict = _OPENED[exc.context]
        return Problem(file, context.line + 1, context.column + 1, "",
                       f"invalid YAML: the {thing} opened here {verdict} (the parser stopped at line "
                       f"{problem.line + 1}, column {problem.column + 1}: {what})")
    mark = problem or context
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
        what += " (a tab: YAML is indented with spaces)"
    return Problem(file, line, col, "", f"invalid YAML: {what}")


def parse_yaml(text: str, file: str) -> tuple[Any, Source]:
    """Parse one YAML document; raise :class:`SpecError` with a located problem when it is not valid YAML."""
    source = Source(file)
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(file, 1, 1, "", "the spec is empty; it needs at least `version`, `name`, "
                                                     "`input` and `layers`")])
        builder = _Builder(loader, source)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(file, exc, text)]) from None
    except yaml.YAMLError as exc:  # reader errors (control characters, bad encoding)
        raise SpecError([Problem(file, 1, 1, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise SpecError(builder.problems)
    return data, source


def read_spec_text(path: Path) -> str:
    """Read a spec file as UTF-8 text, with one-line errors for missing, unreadable, binary or empty files."""
    name = str(path)
    if not path.exists():
        raise SpecError([Problem(name, 1, 1, "", "file not found")])
    if path.is_dir():
        raise SpecError([Problem(name, 1, 1, "", "is a directory, expected a YAML spec file")])
    if path.suffix == ".py":
        raise SpecError([Problem(name, 1, 1, "", f"is Python source, expected a YAML spec file; for a PyTorch module "
                                                 f"name it as FILE.py:NAME, e.g. `rfcalc inspect {name}:Net --input "
                                                 f"3x32x32`")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError([Problem(name, 1, 1, "", f"cannot read file: {exc.strerror}")]) from None
    if b"\x00" in raw:
        raise SpecError([Problem(name, 1, 1, "", "binary file, expected YAML text")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(name, 1, 1, "", f"not UTF-8 text (byte {exc.start}), expected YAML")]) from None
    if not text.strip():
        raise SpecError([Problem(name, 1, 1, "", "the spec file is empty; it needs at least `version`, `name`, "
                                                 "`input` and `layers`")])
    return text
