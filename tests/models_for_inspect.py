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
             f"  - {{op: conv, name: conv1, out: {width}, k: 7, stride: 2, padding: 3, act: relu}}\n",
             "  - {op: maxpool, k: 3, stride: 2, padding: 1}\n"]
    for layer, (planes, blocks, stride) in enumerate(((width, 3, 1), (width * 2, 4, 2), (width * 4, 6, 2),
                                                      (width * 8, 3, 2)), start=1):
        for i in range(blocks):
            lines.append(bottleneck(f"layer{layer}_{i}", planes, stride if i == 0 else 1, i == 0))
    return "".join(lines)


# -- issue 14: the patterns of torchvision's zoo and of the seeds, written by hand --------------------------------
# (torchvision is not a dependency: its PyPI wheels are built against CUDA torch and do not import beside the
# CPU wheel; these follow its code: shufflenetv2.py, convnext.py, vision_transformer.py, ops/misc.py)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


def conv_bn_relu(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1, relu: bool = True
                 ) -> nn.Sequential:
    padding = (k - 1) // 2
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, padding, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNet v2 InvertedResidual: chunk (stride 1) or two branches (stride 2), concat,
    channel shuffle."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn_relu(inp, inp, 3, stride, groups=inp, relu=False),
                                         conv_bn_relu(inp, branch))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(conv_bn_relu(inp if stride > 1 else branch, branch),
                                     conv_bn_relu(branch, branch, 3, stride, groups=branch, relu=False),
                                     conv_bn_relu(branch, branch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class TinyShuffleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(3, 8, 3, 2)
        self.stage = nn.Sequential(ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1))
        self.conv5 = conv_bn_relu(16, 32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.stage(self.conv1(x)))
        return self.fc(x.mean([2, 3]))


class Permute(nn.Module):
    """torchvision.ops.misc.Permute."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision.ops.stochastic_depth."""
    if not training or p == 0.0:
        return x
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * noise.div_(1.0 - p)


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)


class LayerNorm2d(nn.Module):
    """ConvNeXt's channels-first layer norm written by hand (facebookresearch/ConvNeXt)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: depthwise 7x7, channels-last LayerNorm / Linear / GELU / Linear, permute
    back, layer scale (C, 1, 1), stochastic depth, residual."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, p: float = 0.1) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]),
                                   nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
                                   nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(p, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.layer_scale * self.block(x)
        result = self.stochastic_depth(result)
        result += x
        return result


class TinyConvNeXt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), LayerNorm2d(8))
        self.stage1 = CNBlock(8)
        self.down = nn.Sequential(LayerNorm2d(8), nn.Conv2d(8, 16, 2, stride=2))
        self.stage2 = CNBlock(16)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(16), nn.Flatten(1), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.classifier(self.avgpool(x))


class MLP(nn.Sequential):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, dim),
                         nn.Dropout(0.1))


class EncoderBlock(nn.Module):
    """torchvision's ViT encoder block: LayerNorm, nn.MultiheadAttention (batch first), residual, LayerNorm,
    MLP, residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.dropout = nn.Dropout(0.1)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, 2 * dim)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y


