"""Normalisations over channels: ``bn`` (batch norm), ``gn`` (group norm), ``ln`` (layer norm over (C, H, W)
with a per-channel affine, i.e. ``GroupNorm(1, C)``). Each keeps the shape and the geometry and has ``2·C``
parameters. The same names are the values of a conv's ``norm`` field (``None`` = no norm).
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel, optional_choice
from rfcalc.ops.rows import channels_divisible, same_geometry
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call

NormName = Literal["bn", "gn", "ln"]
NORM_NAMES: tuple[str, ...] = get_args(NormName)
_CHOICE = optional_choice(NORM_NAMES, "a norm after the conv (bn, gn, ln), or none")
# A field that names a norm or none; "none", null and false become None.
OptionalNorm = Annotated[NormName | None, _CHOICE[0], _CHOICE[1]]
F = "torch.nn.functional"


class NormLayer(LayerModel):
    """A standalone norm; ``groups`` for gn only."""

    op: NormName
    groups: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _groups(self) -> NormLayer:
        if self.op == "gn" and self.groups is None:
            raise ValueError("gn needs groups (the number of groups, a divisor of the channels)")
        if self.op != "gn" and self.groups is not None:
            raise ValueError(f"groups applies to gn only, not {self.op}")
        return self


def rows(op: str, groups: int | None, at: At, flow: Flow, attached_to: str | None = None,
         what: str = "groups") -> list[Row]:
    """The row of norm ``op`` (``groups`` for gn); ``what`` names the field in a message (``norm_groups``)."""
    channels = flow.shape[0]
    if op == "gn":
        channels_divisible(what, groups or 1, channels)
    return [same_geometry(op, at, flow, params=2 * channels, groups=groups if op == "gn" else None,
                          attached_to=attached_to)]


def _calc(layer: NormLayer, at: At, flow: Flow) -> list[Row]:
    return rows(layer.op, layer.groups, at, flow)


def _layer(row: Row) -> NormLayer:
    return NormLayer(op=row.op, groups=row.groups if row.op == "gn" else None)


def _leaf(row: Row, layer: NormLayer) -> Leaf:
    channels = row.out_shape[0]
    if layer.op == "bn":
        return Leaf(row.name, "nn.BatchNorm2d" if row.is_feature_map else "nn.BatchNorm1d", (channels,))
    return Leaf(row.name, "nn.GroupNorm", (layer.groups if layer.op == "gn" else 1, channels))


# -- inspect -------------------------------------------------------------------------------------------------
def _note(affine: bool) -> str | None:
    return None if affine else "a norm without affine parameters (the spec's norms are affine)"


def _dropped(module: Any, momentum: bool) -> tuple[str, ...]:
    """A norm module's settings the spec does not hold (its norms use PyTorch's defaults)."""
    out = [] if module.eps == 1e-5 else [f"eps={module.eps!r}"]
    if momentum and module.momentum != 0.1:
        out.append(f"momentum={module.momentum!r}")
    if momentum and not module.track_running_stats:
        out.append("track_running_stats=False")
    return tuple(out)


def _batchnorm_module(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    return AsLayer(NormLayer(op="bn"), _note(bool(call.module.affine)), _dropped(call.module, True))


def _eps(call: Call) -> tuple[str, ...]:
    """A norm function's ``eps``, when it is not the spec's (PyTorch's default)."""
    eps = call.get("eps", 1e-5)
    return () if eps == 1e-5 else (f"eps={eps!r}",)


def _batchnorm_function(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer

    affine = call.get("weight") is not None and call.get("bias") is not None
    return AsLayer(NormLayer(op="bn"), _note(affine), _eps(call))


def _group_layer(groups: int) -> NormLayer:
    return NormLayer(op="ln") if groups == 1 else NormLayer(op="gn", groups=groups)


def _groupnorm_module(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer

    return AsLayer(_group_layer(int(call.module.num_groups)), _note(bool(call.module.affine)),
                   _dropped(call.module, False))


def _groupnorm_function(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer

    affine = call.get("weight") is not None and call.get("bias") is not None
    return AsLayer(_group_layer(int(call.get("num_groups"))), _note(affine), _eps(call))


_BN_SIG = ("input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-05, "
           "*args, **kwargs")
_GN_SIG = "input, num_groups, weight=None, bias=None, eps=1e-05"
INSPECT: dict[str, InspectRules] = {
    "bn": InspectRules(
        modules={"torch.nn.BatchNorm2d": _batchnorm_module, "torch.nn.BatchNorm1d": _batchnorm_module,
                 "torch.nn.SyncBatchNorm": _batchnorm_module},
        functions=(FunctionRule((f"{F}.batch_norm",), _BN_SIG, _batchnorm_function),)),
    # GroupNorm(1, C) is ln and GroupNorm(g, C) is gn: one rule answers both
    "gn": InspectRules(modules={"torch.nn.GroupNorm": _groupnorm_module},
                       functions=(FunctionRule((f"{F}.group_norm",), _GN_SIG, _groupnorm_function),)),
    "ln": InspectRules(),
}


def _divisors(n: int) -> list[int]:
    return [g for g in range(1, n + 1) if n % g == 0]


def random_groups(rng: random.Random, channels: int) -> int:
    """A group count that divides ``channels``."""
    return rng.choice(_divisors(channels))


def _random(op: str) -> Any:
    def draw(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape]:
        layer: dict[str, Any] = {"op": op}
        if op == "gn":
            layer["groups"] = random_groups(rng, shape[0])
        return layer, shape
    return draw


def _op(name: str, summary: str) -> OpDef[NormLayer]:
    return OpDef(
        name=name, family="norm", summary=summary, model=NormLayer, calc=_calc, layer=_layer, leaf=_leaf,
        ctors=("nn.BatchNorm2d", "nn.BatchNorm1d") if name == "bn" else ("nn.GroupNorm",), positive="identity",
        mixing="pointwise",
        inspect=INSPECT[name], random=_random(name),
        features={name: lambda row, consumers, op=name: row.op == op},  # type: ignore[misc]
        to_spec=lambda row, layer: {"groups": layer.groups} if row.op == "gn" else {},
        attach="norm",
        fold=lambda row, layer: {"norm": row.op, **({"norm_groups": layer.groups} if row.op == "gn" else {})},
        gather=None)


OPS: tuple[OpDef[NormLayer], ...] = (
    _op("bn", "batch norm over channels (BatchNorm2d on maps, BatchNorm1d on vectors), 2·C parameters"),
    _op("gn", "group norm over channels in `groups` groups (GroupNorm), 2·C parameters"),
    _op("ln", "layer norm over (C, H, W) with a per-channel affine (GroupNorm(1, C)), 2·C parameters"),
)
