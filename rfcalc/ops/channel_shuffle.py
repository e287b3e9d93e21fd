"""``channel_shuffle``: ShuffleNet's channel shuffle in ``groups`` groups (C = g·n channels, viewed as g x n,
transposed, flattened back) on a feature map. A permutation of channels: the shape, the RF, the jump and the
centre are unchanged, and there are no parameters; ``groups`` must divide the channels.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from rfcalc.ops.base import At, FunctionRule, InspectRules, Leaf, OpDef
from rfcalc.ops.fields import LayerModel
from rfcalc.ops.norm import random_groups
from rfcalc.ops.rows import channels_divisible, feature_map, same_geometry
from rfcalc.table.geometry import Flow
from rfcalc.table.report import Row, Shape

if TYPE_CHECKING:
    from rfcalc.ops.actions import Action, Call


class ChannelShuffleLayer(LayerModel):
    op: Literal["channel_shuffle"]
    groups: Annotated[int, Field(ge=1, description="the number of groups; it must divide the channels")]


def _calc(layer: ChannelShuffleLayer, at: At, flow: Flow) -> list[Row]:
    channels, _, _ = feature_map("channel_shuffle", flow)  # nn.ChannelShuffle takes (N, C, H, W) only
    channels_divisible("groups", layer.groups, channels)
    return [same_geometry("channel_shuffle", at, flow, groups=layer.groups)]


def _module(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer  # inspect only: `check` never loads actions

    return AsLayer(ChannelShuffleLayer(op="channel_shuffle", groups=int(call.module.groups)))


def _function(call: Call) -> Action:
    from rfcalc.ops.actions import AsLayer

    return AsLayer(ChannelShuffleLayer(op="channel_shuffle", groups=int(call.get("groups"))))


def _random(rng: random.Random, shape: Shape) -> tuple[dict[str, Any], Shape] | None:
    if len(shape) != 3:
        return None
    return {"op": "channel_shuffle", "groups": random_groups(rng, shape[0])}, shape


OP = OpDef(
    name="channel_shuffle", family="channel_shuffle",
    summary="ShuffleNet's channel shuffle in `groups` groups (nn.ChannelShuffle), no parameters",
    model=ChannelShuffleLayer, calc=_calc,
    layer=lambda row: ChannelShuffleLayer(op="channel_shuffle", groups=row.groups),
    leaf=lambda row, layer: Leaf(row.name, "nn.ChannelShuffle", (layer.groups,)),
    ctors=("nn.ChannelShuffle",), positive="keep", mixing="pointwise",
    inspect=InspectRules(modules={"torch.nn.ChannelShuffle": _module},
                         functions=(FunctionRule(("torch.nn.functional.channel_shuffle", "torch.channel_shuffle",
                                                  "torch.native_channel_shuffle"), "input, groups", _function),)),
    random=_random, features={"channel_shuffle": lambda row, c: row.op == "channel_shuffle"},
    to_spec=lambda row, layer: {"groups": layer.groups}, attach=None, fold=None, gather=None)
OPS: tuple[OpDef[ChannelShuffleLayer], ...] = (OP,)
