"""Long lines for people, broken where a reader expects: after a separator, never inside an item. Torch-free."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


def wrap_parts(parts: Sequence[str], width: int, sep: str = ", ", indent: str = "  ") -> list[str]:
    """``parts`` joined by ``sep`` on lines of at most ``width`` characters where the items allow, each break right
    after a separator (``sep`` stripped of trailing spaces ends the line), the lines after the first indented by
    ``indent``; an item longer than a line keeps a line of its own."""
    lines: list[str] = []
    tail = sep.rstrip()
    for i, part in enumerate(parts):
        room = len(tail) if i < len(parts) - 1 else 0  # for the separator that may end the line
        if lines and len(lines[-1]) + len(sep) + len(part) + room <= width:
            lines[-1] += sep + part
        elif lines:
            lines[-1] += tail
            lines.append(indent + part)
        else:
            lines.append(part)
    return lines


def wrap_words(text: str, width: int, indent: str = "  ") -> str:
    """Prose on lines of at most ``width`` characters, broken between words (paths and numbers stay whole)."""
    return "\n".join(wrap_parts(text.split(" "), width, sep=" ", indent=indent))


def line_width(console: Any) -> int:
    """Where to wrap a message for a rich ``console``: a terminal's width (or ``$COLUMNS`` when set); written to
    a file or a pipe, nowhere (one grep-able line per message in a log)."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return int(console.width)
    return sys.maxsize


def print_parts(console: Any, parts: Sequence[str], sep: str = ", ", **options: Any) -> None:
    """Print ``parts`` on a rich ``console`` with :func:`wrap_parts` at :func:`line_width` (no highlighting;
    ``options`` go to ``console.print``)."""
    console.print("\n".join(wrap_parts(parts, line_width(console), sep)), highlight=False, soft_wrap=True, **options)
