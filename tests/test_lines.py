"""Long lines broken where a reader expects (rfcalc.lines): after a separator, never inside an item."""
from __future__ import annotations

from rfcalc.lines import wrap_parts, wrap_words


def test_parts_fill_lines_and_break_after_the_separator() -> None:
    parts = ["check: RF 53 > 44 ✓", "params 59,322 < 200,000 ✓", "require gap ✓ (gap)", "forbid maxpool ✓"]
    assert wrap_parts(parts, 50) == ["check: RF 53 > 44 ✓, params 59,322 < 200,000 ✓,",
                                     "  require gap ✓ (gap), forbid maxpool ✓"]
    assert wrap_parts(parts, 200) == [", ".join(parts)]


def test_the_separator_that_ends_a_line_fits_in_it() -> None:
    assert wrap_parts(["aaaa", "bbbb"], 10) == ["aaaa, bbbb"]
    assert wrap_parts(["aaaa", "bbbb", "c"], 10) == ["aaaa,", "  bbbb, c"]


def test_an_item_longer_than_a_line_keeps_one_of_its_own() -> None:
    assert wrap_parts(["wrote /a/very/long/path/metrics.jsonl", "x.png"], 20) == [
        "wrote /a/very/long/path/metrics.jsonl,", "  x.png"]


def test_other_separators_and_indents() -> None:
    assert wrap_parts(["epoch 1/1", "lr 0.2", "942 img/s"], 18, sep="  ") == ["epoch 1/1  lr 0.2", "  942 img/s"]
    assert wrap_parts(["{op: conv", "k: 3}"], 10, indent=" ") == ["{op: conv,", " k: 3}"]
    assert wrap_words("a small CNN usually needs a few hundred steps", 20) == (
        "a small CNN usually\n  needs a few\n  hundred steps")