class HandAttention(nn.Module):
    """One-head attention on tokens written by hand: q·kᵀ, softmax, ·v."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.scale = dim ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        attention = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return x + self.out(attention @ v)


class TinyViT(nn.Module):
    """torchvision's VisionTransformer, small: patches by a strided conv, ``flatten(2).transpose(1, 2)``, class
    token, positional embedding, encoder blocks, ``[:, 0]``, head. ``hand=True`` adds an attention written by
    hand after the encoder blocks."""

    def __init__(self, image: int = 16, patch: int = 4, dim: int = 8, heads: int = 2, hand: bool = False) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        tokens = (image // patch) ** 2 + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.layers = nn.Sequential(EncoderBlock(dim, heads), EncoderBlock(dim, heads))
        self.hand = HandAttention(dim) if hand else None
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.layers(x + self.pos_embedding)
        if self.hand is not None:
            x = self.hand(x)
        return self.head(self.ln(x)[:, 0])


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class SENet(nn.Module):
    """A conv, a squeeze-and-excitation gate, a conv, global pooling and a head: every row from the gate on
    sees the whole image."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = conv_bn_relu(3, 16, 3, 2)
        self.se = SqueezeExcitation(16, 4)
        self.c2 = conv_bn_relu(16, 16, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c2(self.se(self.c1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class UltimusBlock(nn.Module):
    """Seed 003's Ultimus block as its report writes it: K, Q, V = Linear(48 -> 8, no bias); AM = softmax of
    QᵀK / √8; Z = V·AM; out = Linear(8 -> 48)."""

    def __init__(self, features: int = 48, dim: int = 8) -> None:
        super().__init__()
        self.k = nn.Linear(features, dim, bias=False)
        self.q = nn.Linear(features, dim, bias=False)
        self.v = nn.Linear(features, dim, bias=False)
        self.out = nn.Linear(dim, features)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, q, v = self.k(x), self.q(x), self.v(x)
        am = F.softmax(q.unsqueeze(2) @ k.unsqueeze(1) / (self.dim ** 0.5), dim=-1)
        z = (v.unsqueeze(1) @ am).squeeze(1)
        return self.out(z)


class UltimusNet(nn.Module):
    """Seed 003 (School_of_AI_Assignment_9) as PyTorch code: its torchsummary lists 25,786 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.conv3 = nn.Conv2d(32, 48, 3)
        self.gap = nn.AvgPool2d(26)
        self.ultimus = nn.Sequential(*(UltimusBlock() for _ in range(4)))
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = self.gap(x).view(-1, 48)
        return self.fc(self.ultimus(x))


class InceptionHead(nn.Module):
    """inception_v3's head: AdaptiveAvgPool2d(1) -> Dropout -> flatten -> fc (the pool is gap)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv_bn_relu(3, 16, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.avgpool(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


class AlexNetHead(nn.Module):
    """alexnet / vgg's head: AdaptiveAvgPool2d((6, 6)) on a 6x6 map (here 4x4), flatten, dropout, linear layers:
    the logits see every pixel though the trunk's window does not. ``crop=True``: a pool without padding drops
    the last row and column of its input (floor), and the logits miss those pixels."""

    def __init__(self, crop: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, padding=0 if crop else 1), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3) if crop else (4, 4))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(8 * (9 if crop else 16), 32), nn.ReLU(inplace=True),
                                        nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class StridedHoles(nn.Module):
    """A 1x1 conv with stride 2 sees every other pixel only: the pooled logits are not global."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 1, stride=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.c(x).mean((2, 3)))


class FunctionalPools(nn.Module):
    """Max pools called as functions (inception's ``F.max_pool2d(x, kernel_size=3, stride=2)``), adaptive too."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.a(x), kernel_size=3, stride=2)
        return F.adaptive_max_pool2d(self.b(x), 7)


class PartialGate(nn.Module):
    """Unpadded convs and pool floors (the last pool drops pixels 30-31), then a squeeze-and-excitation gate: the
    gate sees 30x30 of the 32x32 pixels, so the product is not global, and its window is the full-size map's."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3)
        self.c2 = nn.Conv2d(16, 32, 3)
        self.fc1 = nn.Linear(32, 8)
        self.fc2 = nn.Linear(8, 32)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return self.c3(x * s[:, :, None, None])


class AmaxHead(nn.Module):
    """A global max over the map (``amax``), then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.c(x).amax(dim=(2, 3)))


class AttentionBackToMap(nn.Module):
    """A non-local block: tokens, attention written by hand, back to the map, and a conv on it."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 7, stride=4, padding=3)
        self.o = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = (t @ t.transpose(1, 2)).softmax(-1) @ t
        return self.o(t.transpose(1, 2).reshape(b, c, h, w))


class MixedConv(nn.Module):
    """timm's ``MixedConv2d``: the channels split into pieces, one conv per piece (kernel ``k`` each), the
    results concatenated."""

    def __init__(self, c_in: int, c_out: int, kernels: list[int], depthwise: bool) -> None:
        super().__init__()
        n = len(kernels)
        self.splits_in = [c_in // n + (1 if i < c_in % n else 0) for i in range(n)]
        splits_out = self.splits_in if depthwise else [c_out // n + (1 if i < c_out % n else 0) for i in range(n)]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, k, padding=k // 2, groups=a if depthwise else 1, bias=False)
            for a, b, k in zip(self.splits_in, splits_out, kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(x, self.splits_in, 1)
        return torch.cat([conv(pieces[i]) for i, conv in enumerate(self.convs)], 1)


class MixBlock(nn.Module):
    """MixNet's inverted residual: a mixed depthwise conv (a 9x9 and a 3x3 path, concatenated), batch norm,
    activation and a squeeze-and-excitation gate, then a grouped pointwise conv written as a split into two
    1x1 convs (``conv_pwl``), whose pieces take back each path's channels."""

    def __init__(self, c: int = 16, kernels: tuple[int, ...] = (9, 3), pw_groups: int = 2) -> None:
        super().__init__()
        self.conv_dw = MixedConv(c, c, list(kernels), depthwise=True)
        self.bn1 = nn.BatchNorm2d(c)
        self.act = nn.SiLU()
        self.se_reduce = nn.Conv2d(c, 4, 1)
        self.se_expand = nn.Conv2d(4, c, 1)
        self.conv_pwl = MixedConv(c, c, [1] * pw_groups, depthwise=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv_dw(x)))
        gate = self.se_expand(F.relu(self.se_reduce(y.mean((2, 3), keepdim=True)))).sigmoid()
        y = y * gate
        return x + self.bn2(self.conv_pwl(y))


