"""The op registry: every spec op, defined once in its family module, listed here in one table.

To add an op: write its family module (see ``docs/EXTENDING.md``) and list its name in :data:`OPS`. A family
module loads when one of its ops is first looked up in :data:`REGISTRY` (a ``check`` of a spec loads only the
families the spec uses: a pre-commit hook pays for no other) and is checked then: an op it defines that
:data:`OPS` does not list under it, one it lacks, a name defined twice, a model whose ``op`` does not admit the
name, a fold without an attach stage and feature tags outside :data:`Feature` are errors. :func:`load_all` loads
every family and checks what needs them all (every feature has a test); ``tests/test_ops.py`` checks the rest
(every op calculates, builds, exports, inspects, draws random layers and writes itself back).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from rfcalc.ops import merges
from rfcalc.ops.activation import ACT_NAMES
from rfcalc.ops.base import FeatureTest, OpDef

# Every spec op -> its family module (rfcalc.ops.<family>), in the order ops are listed to users (error messages,
# docs, the schema). The activations are the names of the one activation table.
OPS: Mapping[str, str] = MappingProxyType({
    "conv": "conv", "maxpool": "pool", "avgpool": "pool", "gap": "gap", "bn": "norm", "gn": "norm", "ln": "norm",
    **dict.fromkeys(ACT_NAMES, "activation"), "dropout": "dropout", "flatten": "flatten", "linear": "linear",
    "ultimus": "ultimus", "channel_shuffle": "channel_shuffle", "lppool": "lppool", "se": "se",
})
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(OPS.values()))

# The vocabulary of `require` / `forbid` (contract: `constraints`): the ops' feature tags and the merges'.
Feature = Literal["dilated_conv", "depthwise_conv", "separable_conv", "strided_conv", "maxpool", "avgpool", "gap",
                  "residual", "concat", "linear", "bn", "gn", "ln", "dropout", "ultimus", "channel_shuffle"]
FEATURES: tuple[str, ...] = get_args(Feature)


class RegistryError(ImportError):
    """The op table is inconsistent (raised when a family loads)."""


def checked(family: str, ops: tuple[OpDef[Any], ...]) -> dict[str, OpDef[Any]]:
    """The ops a family module defines, by name, once they agree with :data:`OPS` and with themselves."""
    table: dict[str, OpDef[Any]] = {}
    for op in ops:
        if op.name in table:
            raise RegistryError(f"op '{op.name}' is defined twice ({table[op.name].family}, {op.family})")
        if OPS.get(op.name) != family:
            raise RegistryError(f"op '{op.name}' of rfcalc.ops.{family} is not listed under '{family}' in OPS")
        allowed = get_args(op.model.model_fields["op"].annotation)
        if op.name not in allowed:
            raise RegistryError(f"op '{op.name}': its model {op.model.__name__} admits op {allowed}")
        if (op.attach is None) != (op.fold is None):
            raise RegistryError(f"op '{op.name}': attach and fold go together")
        unknown = set(op.features) - set(FEATURES)
        if unknown:
            raise RegistryError(f"op '{op.name}': feature tags {sorted(unknown)} are not in Feature")
        table[op.name] = op
    missing = [name for name, owner in OPS.items() if owner == family and name not in table]
    if missing:
        raise RegistryError(f"rfcalc.ops.{family} does not define {missing}, which OPS lists under it")
    return table


_LOADED: dict[str, OpDef[Any]] = {}


class _Registry(Mapping[str, OpDef[Any]]):
    """Op name -> its :class:`~rfcalc.ops.base.OpDef`; its family module loads at the first lookup of one of its
    ops. Names and membership come from :data:`OPS` without loading anything."""

    def __getitem__(self, name: str) -> OpDef[Any]:
        found = _LOADED.get(name)
        if found is None:
            family = OPS[name]  # KeyError: not an op
            _LOADED.update(checked(family, importlib.import_module(f"rfcalc.ops.{family}").OPS))
            found = _LOADED[name]
        return found

    def __contains__(self, name: object) -> bool:
        return name in OPS

    def __iter__(self) -> Iterator[str]:
        return iter(OPS)

    def __len__(self) -> int:
        return len(OPS)


REGISTRY: Mapping[str, OpDef[Any]] = _Registry()


def load_all() -> Mapping[str, FeatureTest]:
    """Load every family (a :class:`RegistryError` for any inconsistency) and return the test of each feature
    tag, in :data:`FEATURES` order."""
    tests: dict[str, FeatureTest] = {}
    for op in REGISTRY.values():
        tests.update(op.features)
    tests.update(merges.FEATURES)
    missing = [f for f in FEATURES if f not in tests]
    if missing:
        raise RegistryError(f"features {missing} have no test in any op or merge")
    return MappingProxyType({feature: tests[feature] for feature in FEATURES})


def feature_tests(op: str) -> Mapping[str, FeatureTest]:
    """The feature tests that apply to a row of ``op``: its op's own (a registered op), else the merges'."""
    return REGISTRY[op].features if op in OPS else merges.FEATURES
