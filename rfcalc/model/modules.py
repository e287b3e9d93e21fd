"""The helper modules that built and exported models share: ``activation``, :class:`Parallel`, :class:`Residual`,
:class:`GlobalPool`, :class:`Ultimus`, :class:`SqueezeExcite`. Needs torch.

:mod:`rfcalc.model.export` copies the classes verbatim into exported files, so they use only ``torch``, ``nn``
and ``activation``; an exported file gets ``activation`` written out from the activation table
(:data:`rfcalc.ops.activation.ACTIVATIONS`), which is what this one reads.
"""
from __future__ import annotations

import torch
from torch import nn

from rfcalc.ops.activation import ACTIVATIONS


def activation(name: str) -> nn.Module:
    """The activation module of a spec's act name."""
    module: nn.Module = getattr(nn, ACTIVATIONS[name].module)()
    return module


class Parallel(nn.Module):
    """Paths from the same input (children ``0``, ``1``, ...), joined by concat (channels) or add."""

    def __init__(self, paths: list[nn.Module], merge: str = "concat", act: str | None = None) -> None:
        super().__init__()
        self.merge = merge
        self.n_paths = len(paths)
        self.act = act
        for j, path in enumerate(paths):
            self.add_module(str(j), path)
        if self.act is not None:
            self.add_module(self.act, activation(self.act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [getattr(self, str(j))(x) for j in range(self.n_paths)]
        if self.merge == "concat":
            y = torch.cat(outs, dim=1)
        else:
            y = outs[0]
            for out in outs[1:]:
                y = y + out
        return y if self.act is None else getattr(self, self.act)(y)

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; no shortcut module means the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, act: str | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = act
        if self.act is not None:
            self.add_module(self.act, activation(self.act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.act is None else getattr(self, self.act)(y)


class GlobalPool(nn.Module):
    """Global average or max pool to 1x1, then flatten: (N, C, H, W) -> (N, C)."""

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if self.mode == "avg" else x.amax(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class Ultimus(nn.Module):
    """Seed 003's attention block on a vector of ``features``, one sample at a time.

    q, k, v = Q(x), K(x), V(x) (1 x dim each); A = softmax(qᵀk / √dim) over the last axis (dim x dim);
    z = v·A; out = O(z) (dim -> features). Samples in a batch never mix.
    """

    def __init__(self, features: int, dim: int = 8) -> None:
        super().__init__()
        self.q = nn.Linear(features, dim, bias=False)
        self.k = nn.Linear(features, dim, bias=False)
        self.v = nn.Linear(features, dim, bias=False)
        self.out = nn.Linear(dim, features)
        self.scale = dim ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        attention = torch.softmax(q.unsqueeze(2) * k.unsqueeze(1) * self.scale, dim=-1)
        z = torch.einsum("ni,nij->nj", v, attention)
        out: torch.Tensor = self.out(z)
        return out


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: ``x * gate(expand(act(reduce(mean of x over H x W))))``, the 1x1 convs
    ``reduce`` (channels -> hidden) and ``expand`` (hidden -> channels) with biases; ``gate`` is ``sigmoid`` or
    ``hardsigmoid``. ``gate_of(x)`` is the (N, C, 1, 1) gate alone."""

    def __init__(self, channels: int, hidden: int, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid() if gate == "sigmoid" else nn.Hardsigmoid()

    def gate_of(self, x: torch.Tensor) -> torch.Tensor:
        gate: torch.Tensor = self.gate(self.expand(self.act(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))
        return gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_of(x)