class MixNet(nn.Module):
    """A stem, two MixNet blocks (the second with three kernels split unevenly against its two pointwise
    groups) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.block1 = MixBlock(16, (9, 3), 2)
        self.block2 = MixBlock(16, (3, 5, 7), 2)
        self.head = nn.Conv2d(16, 32, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(F.relu(self.head(x))), 1))


class ShapeTests(nn.Module):
    """Forwards that branch on the input's size (timm's VGG pre-logits, MobileViT's patch check) and read
    sizes into reshapes: traced for the size inspect is given."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 8, 7)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        if x.shape[-2] < 7 or x.shape[-1] < 7:  # too small for c2: pool up first (not taken at 3x32x32)
            x = F.adaptive_avg_pool2d(x, 7)
        b, c, h, w = x.shape
        if h % 2 != 0:
            x = x[:, :, :-1]
        x = self.c2(x.reshape(b, c, h * w).reshape(b, c, h, w))
        return self.fc(x.mean((2, 3)))


class Res2NetBlock(nn.Module):
    """Res2Net's bottleneck (timm ``res2net.py``): the channels split into ``scale`` pieces, each 3x3 conv fed
    by its piece plus the previous conv's output, the last piece passed on unchanged (``spx[-1]``); EdgeNeXt's
    split-depthwise encoder does the same with ``chunk`` (``use_chunk``)."""

    def __init__(self, c: int = 16, scale: int = 4, use_chunk: bool = False) -> None:
        super().__init__()
        self.width = c // scale
        self.scale = scale
        self.use_chunk = use_chunk
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.convs = nn.ModuleList(nn.Conv2d(self.width, self.width, 3, padding=1, bias=False)
                                   for _ in range(scale - 1))
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        spx = out.chunk(self.scale, 1) if self.use_chunk else torch.split(out, self.width, 1)
        spo = []
        sp = spx[0]
        for i, conv in enumerate(self.convs):
            if i > 0:
                sp = sp + spx[i]
            sp = F.relu(conv(sp))
            spo.append(sp)
        spo.append(spx[-1])
        out = torch.cat(spo, 1)
        return F.relu(self.conv3(out) + x)


