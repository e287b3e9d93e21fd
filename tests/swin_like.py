"""A small Swin-like model written as timm writes Swin (tests/test_inspect_windows.py): patch embedding conv,
window attention blocks with and without a cyclic shift (and its -100 mask), padding to a multiple of the
window, patch merging."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
