"""How a report is printed: the ``--format`` vocabulary of `table`, `inspect` and `sweep`.

Its own module, free of rich, so that the command line can name the choices without importing the renderers.
"""
from __future__ import annotations

from enum import Enum


class TableFormat(str, Enum):
    """How a report is printed: by `table`, `inspect` and every command that shows a report."""

    rich = "rich"
    markdown = "markdown"
    csv = "csv"
    json = "json"
