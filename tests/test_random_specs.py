"""At least 200 random valid specs agree with their modules: parameters, every row's shape, gradient windows.

The generator (rfcalc.spec.random_specs) is seeded, so a failure names the seed that reproduces it:
``rfcalc.load_spec(rfcalc.spec.random_specs.random_spec(SEED))``.
"""
from __future__ import annotations

import pytest

from rfcalc.model.oracle import module_problems
from rfcalc.spec.random_specs import random_spec, valid_specs

COUNT = 200


pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def test_random_specs_agree_with_their_modules() -> None:
    checked, rows, failures = 0, 0, []
    ops: set[str] = set()
    for seed, spec in valid_specs(COUNT):
        problems = module_problems(spec)
        if problems:
            failures.append(f"seed {seed}: {problems[:3]}")
        checked += 1
        rows += sum(row.is_feature_map for row in spec.report.rows)
        ops |= {row.op for row in spec.report.rows}
    assert not failures, "\n".join(failures)
    assert checked >= COUNT
    assert rows > 10 * COUNT
    assert {"conv", "maxpool", "avgpool", "concat", "add", "gap", "bn", "gn", "ln", "ultimus", "linear"} <= ops


def test_the_generator_covers_the_contract() -> None:
    """Over the specs tested: strides, dilations, every padding form, depthwise, separable, pools, merges."""
    seen: set[str] = set()
    for seed, spec in valid_specs(COUNT):
        text = repr(random_spec(seed))
        for feature in ("'stride'", "'dilation'", "'same'", "'valid'", "'depthwise'", "'separable'", "'ceil_mode'",
                        "'shortcut'", "'merge': 'add'", "'merge': 'concat'", "'use'", "'repeat'"):
            if feature in text:
                seen.add(feature)
        seen |= {d.code for d in spec.report.diagnostics}
    wanted = {"'stride'", "'dilation'", "'same'", "'valid'", "'depthwise'", "'separable'", "'ceil_mode'",
              "'shortcut'", "'merge': 'add'", "'merge': 'concat'", "'use'", "'repeat'", "misaligned-merge"}
    assert wanted <= seen, wanted - seen


def test_generator_is_deterministic() -> None:
    assert random_spec(7) == random_spec(7)
    assert random_spec(7) != random_spec(8)
