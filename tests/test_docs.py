"""The docs hold together: every relative link of README.md, CONTRIBUTING.md, docs/ and examples/ leads to a file
(and, with a #fragment, to a heading of it, as GitHub names headings), and CONTRIBUTING.md's layout table names
every subpackage of rfcalc/."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md"),
                *(ROOT / "examples").glob("*.md")])
FENCE = re.compile(r"^```.*?^```[ \t]*$", flags=re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text without fenced blocks and code spans (where brackets are code, not links)."""
    return CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """The #fragments GitHub gives the headings of a Markdown file: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading suffixed -1, -2, ..."""
    slugs: set[str] = set()
    repeats: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            if slug in repeats:
                repeats[slug] += 1
                slugs.add(f"{slug}-{repeats[slug]}")
            else:
                repeats[slug] = 0
                slugs.add(slug)
    return slugs


def test_the_pages_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "CONTRIBUTING.md", "docs/SPEC_FORMAT.md", "docs/train.md", "examples/README.md"} <= names


def test_anchors_are_named_as_github_names_them() -> None:
    readme = anchors(ROOT / "README.md")
    assert {"set-up-fresh-machine-python--311", "exit-codes", "a-worked-example"} <= readme
    assert "62-the-train-section" in anchors(ROOT / "docs" / "SPEC_FORMAT.md")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked here (no network in tests)
            continue
        file, _, fragment = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert broken == [], f"{path.relative_to(ROOT)}: broken links"


def test_contributing_layout_names_every_subpackage() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    table = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)/` \|", table, flags=re.M))
    packages = {p.parent.name for p in (ROOT / "rfcalc").glob("*/__init__.py")}
    assert rows == packages
    modules = {p.name for p in (ROOT / "rfcalc").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert [m for m in sorted(modules) if f"`{m}`" not in table] == []


def test_contributing_names_tests_and_benchmarks_that_exist() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:tests|bench)/[\w/]+\.(?:py|sh))\b", text))
    assert named and [n for n in sorted(named) if not (ROOT / n).is_file()] == []
