"""Issue 14: ``rfcalc inspect`` follows the patterns of torchvision's zoo and of the seeds' attention net, and says
when a unit sees the whole image (``global``).

Each hand-written model (tests/models_for_inspect.py: a ShuffleNet v2 unit, ConvNeXt blocks, a small ViT with
class token and ``nn.MultiheadAttention``, an attention written by hand on tokens, a squeeze-and-excitation
gate, seed 003's Ultimus net as PyTorch code, inception's and alexnet's heads) is inspected and checked against
the gradient oracle (rfcalc.inspection.check): every row's ``global`` flag, the window (RF, start, jump) of
every feature-map row that is not global, and the parameter count. CI has no torchvision (its PyPI wheels are
built against CUDA torch); bench/inspect_zoo.py runs the same check on the real zoo where it imports.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import models_for_inspect as M
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.inspection.api import inspect_module, trace_module
from rfcalc.inspection.check import inspection_problems
from rfcalc.model.oracle import single_thread
from rfcalc.render import report as render

ROOT = Path(__file__).resolve().parents[1]
SMALL = (3, 16, 16)
CIFAR = (3, 32, 32)

PATTERNS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "shufflenet_v2": (M.TinyShuffleNet, CIFAR),
    "convnext": (M.TinyConvNeXt, CIFAR),
    "vit": (M.TinyViT, SMALL),
    "vit_hand_attention": (lambda: M.TinyViT(hand=True), SMALL),
    "squeeze_excitation": (M.SENet, CIFAR),
    "ultimus_seed_003": (M.UltimusNet, CIFAR),
    "inception_head": (M.InceptionHead, CIFAR),
    "alexnet_head": (M.AlexNetHead, CIFAR),
    "alexnet_head_cropping": (lambda: M.AlexNetHead(crop=True), CIFAR),
    "strided_holes": (M.StridedHoles, SMALL),
    "functional_max_pools": (lambda: M.FunctionalPools(), CIFAR),
    "partial_gate": (M.PartialGate, CIFAR),
    "amax_head": (M.AmaxHead, CIFAR),
    "attention_back_to_map": (M.AttentionBackToMap, CIFAR),
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_is_exact_against_the_gradient_oracle(name: str) -> None:
    make, shape = PATTERNS[name]
    model = make()
    inspection = trace_module(model, shape)
    assert inspection.complete, inspection.error
    assert inspection.report.params == sum(p.numel() for p in model.parameters())
    assert inspection_problems(model, shape, inspection=inspection) == []


def test_a_gate_that_misses_pixels_is_not_global_and_says_so() -> None:
    report = inspect_module(M.PartialGate(), CIFAR)
    mul = report.row("mul")
    assert (mul.geo_out.rf, mul.is_global) == ((10, 10), False)  # the full-size map's window
    notes = [d for d in report.diagnostics if d.code == "partial-context"]
    assert [d.message for d in notes] == ["'mul' (mul) broadcasts a 1x1 map that sees 900 of the 1,024 input "
                                          "pixels: every unit also depends on those, beyond its window (rf); not "
                                          "on all, so not global"]


def test_a_conv_after_attention_on_a_rebuilt_map_sees_everything() -> None:
    report = inspect_module(M.AttentionBackToMap(), CIFAR)
    assert [(r.name, r.geo_out.rf[0], r.is_global) for r in report.rows[-2:]] == [("reshape", 7, True),
                                                                                   ("o", 15, True)]


def ops(report: rfcalc.Report) -> list[str]:
    return [r.op for r in report.rows]


def first_global(report: rfcalc.Report) -> str:
    return next(r.name for r in report.rows if r.is_global)


def test_shufflenet_channel_shuffle_is_the_spec_op() -> None:
    report = inspect_module(M.TinyShuffleNet(), CIFAR)
    shuffles = [r for r in report.rows if r.op == "channel_shuffle"]
    assert [(r.groups, r.in_shape, r.out_shape) for r in shuffles] == [(2, (16, 8, 8), (16, 8, 8))] * 2
    # view -> transpose -> contiguous -> view is one row; the chunk's halves are rows of their own
    assert not {"view", "transpose", "contiguous"} & set(ops(report))
    assert [r.out_shape for r in report.rows if r.op == "chunk"] == [(8, 8, 8), (8, 8, 8)]
    assert report.rf == (43, 43) and report.output.geo_out.jump == (4, 4)
    assert first_global(report) == "mean" and report.row("mean").op == "gap"


def test_convnext_channels_last_round_trip() -> None:
    report = inspect_module(M.TinyConvNeXt(), CIFAR)
    block = [r for r in report.rows if r.name.startswith("stage1.block")]
    # permutes are no rows; LayerNorm on the channels, the two Linears as the 1x1 convs they compute, GELU
    # folded into the first, all on C x H x W
    assert [(r.name, r.op, r.out_shape) for r in block] == [
        ("stage1.block.0", "conv", (8, 8, 8)), ("stage1.block.2", "layer_norm", (8, 8, 8)),
        ("stage1.block.3", "conv", (32, 8, 8)), ("stage1.block.4", "gelu", (32, 8, 8)),
        ("stage1.block.5", "conv", (8, 8, 8))]
    assert report.row("stage1.block.4").attached_to == "stage1.block.3"
    assert report.row("stage1.block.3").kernel == (1, 1) and report.row("stage1.block.3").params == 8 * 32 + 32
    # the hand-written LayerNorm2d: per-pixel means over channels, broadcast back
    assert [r.op for r in report.rows[1:11]] == ["mean", "sub", "pow", "mean", "sub", "add_const", "sqrt", "div",
                                                 "mul_const", "add_const"]
    assert report.rows[1].out_shape == (1, 8, 8)
    # layer scale (C, 1, 1) and the LayerNorm2d weights [:, None, None] are counted; stochastic depth is gone
    assert report.params == sum(p.numel() for p in M.TinyConvNeXt().parameters())
    assert not [d for d in report.diagnostics if d.severity != "info"]
    trunk = report.row("stage2")  # the residual add: its block's one merge
    assert trunk.geo_out.rf == (80, 80) and trunk.is_global  # 32x32 image, a 4x4 map whose units see it all
    assert report.row("stage1").geo_out.rf == (28, 28) and not report.row("stage1").is_global
    # functional calls are named after the module whose forward makes them (issue 25 item 12)
    assert [r.name for r in report.rows[1:4]] == ["stem.1.mean", "stem.1.sub", "stem.1.pow"]
    assert report.row("stage1.mul").op == "mul_const"


def test_vit_tokens_class_token_attention() -> None:
    inspection = trace_module(M.TinyViT(), SMALL)
    report = inspection.report
    assert ops(report)[:6] == ["conv", "transpose", "concat_tokens", "add_const", "layer_norm", "attention"]
    assert report.row("transpose").out_shape == (16, 8)          # 4x4 patches, 8 features
    assert report.row("cat").out_shape == (17, 8)                # and the class token
    assert report.row("cat").params == 8 and report.row("add").params == 17 * 8   # class token, positions
    attention = report.row("layers.0.self_attention")
    assert attention.params == 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8
    assert attention.macs == 17 * 8 * 8 * 2 + 17 * 8 * 16 + 2 * 17 * 17 * 8
    # before attention a patch token sees its 4x4 patch (the class token nothing); after, every token sees all
    assert [r.is_global for r in report.rows[:6]] == [False] * 5 + [True]
    assert report.rf == (4, 4) and report.output.geo_out.jump == (4, 4) and report.is_global
    assert report.output.out_shape == (10,) and report.rows[-2].op == "getitem"  # x[:, 0]
    assert render.summary_line(report).endswith("RF 4 · global, jump 4, output 10")


def test_hand_written_attention_on_tokens() -> None:
    report = inspect_module(M.TinyViT(hand=True), SMALL)
    hand = [r for r in report.rows if r.name.startswith("hand.")]
    assert [(r.op, r.out_shape) for r in hand] == [
        ("linear", (17, 8)), ("linear", (17, 8)), ("linear", (17, 8)), ("matmul", (17, 17)),
        ("mul_const", (17, 17)), ("softmax", (17, 17)), ("matmul", (17, 8)), ("linear", (17, 8))]
    assert report.row("hand.matmul").macs == 17 * 8 * 17 and report.row("hand.matmul_1").macs == 17 * 17 * 8


def test_hand_written_attention_on_a_patch_grid_is_global_after_the_softmax() -> None:
    class Scores(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, 4, 4, stride=4)
            self.attention = M.HandAttention(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attention(self.proj(x).flatten(2).transpose(1, 2))

    inspection = trace_module(Scores(), SMALL)
    report = inspection.report
    # q·kᵀ: score (i, j) sees patches i and j; the softmax over j makes row i see every patch
    assert not report.row("attention.matmul").is_global and report.row("attention.softmax").is_global
    assert inspection_problems(Scores(), SMALL, inspection=inspection) == []


def test_ultimus_as_pytorch_code_has_the_numbers_of_its_spec() -> None:
    report = inspect_module(M.UltimusNet(), CIFAR)
    spec = rfcalc.analyze(ROOT / "arch_specs" / "ultimus.yaml")
    assert (report.params, report.macs, report.rf, report.is_global) == \
        (spec.params, spec.macs, spec.rf, spec.is_global) == (25_786, 13_353_632, (32, 32), True)
    # the report's nn.AvgPool2d(26) is a 26x26 pool with stride 26 (jump 26), where the spec wrote gap (jump 1)
    assert report.row("gap").op == "avgpool" and report.output.geo_out.jump == (26, 26)
    assert [r.name for r in report.rows if r.name.startswith("ultimus.0") and r.op == "linear"] == [
        "ultimus.0.k", "ultimus.0.q", "ultimus.0.v", "ultimus.0.out"]
    assert [r.name for r in report.rows if r.name.startswith("ultimus.0.") and r.op == "matmul"] == [
        "ultimus.0.matmul", "ultimus.0.matmul_1"]


def test_inception_head_pool_dropout_flatten_is_gap() -> None:
    report = inspect_module(M.InceptionHead(), CIFAR)
    assert ops(report) == ["conv", "bn", "relu", "gap", "dropout", "flatten", "linear"]
    assert report.output.geo_out.jump == (2, 2) and report.is_global


def test_flatten_linear_head_is_global_and_keeps_its_window() -> None:
    report = inspect_module(M.AlexNetHead(), CIFAR)
    linear = report.row("classifier.1")
    assert linear.geo_out.rf == report.row("features.5").geo_out.rf  # the contract: linear keeps the rf
    assert linear.is_global and not report.row("flatten").is_global
    cropped = inspect_module(M.AlexNetHead(crop=True), CIFAR)  # the pools' floor drops the last pixels
    assert not any(r.is_global for r in cropped.rows)


def test_spec_and_module_agree_on_global() -> None:
    spec = rfcalc.analyze({"version": 1, "name": "g", "input": {"channels": 3, "size": 16}, "layers": [
        {"op": "conv", "name": "c", "out": 4, "k": 1, "stride": 2}, {"op": "gap", "name": "g"},
        {"op": "linear", "name": "fc", "out": 2}]})
    module = inspect_module(M.StridedHoles(), SMALL)
    assert [r.is_global for r in spec.rows] == [r.is_global for r in module.rows] == [False, False, False]


# -- refusals stay clear: the node, the source line, and what rfcalc follows ------------------------------------
def _refusal(model: nn.Module, shape: tuple[int, int, int] = SMALL) -> str:
    with pytest.raises(RfcalcError) as info:
        inspect_module(model, shape)
    message = str(info.value)
    assert "\n" not in message and "test_inspect_patterns.py:" in message
    return message


class _Lambda(nn.Module):
    def __init__(self, body: Callable[[nn.Module, torch.Tensor], torch.Tensor], **modules: nn.Module) -> None:
        super().__init__()
        self.body = body
        for key, value in modules.items():
            self.add_module(key, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self, x)


def test_refusals_name_the_node_and_what_is_followed() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert "'mean' (.mean()) mean over only the image's rows or columns" in _refusal(
        _Lambda(lambda m, x: m.c(x).mean(2), c=conv))
    assert "takes a softmax along the image's rows or columns" in _refusal(
        _Lambda(lambda m, x: F.softmax(m.c(x), dim=-1), c=conv))
    assert "crops the rows or columns of a feature map" in _refusal(_Lambda(lambda m, x: m.c(x)[:, :, 2:], c=conv))
    assert "applies conv to a channels-last feature map (H x W x C); rfcalc follows conv on feature maps" in \
        _refusal(_Lambda(lambda m, x: m.d(m.c(x).permute(0, 2, 3, 1)), c=conv, d=nn.Conv2d(16, 4, 1)))
    assert "splits the rows or columns of the image into blocks" in _refusal(
        _Lambda(lambda m, x: m.c(x).view(x.shape[0], 4, 8, 32).softmax(-1), c=conv))


def test_attention_with_a_mask_is_refused() -> None:
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, 4, 4, stride=4)
            self.attention = nn.MultiheadAttention(4, 1, batch_first=True)
            self.register_buffer("mask", torch.ones(16, 16, dtype=torch.bool).triu(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.proj(x).flatten(2).transpose(1, 2)
            return self.attention(t, t, t, attn_mask=self.mask)[0]

    assert "attention with attn_mask: which tokens each query sees depends on the mask's values" in \
        _refusal(Masked())


class _Tokens(nn.Module):
    """Patch tokens of a 16x16 image (4x4 patches, 4 features) and what ``tail`` does with them."""

    def __init__(self, tail: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 4, stride=4)
        self.fc = nn.Linear(4, 4)
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.fc(self.proj(x).flatten(2).transpose(1, 2)))


@pytest.mark.parametrize("name, tail, shape, is_global", [
    ("a slice of tokens", lambda t: t[:, 1:], (15, 4), False),
    ("one token", lambda t: t[:, 5], (4,), False),
    ("the mean over tokens", lambda t: t.mean(dim=1), (4,), True),
    ("a softmax over tokens", lambda t: t.softmax(dim=1), (16, 4), True),
    ("the halves of the features", lambda t: torch.chunk(t, 2, dim=-1)[1], (16, 2), False),
])
def test_token_operations(name: str, tail: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                          is_global: bool) -> None:
    model = _Tokens(tail)
    inspection = trace_module(model, SMALL)
    assert inspection.complete, inspection.error
    report = inspection.report
    assert report.output.out_shape == shape and report.is_global == is_global
    assert inspection_problems(model, SMALL, inspection=inspection) == []


def test_channels_last_concat_and_add() -> None:
    class ChannelsLast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2)
            self.fc = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = self.a(x).permute(0, 2, 3, 1), self.b(x).permute(0, 2, 3, 1)
            y = self.fc(torch.cat([a, b], dim=-1)) + a
            return y.permute(0, 3, 1, 2)

    inspection = trace_module(ChannelsLast(), SMALL)
    report = inspection.report
    assert [(r.op, r.out_shape) for r in report.rows] == [("conv", (4, 16, 16)), ("conv", (4, 16, 16)),
                                                         ("concat", (8, 16, 16)), ("conv", (4, 16, 16)),
                                                         ("add", (4, 16, 16))]
    assert report.rf == (5, 5)
    assert inspection_problems(ChannelsLast(), SMALL, inspection=inspection) == []
