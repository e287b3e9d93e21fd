"""A small squeeze-and-excitation net for `rfcalc inspect` (README, "Inspecting PyTorch code").

    rfcalc inspect examples/se_net.py:SENet --input 3x32x32

The gate multiplies every unit of `c1`'s map by a 1x1 map computed from all of it (a global average pool), so from
the product on every unit depends on every input pixel: the table marks those rows `global`, and keeps each row's
local window in `rf` as for any other layer.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


class SENet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.c1 = conv_bn_relu(3, 16, stride=2)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 1), nn.Sigmoid())
        self.c2 = conv_bn_relu(16, 32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        x = x * self.excite(self.squeeze(x))
        x = self.c2(x)
        return self.fc(torch.flatten(self.pool(x), 1))
