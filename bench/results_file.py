"""bench/RESULTS.md is shared by several benchmarks: each owns one section between its own markers."""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(tag: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section between ``<!-- tag:begin -->`` and ``<!-- tag:end -->`` (or append it)."""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n{text}{end}\n"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks and comparisons\n\n"
    if begin in current and end in current:
        current = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _: block, current, flags=re.S)
    else:
        current = current.rstrip("\n") + "\n\n" + block
    path.write_text(current, encoding="utf-8")
