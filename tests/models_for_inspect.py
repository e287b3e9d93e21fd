"""Hand-written PyTorch models for ``rfcalc inspect`` tests, each with the v1 spec that means the same network.

- :class:`ChainNet`: a plain chain with a dilated, a depthwise and a strided conv;
- :class:`TwoBranchNet`: two branches from the same input joined by ``torch.cat``;
- :class:`ResidualNet`: basic residual blocks with projection shortcuts (a ReLU module reused, as torchvision does);
- :class:`FunctionalNet`: functional-style forward code (``F.conv2d`` on raw parameters, ``+``, ``torch.cat``,
  ``x.mean``, ``F.linear``);
- :func:`resnet50_trunk`: a torchvision-style ResNet-50 (v1.5: stride on the 3x3 conv of a bottleneck), written
  by hand since torchvision is not a dependency; its trunk (through ``layer4``) has RF 427 and jump 32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChainNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, 3, padding=2, dilation=2, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.pw = nn.Conv2d(16, 32, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.down = nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.c1(x)))
        x = F.relu(self.bn2(self.c2(x)))
        x = self.dw(x)
        x = F.relu(self.bn3(self.pw(x)))
        x = F.relu(self.bn4(self.down(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


CHAIN_SPEC = """
version: 1
name: chain
input: {channels: 3, size: 32}
defaults:
  conv: {bias: false}
layers:
  - {op: conv, name: c1, out: 16, padding: 1, norm: bn, act: relu}
  - {op: conv, name: c2, out: 16, padding: 2, dilation: 2, norm: bn, act: relu}
  - {op: conv, name: dw, groups: depthwise, padding: 1}
  - {op: conv, name: pw, out: 32, k: 1, norm: bn, act: relu}
  - {op: conv, name: down, out: 32, stride: 2, padding: 1, norm: bn, act: relu}
  - {op: gap}
  - {op: flatten}
  - {op: linear, out: 10}
"""


class TwoBranchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.mix = nn.Conv2d(32, 32, 1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat([self.a(x), self.b(x)], dim=1)
        x = self.pool(self.act(self.mix(x)))
        x = self.gap(x)
        return self.fc(x.view(x.size(0), -1))


TWO_BRANCH_SPEC = """
version: 1
name: two-branch
input: {channels: 3, size: 32}
layers:
  - {op: conv, name: stem, out: 16, padding: 1, bias: false, norm: bn, act: relu}
  - op: parallel
    name: branches
    merge: concat
    paths:
      - [{op: conv, out: 16, padding: 2, dilation: 2, act: relu}]
      - [{op: conv, out: 8, padding: 1, act: relu}, {op: conv, out: 16, padding: 1, act: relu}]
  - {op: conv, name: mix, out: 32, k: 1, act: relu}
  - {op: maxpool}
  - {op: gap}
  - {op: flatten}
  - {op: linear, out: 10}
"""


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class ResidualNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = BasicBlock(16, 16)
        self.block2 = BasicBlock(16, 32, stride=2)
        self.block3 = BasicBlock(32, 64, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


RESIDUAL_SPEC = """
version: 1
name: residual
input: {channels: 3, size: 32}
defaults:
  conv: {bias: false, norm: bn}
layers:
  - {op: conv, name: stem, out: 16, padding: 1, act: relu}
  - op: residual
    name: block1
    body:
      - {op: conv, out: 16, padding: 1, act: relu}
      - {op: conv, out: 16, padding: 1}
    act: relu
  - op: residual
    name: block2
    body:
      - {op: conv, out: 32, stride: 2, padding: 1, act: relu}
      - {op: conv, out: 32, padding: 1}
    shortcut:
      - {op: conv, out: 32, k: 1, stride: 2}
    act: relu
  - op: residual
    name: block3
    body:
      - {op: conv, out: 64, stride: 2, padding: 1, act: relu}
      - {op: conv, out: 64, padding: 1}
    shortcut:
      - {op: conv, out: 64, k: 1, stride: 2}
    act: relu
  - {op: gap}
  - {op: flatten}
  - {op: linear, out: 10}
