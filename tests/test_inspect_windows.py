"""Issue 26 item 1: Swin's window attention followed exactly (rfcalc.inspection.windows).

A small Swin written as timm writes it (patch embedding conv, window attention with and without a cyclic
shift and its -100 mask, padding to a multiple of the window, patch merging of an even and an odd map, the
hand-written softmax and ``F.scaled_dot_product_attention``), checked row by row against the gradient oracle
(rfcalc.inspection.check): each unit's pixels exactly, inside the row's window (the hull of contract 6.6),
``global`` only where every unit sees every pixel, parameters.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rfcalc.inspection.api import trace_module
from rfcalc.inspection.check import inspection_problems
from rfcalc.model.oracle import single_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield



def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    C = windows.shape[-1]
    x = windows.view(-1, H // ws, W // ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)


torch.fx.wrap("window_reverse")


class WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, ws: int, fused: bool = False) -> None:
        super().__init__()
        self.heads, self.ws, self.fused = heads, ws, fused
        self.scale = (dim // heads) ** -0.5
        self.bias_table = nn.Parameter(torch.randn((2 * ws - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + ws - 1
        self.register_buffer("index", rel[..., 0] * (2 * ws - 1) + rel[..., 1], persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.bias_table[self.index.view(-1)].view(N, N, -1).permute(2, 0, 1).unsqueeze(0)
        if self.fused:
            if mask is not None:
                nw = mask.shape[0]
                bias = bias + mask.view(1, nw, 1, N, N).expand(B_ // nw, -1, self.heads, -1, -1).reshape(
                    -1, self.heads, N, N)
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn + bias
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(-1, nw, self.heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.heads, N, N)
            x = self.softmax(attn) @ v
        x = x.transpose(1, 2).reshape(B_, N, -1)
        return self.proj(x)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, size: tuple[int, int], ws: int, shift: int,
                 fused: bool = False) -> None:
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, ws, fused)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        mask = None
        if shift:
            H, W = (-(-s // ws) * ws for s in size)
            img = torch.zeros((1, H, W, 1))
            cnt = 0
            for h in ((0, -ws), (-ws, -shift), (-shift, None)):
                for w in ((0, -ws), (-ws, -shift), (-shift, None)):
                    img[:, h[0]:h[1], w[0]:w[1], :] = cnt
                    cnt += 1
            windows = window_partition(img, ws).view(-1, ws * ws)
            mask = windows.unsqueeze(1) - windows.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer("attn_mask", mask, persistent=False)

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        pad_h = (self.ws - H % self.ws) % self.ws
        pad_w = (self.ws - W % self.ws) % self.ws
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        _, Hp, Wp, _ = x.shape
        windows = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)
        windows = self.attn(windows, mask=self.attn_mask)
        x = window_reverse(windows.view(-1, self.ws, self.ws, C), self.ws, Hp, Wp)
        x = x[:, :H, :W, :].contiguous()
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = x + self._attn(self.norm1(x))
        x = x.reshape(B, -1, C)
        x = x + self.mlp(self.norm2(x))
        return x.reshape(B, H, W, C)


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        _, H, W, _ = x.shape
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class TinySwin(nn.Module):
    """Patch embedding (stride ``patch``), two window-attention blocks (the second shifted), patch merging, one
    more block, a global pool and a head; channels-last maps between them, as timm's Swin."""

    def __init__(self, size: int = 32, patch: int = 4, ws: int = 4, dim: int = 8, fused: bool = False,
                 merge: bool = True) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        grid = (size // patch, size // patch)
        self.block1 = SwinBlock(dim, 2, grid, ws, 0, fused)
        self.block2 = SwinBlock(dim, 2, grid, ws, ws // 2, fused)
        self.merge = PatchMerging(dim) if merge else None
        out = 2 * dim if merge else dim
        small = (-(-grid[0] // 2), -(-grid[1] // 2)) if merge else grid
        self.block3 = SwinBlock(out, 2, small, ws, 0, fused)
        self.norm = nn.LayerNorm(out)
        self.head = nn.Linear(out, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).permute(0, 2, 3, 1)
        x = self.block2(self.block1(x))
        if self.merge is not None:
            x = self.merge(x)
        x = self.norm(self.block3(x))
        return self.head(x.mean((1, 2)))


def _rows(model: nn.Module, size: int) -> dict[str, Any]:
    inspection = trace_module(model, (3, size, size))
    assert inspection.complete, inspection.error
    return {r.name: r for r in inspection.report.rows}


def test_window_attention_is_exact_and_not_global() -> None:
    torch.manual_seed(0)
    model = TinySwin(size=32, ws=4).eval()
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    rows = {r.name: r for r in inspection.report.rows}
    # 8x8 tokens of 4 px, windows of 4x4 tokens: a token sees its window's 16 px square; the smallest window of
    # the contract's form that holds every token's is 4 + 2·3·4 = 28 px, at the token's own centre
    first = rows["block1.window_attention"]
    assert (first.op, first.geo_out.rf, first.geo_out.jump, first.geo_out.start2) == (
        "window_attention", (28, 28), (4, 4), (3, 3))
    assert not first.is_global
    # the shifted windows step that window once more (the mask keeps wrapped tokens apart: not the whole image)
    second = rows["block2.window_attention"]
    assert second.geo_out.rf == (52, 52) and not second.is_global
    assert rows["merge.patch_merging"].geo_out.jump == (8, 8)
    assert rows["head"].is_global
    assert sum(r.params for r in inspection.report.rows) == sum(p.numel() for p in model.parameters())
    codes = [d.code for d in inspection.report.diagnostics]
    assert codes.count("window-hull") >= 2
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


@pytest.mark.parametrize("fused", [False, True], ids=["softmax", "sdpa"])
def test_padded_windows_and_odd_patch_merging_agree_with_the_oracle(fused: bool) -> None:
    # 7x7 tokens, windows of 4: padded to 8x8 before the partition, cropped after; the shifted block's mask
    # regions then do not line up with the image's end; patch merging pads 7 to 8
    torch.manual_seed(1)
    model = TinySwin(size=28, ws=4, fused=fused).eval()
    rows = _rows(model, 28)
    assert rows["block1.window_attention"].geo_out.rf == (28, 28)
    assert not rows["block2.window_attention"].is_global
    assert inspection_problems(model, (3, 28, 28)) == []


@pytest.mark.slow
def test_a_window_as_large_as_the_map_is_global() -> None:
    # windows of 8 on an 8x8 map: the unshifted block attends over every token (followed as plain tokens);
    # the shifted one's mask keeps the rolled-in border apart, and it is global only because the next
    # stage's window covers the whole 4x4 map
    torch.manual_seed(2)
    model = TinySwin(size=32, ws=8).eval()
    rows = _rows(model, 32)
    assert rows["block3.window_attention"].is_global
    assert inspection_problems(model, (3, 32, 32)) == []


class _MaskedAttention(nn.Module):
    """Attention over all tokens with a constant -100 mask added to the scores (not inside a partition)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, 4)
        mask = torch.zeros(16, 16)
        mask[:, 8:] = -100.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        scores = t @ t.transpose(-2, -1) + self.mask
        return scores.softmax(-1) @ t


def test_a_hiding_mask_outside_a_window_partition_stops() -> None:
    inspection = trace_module(_MaskedAttention(), (3, 16, 16))
    assert not inspection.complete and inspection.error is not None
    assert "-50 or less" in inspection.error.message


# -- MobileViT's unfold: the pixels at one offset of every patch folded into a sequence ------------------------
class _UnfoldAttention(nn.Module):
    """timm's MobileViT block: a 3x3 conv, the map unfolded into ``(B·P, N, C)`` (P offsets inside a patch, N
    patches), a transformer block (fused qkv, ``F.scaled_dot_product_attention``, an MLP), folded back, a 1x1
    conv; the attention runs across patches at the same offset."""

    def __init__(self, dim: int = 8, patch: int = 2, k: int = 3) -> None:
        super().__init__()
        self.patch = patch
        self.stem = nn.Conv2d(3, dim, k, stride=2, padding=k // 2)
        self.conv = nn.Conv2d(dim, dim, k, padding=k // 2)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.stem(x))
        B, C, H, W = x.shape
        p = self.patch
        nh, nw = H // p, W // p
        x = x.reshape(B * C * nh, p, nw, p).transpose(1, 2)
        x = x.reshape(B, C, nh * nw, p * p).transpose(1, 3).reshape(B * p * p, nh * nw, -1)
        B_, N, _ = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B_, N, 3, 2, -1).permute(2, 0, 3, 1, 4).unbind(0)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B_, N, -1))
        x = x + self.mlp(x)
        x = x.contiguous().view(B, p * p, nh * nw, -1).transpose(1, 3).reshape(B * C * nh, nw, p, p)
        x = x.transpose(1, 2).reshape(B, C, nh * p, nw * p)
        return self.out(x)


def test_a_patch_unfold_attends_across_patches_at_one_offset() -> None:
    torch.manual_seed(3)
    model = _UnfoldAttention().eval()
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    rows = {r.name: r for r in inspection.report.rows}
    row = rows["window_attention"]
    # 16x16 units of 2 px, each seeing its 7x7 px conv window; attention joins every 2nd unit in both axes:
    # unit (i, j) sees the units of its parity, whose windows cover the whole image
    assert row.op == "window_attention" and row.is_global
    assert sum(r.params for r in inspection.report.rows) == sum(p.numel() for p in model.parameters())
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


def test_a_patch_unfold_with_1x1_convs_sees_every_other_unit_exactly() -> None:
    # 1x1 convs: unit (i, j) sees pixel (2i, 2j); after the attention, the pixels of every unit of its parity:
    # a lattice 4 px apart, not global; the window is the hull of those units' windows
    torch.manual_seed(4)
    model = _UnfoldAttention(k=1).eval()
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    row = {r.name: r for r in inspection.report.rows}["window_attention"]
    assert not row.is_global and row.geo_out.jump == (2, 2)
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


# -- reflect / replicate padding read by a conv (TResNet's anti-aliased downsampling) ---------------------------
class _BlurPool(nn.Module):
    """timm's ``BlurPool2d``: ``F.conv2d(F.pad(x, [p] * 4, mode=mode), blur, stride=2, groups=C)`` between convs."""

    def __init__(self, pad: int = 1, mode: str = "reflect", k: int = 3) -> None:
        super().__init__()
        self.pad, self.mode = pad, mode
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        coeffs = torch.tensor([1.0, 2.0, 1.0] if k == 3 else [1.0] * k)
        self.register_buffer("filt", (coeffs[:, None] * coeffs[None, :] / coeffs.sum() ** 2)[None, None].repeat(
            4, 1, 1, 1))
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        x = F.conv2d(F.pad(x, [self.pad] * 4, mode=self.mode), self.filt, stride=2, groups=4)
        return self.c2(x)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_a_mirror_pad_read_by_a_blur_conv_is_its_padding(mode: str) -> None:
    # a 3x3 blur after a pad of 1: a border unit's mirrored tap (pixel 1, or 0) is one its zero-padded taps read
    # anyway, so the pixels, window, jump and start are those of the conv with padding=1
    model = _BlurPool(mode=mode)
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    blur = [r for r in inspection.report.rows if r.op == "conv"][1]
    assert blur.padding == (1, 1) and blur.geo_out.rf == (5, 5) and blur.geo_out.jump == (2, 2)
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []


def test_a_mirror_pad_wider_than_the_conv_reads_stays_refused() -> None:
    # a pad of 2 before a 3x3 conv: unit 0 reads mirrored pixels 1 and 2, outside its zero-padded taps
    inspection = trace_module(_BlurPool(pad=2), (3, 16, 16))
    assert not inspection.complete and inspection.error is not None
    assert "reflect" in inspection.error.message and "padding=" in inspection.error.message


def test_a_zero_pad_read_by_a_conv_is_its_padding() -> None:
    model = _BlurPool(mode="constant")
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    assert [r.padding for r in inspection.report.rows if r.op == "conv"] == [(1, 1)] * 3
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []
