"""The op registry: every spec op, defined once in its family module, listed here in one table.

To add an op: write its family module (see ``docs/EXTENDING.md``) and add it to :data:`FAMILIES`. The registry
is checked when it is built, at import: duplicate names, a model whose ``op`` does not admit the name, a fold
without an attach stage, and feature tags outside :data:`Feature` are errors; ``tests/test_ops.py`` checks the
rest (every op calculates, builds, exports, inspects, draws random layers and writes itself back).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from rfcalc.ops import (activation, channel_shuffle, conv, dropout, flatten, gap, linear, lppool, merges, norm, pool,
                        se, ultimus)
from rfcalc.ops.base import FeatureTest, OpDef

# The families in the order ops are listed to users (error messages, docs, the schema).
FAMILIES = (conv, pool, gap, norm, activation, dropout, flatten, linear, ultimus, channel_shuffle,
            lppool, se)

# The vocabulary of `require` / `forbid` (contract: `constraints`): the ops' feature tags and the merges'.
Feature = Literal["dilated_conv", "depthwise_conv", "separable_conv", "strided_conv", "maxpool", "avgpool", "gap",
                  "residual", "concat", "linear", "bn", "gn", "ln", "dropout", "ultimus", "channel_shuffle"]
FEATURES: tuple[str, ...] = get_args(Feature)


class RegistryError(ImportError):
    """The op table is inconsistent (raised at import)."""


def _build() -> dict[str, OpDef[Any]]:
    table: dict[str, OpDef[Any]] = {}
    for family in FAMILIES:
        for op in family.OPS:
            if op.name in table:
                raise RegistryError(f"op '{op.name}' is defined twice ({table[op.name].family}, {op.family})")
            allowed = get_args(op.model.model_fields["op"].annotation)
            if op.name not in allowed:
                raise RegistryError(f"op '{op.name}': its model {op.model.__name__} admits op {allowed}")
            if (op.attach is None) != (op.fold is None):
                raise RegistryError(f"op '{op.name}': attach and fold go together")
            unknown = set(op.features) - set(FEATURES)
            if unknown:
                raise RegistryError(f"op '{op.name}': feature tags {sorted(unknown)} are not in Feature")
            table[op.name] = op
    return table


REGISTRY: Mapping[str, OpDef[Any]] = MappingProxyType(_build())


def _feature_tests() -> dict[str, FeatureTest]:
    tests: dict[str, FeatureTest] = {}
    for op in REGISTRY.values():
        tests.update(op.features)
    tests.update(merges.FEATURES)
    missing = [f for f in FEATURES if f not in tests]
    if missing:
        raise RegistryError(f"features {missing} have no test in any op or merge")
    return {feature: tests[feature] for feature in FEATURES}


FEATURE_TESTS: Mapping[str, FeatureTest] = MappingProxyType(_feature_tests())