"""


class FunctionalNet(nn.Module):
    """Everything in forward is a function call on raw parameters; ``head=False`` stops at the last feature map."""

    def __init__(self, head: bool = True) -> None:
        super().__init__()
        self.head = head
        self.w1 = nn.Parameter(torch.randn(16, 3, 3, 3) * 0.1)
        self.b1 = nn.Parameter(torch.zeros(16))
        self.w_dil = nn.Parameter(torch.randn(16, 16, 3, 3) * 0.1)
        self.w_loc = nn.Parameter(torch.randn(16, 16, 3, 3) * 0.1)
        self.w_more = nn.Parameter(torch.randn(16, 16, 3, 3) * 0.1)
        self.fc_w = nn.Parameter(torch.randn(10, 32) * 0.1)
        self.fc_b = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        y = F.conv2d(x, self.w_dil, None, 1, 2, 2)
        z = F.conv2d(x, self.w_loc, padding=1)
        x = torch.relu(y + z)
        x = F.avg_pool2d(x, 2)
        x = torch.cat([F.conv2d(x, self.w_more, padding=1, stride=1), x], 1)
        if not self.head:
            return x
        x = x.mean((2, 3))
        return F.linear(x, self.fc_w, self.fc_b)


FUNCTIONAL_SPEC = """
version: 1
name: functional
input: {channels: 3, size: 32}
layers:
  - {op: conv, name: c1, out: 16, padding: 1, act: relu}
  - op: parallel
    name: sum
    merge: add
    act: relu
    paths:
      - [{op: conv, out: 16, padding: 2, dilation: 2, bias: false}]
      - [{op: conv, out: 16, padding: 1, bias: false}]
  - {op: avgpool}
  - op: parallel
    name: grow
    merge: concat
    paths:
      - [{op: conv, out: 16, padding: 1, bias: false}]
      - []
  - {op: gap}
  - {op: linear, out: 10}
"""


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (v1.5): 1x1, 3x3 with the stride, 1x1 x4; one ReLU module used thrice.

    ``shortcut_first`` runs the projection shortcut before the body (the same network; only the order of the
    statements in forward changes, which is all a forward-hook RF tool sees).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 shortcut_first: bool = False) -> None:
        super().__init__()
        self.shortcut_first = shortcut_first
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        if self.downsample is not None and self.shortcut_first:
            identity = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None and not self.shortcut_first:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """torchvision.models.resnet50 by hand; ``head=False`` is the trunk (output of ``layer4``)."""

    def __init__(self, width: int = 64, num_classes: int = 1000, head: bool = True,
                 shortcut_first: bool = False) -> None:
        super().__init__()
        self.head = head
        self.shortcut_first = shortcut_first
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, 3)
        self.layer2 = self._make_layer(width * 2, 4, stride=2)
        self.layer3 = self._make_layer(width * 4, 6, stride=2)
        self.layer4 = self._make_layer(width * 8, 3, stride=2)
        if head:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(width * 8 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, self.shortcut_first)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if not self.head:
            return x
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet50_trunk(width: int = 64, shortcut_first: bool = False) -> ResNet50:
    """The ResNet-50 trunk: conv1 .. layer4, no pooling or classifier."""
    return ResNet50(width=width, head=False, shortcut_first=shortcut_first)


def resnet50() -> ResNet50:
    """The full ResNet-50 with its 1000-class head (25,557,032 parameters)."""
    return ResNet50()


def resnet50_trunk_spec(size: int = 224, width: int = 64) -> str:
    """The v1 spec of :func:`resnet50_trunk`."""
    def bottleneck(name: str, planes: int, stride: int, project: bool) -> str:
        shortcut = (f"\n    shortcut: [{{op: conv, out: {planes * 4}, k: 1, stride: {stride}}}]" if project else "")
        return (f"  - op: residual\n    name: {name}\n    body:\n"
                f"      - {{op: conv, out: {planes}, k: 1, act: relu}}\n"
                f"      - {{op: conv, out: {planes}, stride: {stride}, padding: 1, act: relu}}\n"
                f"      - {{op: conv, out: {planes * 4}, k: 1}}{shortcut}\n    act: relu\n")

    lines = [f"version: 1\nname: resnet50-trunk\ninput: {{channels: 3, size: {size}}}\n",
             "defaults:\n  conv: {bias: false, norm: bn}\nlayers:\n",
             "  - {op: conv, name: conv1, out: %d, k: 7, stride: 2, padding: 3, act: relu}\n" % width,
             "  - {op: maxpool, k: 3, stride: 2, padding: 1}\n"]
    for layer, (planes, blocks, stride) in enumerate(((width, 3, 1), (width * 2, 4, 2), (width * 4, 6, 2),
                                                      (width * 8, 3, 2)), start=1):
        for i in range(blocks):
            lines.append(bottleneck(f"layer{layer}_{i}", planes, stride if i == 0 else 1, i == 0))
    return "".join(lines)
