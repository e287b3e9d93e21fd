"""A seeded generator of small random spec dicts, for property tests of the calculator and the builder.

Torch-free. ``random_spec(seed)`` is deterministic; it mixes strides, dilations, explicit, ``same`` and
``valid`` paddings, depthwise and separable convs, grouped convs, every norm and activation, pools with and
without ``ceil_mode``, parallels (concat and add, aligned and with different centres — among them branches
whose windows are off-centre and not nested, where the merged RF is the union and not the larger of the two),
residuals with and without shortcut convs (strided 2x2 shortcuts too), blocks, repeats and vector heads.

The layers come from the op registry: each op's own ``random`` rule (:mod:`rfcalc.ops`), so an op added to the
registry is drawn here without touching this file (shape-keeping ops anywhere in the body, vector ops in the
head). Inputs stay at most 32x32 and channels at most 8, so the module of a spec runs in milliseconds. Not every
draw is valid (a spatial size can reach zero, two paths can disagree); :func:`valid_specs` keeps the ones that load.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from rfcalc.analysis.load import Spec, load_spec
from rfcalc.errors import SpecError
from rfcalc.ops.activation import ACT_NAMES
from rfcalc.ops.conv import random_conv, random_norm
from rfcalc.ops.pool import random_pool
from rfcalc.ops.registry import REGISTRY
from rfcalc.table.report import Shape

Layer = dict[str, Any]


def registry_layer(rng: random.Random, shape: Shape, *, keep_shape: bool) -> Layer | None:
    """A layer of a registered op drawn at random that applies to ``shape`` (and keeps it, if asked)."""
    names = list(REGISTRY)
    rng.shuffle(names)
    for name in names:
        drawn = REGISTRY[name].random(rng, shape)
        if drawn is not None and (not keep_shape or drawn[1] == shape):
            return drawn[0]
    return None


def _k_eff(layer: Layer) -> int:
    return int(layer.get("dilation", 1)) * (int(layer["k"]) - 1) + 1


def _parallel(rng: random.Random, channels: int) -> tuple[Layer, int]:
    merge = rng.choice(("concat", "add"))
    out = rng.randint(1, 8)
    strided = rng.random() < 0.3
    paths, total = [], 0
    need = out if merge == "add" else None
    for _ in range(rng.randint(2, 3)):
        choice = rng.random()
        if strided:
            layer, c = random_conv(rng, channels, stride=2, out=need)
            k_eff = _k_eff(layer)
            layer["padding"] = (k_eff - 1) // 2 if k_eff % 2 else k_eff // 2
            path = [layer]
        elif choice < 0.15 and need in (None, channels):
            path, c = [], channels
        elif choice < 0.3 and need in (None, channels):
            path, c = [random_pool(rng, keep_size=True)], channels
        else:
            path, c = [], channels
            for _ in range(rng.randint(1, 2)):
                layer, c = random_conv(rng, c, keep_size=True, out=need)
                path.append(layer)
        paths.append(path)
        total += c
    layer = {"op": "parallel", "merge": merge, "paths": paths}
    if rng.random() < 0.4:
        layer["act"] = rng.choice(ACT_NAMES)
    return layer, (out if merge == "add" else total)


def _off_centre(rng: random.Random, channels: int) -> tuple[Layer, int]:
    """Two stride-2 branches whose windows have different centres on an even input: a ceil-mode 3x3 pool (window
    [0, 2] of unit 0) beside a padded 3x3 conv ([-1, 1]), whose union [-1, 2] is wider than either; or a 2x2 conv
    ([0, 1]) beside it, nested but off-centre. Listed in either order."""
    conv: Layer = {"op": "conv", "out": channels, "k": 3, "stride": 2, "padding": 1}
    if rng.random() < 0.5:
        other: Layer = {"op": rng.choice(("maxpool", "avgpool")), "k": 3, "stride": 2, "ceil_mode": True}
    else:
        other = {"op": "conv", "out": channels, "k": 2, "stride": 2}
    random_norm(rng, conv, channels)
    paths = [[conv], [other]]
    rng.shuffle(paths)
    merge = rng.choice(("concat", "add"))
    return {"op": "parallel", "merge": merge, "paths": paths}, (2 * channels if merge == "concat" else channels)


def _residual(rng: random.Random, channels: int) -> tuple[Layer, int]:
    downsample = rng.random() < 0.4
    out = channels if not downsample and rng.random() < 0.6 else rng.randint(1, 8)
    body, c = [], channels
    depth = rng.randint(1, 2)
    for i in range(depth):
        need = out if i == depth - 1 else None
        if downsample and i == 0:
            layer, c = random_conv(rng, c, stride=2, out=need)
            layer["k"], layer["padding"] = 3, 1
            layer.pop("dilation", None)
        else:
            layer, c = random_conv(rng, c, keep_size=True, out=need)
        body.append(layer)
    residual: Layer = {"op": "residual", "body": body}
    if downsample or out != channels:
        shortcut: Layer = {"op": "conv", "out": out, "k": 1}
        if downsample:
            shortcut["stride"] = 2
            if rng.random() < 0.5:  # a strided 2x2 shortcut: its window is off-centre from the body's
                shortcut["k"] = 2
        residual["shortcut"] = [shortcut]
    if rng.random() < 0.5:
        residual["act"] = rng.choice(ACT_NAMES)
    return residual, out


def random_spec(seed: int) -> dict[str, Any]:
    """A random spec dict (not always valid); the same seed gives the same dict."""
    rng = random.Random(seed)
    channels = rng.randint(1, 4)
    size = rng.choice((rng.randint(8, 32), [rng.randint(8, 32), rng.randint(8, 32)]))
    spec: dict[str, Any] = {"version": 1, "name": f"random-{seed}", "input": {"channels": channels, "size": size}}
    layers: list[Layer] = []
    use_block = rng.random() < 0.2
    if use_block:
        spec["blocks"] = {"unit": {"params": {"out": None, "d": 1}, "layers": [
            {"op": "conv", "groups": "depthwise", "k": 3, "padding": "same", "dilation": "$d"},
            {"op": "conv", "out": "$out", "k": 1, "act": "relu"}]}}
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.4:
            layer, channels = random_conv(rng, channels)
        elif kind < 0.5:
            layer = random_pool(rng)
        elif kind < 0.6:
            layer = registry_layer(rng, (channels, 8, 8), keep_shape=True) or {"op": "relu"}
        elif kind < 0.7:
            layer, channels = _parallel(rng, channels)
        elif kind < 0.8:
            layer, channels = _off_centre(rng, channels)
        elif kind < 0.95:
            layer, channels = _residual(rng, channels)
        elif use_block:
            channels = rng.randint(1, 8)
            layer = {"use": "unit", "out": channels, "d": rng.randint(1, 2)}
        else:
            layer = random_pool(rng)
        if rng.random() < 0.1 and layer.get("op") not in ("parallel", "residual"):
            layer["repeat"] = 2
        layers.append(layer)
    if rng.random() < 0.4:
        tail = rng.choice(("gap", "flatten"))
        layers.append({"op": tail} if tail == "flatten" or rng.random() < 0.5 else {"op": "gap", "mode": "max"})
        if rng.random() < 0.5:
            layers.append({"op": "ultimus", "dim": rng.randint(1, 4)})
        layers.append({"op": "linear", "out": rng.randint(2, 10)})
        if rng.random() < 0.3:
            head = registry_layer(rng, (channels,), keep_shape=True)  # the vector before the linear (gap: channels)
            layers.insert(-1, head or {"op": "dropout"})
    for i, layer in enumerate(layers):
        if rng.random() < 0.3:
            layer["name"] = f"L{i}"
    spec["layers"] = layers
    return spec


def valid_specs(count: int, first_seed: int = 0, max_draws: int | None = None) -> Iterator[tuple[int, Spec]]:
    """``count`` valid specs (seed, loaded spec), skipping draws the core rejects."""
    found, seed = 0, first_seed
    limit = max_draws if max_draws is not None else 20 * count
    while found < count and seed - first_seed < limit:
        try:
            spec = load_spec(random_spec(seed))
        except SpecError:
            seed += 1
            continue
        yield seed, spec
        found += 1
        seed += 1
