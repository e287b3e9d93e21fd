"""A seeded generator of small random spec dicts, for property tests of the calculator and the builder.

Torch-free. ``random_spec(seed)`` is deterministic; it mixes strides, dilations, explicit,
``same`` and ``valid`` paddings, depthwise and separable convs, grouped convs, every norm and
activation, pools with and without ``ceil_mode``, parallels (concat and add, aligned and with
different centres), residuals with and without shortcut convs, blocks, repeats and vector heads.
Inputs stay at most 32x32 and channels at most 8, so the module of a spec runs in milliseconds.
Not every draw is valid (a spatial size can reach zero, two paths can disagree);
:func:`valid_specs` keeps the ones that load.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from rfcalc.errors import SpecError
from rfcalc.analysis.load import Spec, load_spec

Layer = dict[str, Any]
ACTS = ("none", "relu", "relu6", "leaky_relu", "gelu", "silu")


class _Draw:
    """One spec being drawn; tracks the channel count so that groups and norms divide it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pair(self, low: int, high: int) -> int | list[int]:
        if self.rng.random() < 0.2:
            return [self.rng.randint(low, high), self.rng.randint(low, high)]
        return self.rng.randint(low, high)

    def channels_out(self) -> int:
        return self.rng.randint(1, 8)

    def norm(self, layer: Layer, channels: int) -> None:
        norm = self.rng.choice(("none", "none", "bn", "gn", "ln"))
        if norm == "gn":
            layer["norm_groups"] = self.rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
        if norm != "none":
            layer["norm"] = norm

    def conv(self, channels: int, *, stride: Any = None, keep_size: bool = False, out: int | None = None
             ) -> tuple[Layer, int]:
        """A conv layer and its output channels. ``keep_size``: stride 1 and a size-preserving padding."""
        rng = self.rng
        k, dilation = rng.choice((1, 1, 2, 3, 3, 5)), rng.choice((1, 1, 1, 2, 3))
        layer: Layer = {"op": "conv", "k": k}
        if dilation != 1:
            layer["dilation"] = dilation
        k_eff = dilation * (k - 1) + 1
        if keep_size:
            if k_eff % 2 == 0:
                k, k_eff = k + 1, dilation * k + 1
                layer["k"] = k
            layer["padding"] = rng.choice(("same", (k_eff - 1) // 2))
        else:
            s = stride if stride is not None else rng.choice((1, 1, 1, 2, 2, 3, [1, 2]))
            if s != 1:
                layer["stride"] = s
            layer["padding"] = rng.choice((0, 1, 2, "valid", self.pair(0, 3)))
        kind = rng.random()
        if out is not None:  # the caller needs these channels: plain or separable
            out_ch = out
            layer["out"] = out
            if kind < 0.2:
                layer["separable"] = True
        elif kind < 0.15:
            layer["groups"] = "depthwise"
            out_ch = channels
            if rng.random() < 0.5:
                out_ch = channels * rng.randint(1, 2)
                layer["out"] = out_ch
        elif kind < 0.25 and channels > 1:
            groups = rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
            out_ch = groups * rng.randint(1, max(1, 8 // groups))
            layer.update(groups=groups, out=out_ch)
        elif kind < 0.35:
            layer["separable"] = True
            out_ch = self.channels_out()
            layer["out"] = out_ch
        else:
            out_ch = self.channels_out()
            layer["out"] = out_ch
        self.norm(layer, out_ch)
        act = rng.choice(ACTS)
        if act != "none":
            layer["act"] = act
        if rng.random() < 0.15:
            layer["dropout"] = 0.2
        if rng.random() < 0.3:
            layer["bias"] = False
        return layer, out_ch

    def pool(self, *, keep_size: bool = False) -> Layer:
        rng = self.rng
        op = rng.choice(("maxpool", "avgpool"))
        if keep_size:
            return {"op": op, "k": 3, "stride": 1, "padding": 1}
        k = rng.choice((1, 2, 2, 3))
        layer: Layer = {"op": op, "k": k}
        if rng.random() < 0.4:
            layer["stride"] = rng.randint(1, 3)
        if rng.random() < 0.3:
            layer["padding"] = rng.randint(0, k // 2)
        if rng.random() < 0.3:
            layer["ceil_mode"] = True
        return layer

    def standalone(self, channels: int) -> Layer:
        op = self.rng.choice(("bn", "gn", "ln", "relu", "gelu", "dropout"))
        layer: Layer = {"op": op}
        if op == "gn":
            layer["groups"] = self.rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
        return layer

    def parallel(self, channels: int) -> tuple[Layer, int]:
        rng = self.rng
        merge = rng.choice(("concat", "add"))
        out = self.channels_out()
        strided = rng.random() < 0.3
        paths, total = [], 0
        need = out if merge == "add" else None
        for _ in range(rng.randint(2, 3)):
            choice = rng.random()
            if strided:
                layer, c = self.conv(channels, stride=2, out=need)
                k_eff = _k_eff(layer)
                layer["padding"] = (k_eff - 1) // 2 if k_eff % 2 else k_eff // 2
                path = [layer]
            elif choice < 0.15 and need in (None, channels):
                path, c = [], channels
            elif choice < 0.3 and need in (None, channels):
                path, c = [self.pool(keep_size=True)], channels
            else:
                path, c = [], channels
                for _ in range(rng.randint(1, 2)):
                    layer, c = self.conv(c, keep_size=True, out=need)
                    path.append(layer)
            paths.append(path)
            total += c
        layer = {"op": "parallel", "merge": merge, "paths": paths}
        if rng.random() < 0.4:
            layer["act"] = rng.choice(ACTS[1:])
        return layer, (out if merge == "add" else total)

    def residual(self, channels: int) -> tuple[Layer, int]:
        rng = self.rng
        downsample = rng.random() < 0.4
        out = channels if not downsample and rng.random() < 0.6 else self.channels_out()
        body, c = [], channels
        depth = rng.randint(1, 2)
        for i in range(depth):
            need = out if i == depth - 1 else None
            if downsample and i == 0:
                layer, c = self.conv(c, stride=2, out=need)
                layer["k"], layer["padding"] = 3, 1
                layer.pop("dilation", None)
            else:
                layer, c = self.conv(c, keep_size=True, out=need)
            body.append(layer)
        layer: Layer = {"op": "residual", "body": body}
        if downsample or out != channels:
            shortcut: Layer = {"op": "conv", "out": out, "k": 1}
            if downsample:
                shortcut["stride"] = 2
            layer["shortcut"] = [shortcut]
        if rng.random() < 0.5:
            layer["act"] = rng.choice(ACTS[1:])
        return layer, out


def _k_eff(layer: Layer) -> int:
    return int(layer.get("dilation", 1)) * (int(layer["k"]) - 1) + 1


def random_spec(seed: int) -> dict[str, Any]:
    """A random spec dict (not always valid); the same seed gives the same dict."""
    rng = random.Random(seed)
    draw = _Draw(rng)
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
            layer, channels = draw.conv(channels)
        elif kind < 0.55:
            layer = draw.pool()
        elif kind < 0.65:
            layer = draw.standalone(channels)
        elif kind < 0.8:
            layer, channels = draw.parallel(channels)
        elif kind < 0.95:
            layer, channels = draw.residual(channels)
        elif use_block:
            channels = draw.channels_out()
            layer = {"use": "unit", "out": channels, "d": rng.randint(1, 2)}
        else:
            layer = draw.pool()
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
            layers.insert(-1, {"op": rng.choice(("bn", "dropout", "ln"))})
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
