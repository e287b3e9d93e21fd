"""A stand-in for torchvision, for ``bench/inspect_zoo.py --timm --stub-torchvision`` only.

timm imports torchvision at import (``FrozenBatchNorm2d``, the transforms' ``InterpolationMode``, dataset classes),
but PyPI's torchvision does not import beside the CPU torch rfcalc's venv has. This package holds those names and
nothing that computes: a model whose forward calls torchvision fails loudly here. Never on rfcalc's own path.
"""
from __future__ import annotations

import enum
import sys
import types
from typing import Any

import torch
from torch import nn

__version__ = "stand-in"


class _Missing:
    """Any other torchvision name: usable in a class statement or a dict, fails when called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torchvision stand-in (bench only): this torchvision feature is not available")


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


class FrozenBatchNorm2d(nn.Module):
    """torchvision's frozen batch norm (a per-channel affine from fixed statistics)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def _missing(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__getattr__ = _missing  # type: ignore[method-assign]
    sys.modules[name] = module
    return module


ops = _module("torchvision.ops")
ops.misc = _module("torchvision.ops.misc", FrozenBatchNorm2d=FrozenBatchNorm2d)
transforms = _module("torchvision.transforms", InterpolationMode=InterpolationMode)
transforms.functional = _module("torchvision.transforms.functional", InterpolationMode=InterpolationMode)
datasets = _module("torchvision.datasets")
utils = _module("torchvision.utils")
models = _module("torchvision.models")