class Res2Net(nn.Module):
    def __init__(self, use_chunk: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.block = Res2NetBlock(16, 4, use_chunk)
        self.last = nn.Conv2d(8, 8, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.stem(x))
        parts = torch.unbind(y.view(y.size(0), 4, 4, y.size(2), y.size(3)), 1)
        return self.last(torch.cat([parts[-1], parts[0]], 1))


class SpaceToDepth(nn.Module):
    """TResNet's stem (timm ``space_to_depth.py``): each 4x4 block of pixels folded into the channels by
    ``view`` / ``permute`` / ``view``; ``channels_first`` picks the other order of the folded channels."""

    def __init__(self, block: int = 4, channels_first: bool = False) -> None:
        super().__init__()
        self.bs = block
        self.channels_first = channels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        x = x.view(n, c, h // self.bs, self.bs, w // self.bs, self.bs)
        order = (0, 1, 3, 5, 2, 4) if self.channels_first else (0, 3, 5, 1, 2, 4)
        x = x.permute(*order).contiguous()
        return x.view(n, c * self.bs * self.bs, h // self.bs, w // self.bs)


class TResNetStem(nn.Module):
    def __init__(self, channels_first: bool = False) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.s2d = SpaceToDepth(4, channels_first)
        self.conv = nn.Conv2d(64, 16, 3, padding=1)
        self.s2d2 = SpaceToDepth(2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(self.s2d(self.c0(x))))
        return self.fc(self.s2d2(x).mean((2, 3)))


class UpsampleNet(nn.Module):
    """HRNet's fusion (timm ``hrnet.py``): a strided branch upsampled back (``nn.Upsample`` nearest, or
    ``F.interpolate`` bilinear) and added to the full-resolution branch; a transposed conv decoder."""

    def __init__(self, mode: str = "nearest") -> None:
        super().__init__()
        self.mode = mode
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.high = nn.Conv2d(8, 8, 3, padding=1)
        self.low = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.low2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.deconv = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        low = self.low2(F.relu(self.low(x)))
        if self.mode == "nearest":
            up = self.up(self.up(low))
        else:
            up = F.interpolate(low, scale_factor=4, mode="bilinear", align_corners=self.mode == "corners")
        y = self.high(x) + up
        return self.head(self.deconv(y))


class FusedAttention(nn.Module):
    """timm's ``Attention`` (``timm/layers/attention.py``): one qkv linear, ``reshape(B, N, 3, heads, d)``,
    ``permute(2, 0, 3, 1, 4)``, ``unbind(0)``, then ``F.scaled_dot_product_attention`` (``fused``) or the same
    written by hand with ``qkv[0], qkv[1], qkv[2]``."""

    def __init__(self, dim: int, heads: int = 2, fused: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.fused:
            q, k, v = qkv.unbind(0)
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class TimmViT(nn.Module):
    """A small timm-style ViT: patch embedding, class token, positions, pre-norm blocks with fused-qkv
    attention, the class token's vector."""

    def __init__(self, fused: bool = True, dim: int = 8) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 17, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = FusedAttention(dim, 2, fused)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 16), nn.GELU(), nn.Linear(16, dim))
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.head(x[:, 0])


class Affine(nn.Module):
    """ResMLP's affine (timm ``mlp_mixer.py``): ``torch.addcmul(beta, alpha, x)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones((1, 1, dim)))
        self.beta = nn.Parameter(torch.zeros((1, 1, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.alpha, x)


class ResMLPish(nn.Module):
    """Patches, ResMLP's affine and token-mixing linear, EdgeNeXt's cross-covariance attention (``F.normalize``
    along the tokens, scores between channels), a bias-only attention mask, Swin's zero pad (channels-last)."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.norm = Affine(dim)
        self.mix = nn.Linear(16, 16)
        self.bias = nn.Parameter(torch.zeros(16, 16))
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.patch(x)
        y = F.pad(y.permute(0, 2, 3, 1), (0, 0, 0, 0, 0, 0)).permute(0, 3, 1, 2)  # a pad of nothing
        t = self.norm(y.flatten(2).transpose(1, 2))                               # N x D
        t = t + self.mix(t.transpose(1, 2)).transpose(1, 2)                       # token mixing
        q = F.normalize(t.transpose(1, 2), dim=-1)                                # D x N, along the tokens
        covariance = (q @ q.transpose(1, 2)).softmax(-1)                          # D x D
        t = (covariance @ q).transpose(1, 2)
        t = F.scaled_dot_product_attention(t, t, t, attn_mask=self.bias)
        return self.head(t.mean(1))


class LinearNorm(nn.Module):
    """LeViT's ``LinearNorm``: a linear layer, then BatchNorm1d over the tokens folded into the batch."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.linear = nn.Linear(a, b, bias=False)
        self.bn = nn.BatchNorm1d(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class TinyLeViT(nn.Module):
    """LeViT's patterns: a conv stem, tokens, LinearNorm, attention with a learned bias added to the scores,
    a token subsample ``x.view(B, h, w, C)[:, ::2, ::2]`` (``Downsample``), the mean over tokens."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 3, stride=2, padding=1)
        self.qkv = LinearNorm(dim, 3 * dim)
        self.bias = nn.Parameter(torch.zeros(64, 64))
        self.mlp = LinearNorm(dim, dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2)                     # 64 tokens of an 8x8 grid
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        t = t + ((q @ k.transpose(-2, -1)) + self.bias).softmax(-1) @ v
        b, n, c = t.shape
        t = t.view(b, 8, 8, c)[:, ::2, ::2].reshape(b, -1, c)           # 16 tokens of a 4x4 grid
        t = t + self.mlp(F.relu(t))
        return self.head(t.mean(1))


class StridedPick(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.c1(x)[:, :, ::2, ::3])


class PixelShuffles(nn.Module):
    """``nn.PixelUnshuffle`` (space-to-depth) and ``nn.PixelShuffle`` / ``F.pixel_shuffle`` (depth-to-space)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.down = nn.PixelUnshuffle(2)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.up = nn.PixelShuffle(2)
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.c2(self.down(self.c1(x))))
        return self.c3(F.pixel_shuffle(torch.cat([y, y, y, y], 1), 2)[:, :, ::2, ::2] + y)


class ConvAttention(nn.Module):
    """CoAtNet's attention on a map (timm ``maxxvit.py``, ``head_first=False``): a 1x1 conv qkv,
    ``reshape(B, 3, heads, d, -1).unbind(1)``, ``F.scaled_dot_product_attention`` on the transposed pieces with a
    relative position bias, back to a map by ``transpose(-1, -2).reshape(B, -1, H, W)``, a 1x1 conv."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.stem = nn.Conv2d(3, dim, 3, stride=2, padding=1)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.rel_pos = nn.Parameter(torch.zeros(heads, 64, 64))
        self.proj = nn.Conv2d(dim, dim, 1)
        self.head = nn.Conv2d(dim, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, -1).unbind(1)
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2),
                                           attn_mask=self.rel_pos)
        y = self.proj(y.transpose(-1, -2).reshape(b, -1, h, w))
        return self.head(x + y)
