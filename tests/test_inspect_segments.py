"""Issue 26 item 0: windows per channel segment through ``torch.cat`` and channel splits.

A concatenation's row has the union of its inputs' windows (a unit is all channels together), but a later
split that takes back one input's channels sees that input's window only (MixNet's mixed depthwise convs
concatenated, then split again for its grouped pointwise conv: timm's ``mixnet_s`` had rows off by up to
+192 px). Checked against the gradient oracle (rfcalc.inspection.check) on a hand-written MixNet and on random
concat-then-split graphs: splits by sizes, chunks, ``narrow``, slices, negative indices, through depthwise and
grouped convs, pools, norms, gates, channel shuffles and residual adds.
"""
from __future__ import annotations

import random
from collections.abc import Iterator

import models_for_inspect as M
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rfcalc.errors import RfcalcError
from rfcalc.inspection.api import inspect_module, trace_module
from rfcalc.inspection.check import inspection_problems
from rfcalc.model.oracle import single_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


def test_mixnet_pieces_keep_their_own_windows() -> None:
    model = M.MixNet()
    inspection = trace_module(model, (3, 64, 64))
    assert inspection.complete, inspection.error
    rows = {r.name: r for r in inspection.report.rows}
    # block 1: the 9x9 path (rf 3 + 8·2 = 19) and the 3x3 path (7) concatenated: 19; each pointwise piece
    # takes one path's channels back
    assert rows["block1.conv_dw"].op == "concat"  # MixedConv's one merge, named after it
    assert rows["block1.conv_dw"].geo_out.rf == (19, 19)
    assert rows["block1.conv_pwl.convs.0"].geo_out.rf == (19, 19)
    assert rows["block1.conv_pwl.convs.1"].geo_out.rf == (7, 7)
    # the residual add keeps them apart (channels 0-7 see 19, 8-15 see 7); block 2: kernels 3, 5, 7 on 6, 5
    # and 5 channels (0-5: 19 + 2·2 = 23; 6-7: 19 + 4·2 = 27, 8-10: 7 + 4·2 = 15; 11-15: 7 + 6·2 = 19); the
    # pointwise halves take 0-7 (27) and 8-15 (19)
    assert rows["block2.conv_dw.convs.1"].geo_out.rf == (27, 27)
    assert rows["block2.conv_pwl.convs.0"].geo_out.rf == (27, 27)
    assert rows["block2.conv_pwl.convs.1"].geo_out.rf == (19, 19)
    assert inspection_problems(model, (3, 64, 64), inspection=inspection) == []


def test_a_split_after_an_op_rfcalc_cannot_follow_per_channel_is_refused() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 5, padding=2)
            self.b = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.cat([self.a(x), self.b(x)], 1)
            y = torch.roll(y, 1, 1)  # moves channels: not in rfcalc's table
            return y[:, :4]

    inspection = trace_module(Mixed(), (3, 16, 16))
    assert not inspection.complete
    assert inspection.error is not None
    assert "channels see different windows" in inspection.error.message


# -- random concat-then-split graphs ---------------------------------------------------------------------------
class _Piece(nn.Module):
    """A random chain of ops that keep channels apart or mix them (a full conv)."""

    def __init__(self, rng: random.Random, c: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(rng.randint(0, 2)):
            kind = rng.choice(["dw", "dw", "grouped", "full", "avg", "max", "bn", "relu"])
            if kind == "dw":
                k, d = rng.choice([1, 3, 5, 7]), rng.choice([1, 1, 2])
                layers.append(nn.Conv2d(c, c, k, padding=d * (k // 2), dilation=d, groups=c, bias=False))
            elif kind == "grouped":
                g = rng.choice([g for g in (2, 3) if c % g == 0] or [1])
                layers.append(nn.Conv2d(c, c, 3, padding=1, groups=g, bias=False))
            elif kind == "full":
                layers.append(nn.Conv2d(c, c, rng.choice([1, 3]), padding="same", bias=False))
            elif kind == "avg":
                layers.append(nn.AvgPool2d(3, 1, 1))
            elif kind == "max":
                layers.append(nn.MaxPool2d(3, 1, 1))
            elif kind == "bn":
                layers.append(nn.BatchNorm2d(c))
            else:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _sizes(rng: random.Random, c: int) -> list[int]:
    cuts = sorted(rng.sample(range(1, c), rng.randint(1, min(3, c - 1))))
    return [b - a for a, b in zip([0, *cuts], [*cuts, c])]


class _Step(nn.Module):
    """Split the channels (by sizes, chunk, narrow or slices), a chain per piece, concatenate in a random order;
    then maybe a channel shuffle, a gate, a residual add or a strided depthwise conv."""

    def __init__(self, rng: random.Random, c: int) -> None:
        super().__init__()
        self.c = c
        self.how = rng.choice(["split", "chunk", "narrow", "slice", "negative"])
        if self.how == "chunk":
            self.chunks = rng.choice([n for n in (2, 3, 4) if n <= c])
            step = -(-c // self.chunks)
            self.sizes = [min(step, c - k) for k in range(0, c, step)]
        else:
            self.sizes = _sizes(rng, c)
        self.pieces = nn.ModuleList(_Piece(rng, s) for s in self.sizes)
        self.order = list(range(len(self.sizes)))
        rng.shuffle(self.order)
        self.shuffle = c % 2 == 0 and rng.random() < 0.3
        self.gate = nn.Conv2d(c, c, 1) if rng.random() < 0.2 else None
        self.residual = rng.random() < 0.4
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c, bias=False) if rng.random() < 0.25 else None

    def _split(self, x: torch.Tensor) -> list[torch.Tensor]:
        starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        n = len(self.sizes)
        if self.how == "split":
            parts = torch.split(x, self.sizes, 1)
            return [parts[i] for i in range(n)]
        if self.how == "chunk":
            chunks = x.chunk(self.chunks, 1)
            return [chunks[i] for i in range(n)]
        if self.how == "narrow":
            return [x.narrow(1, a, s) for a, s in zip(starts, self.sizes)]
        if self.how == "slice":
            return [x[:, a:a + s] for a, s in zip(starts, self.sizes)]
        parts = torch.split(x, self.sizes, 1)
        return [parts[i - n] for i in range(n)]  # negative indices: parts[-n] ... parts[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self._split(x)
        outs = [piece(parts[i]) for i, piece in enumerate(self.pieces)]
        y = torch.cat([outs[i] for i in self.order], 1)
        if self.shuffle:
            b, h, w = y.size(0), y.size(2), y.size(3)
            y = y.view(b, 2, self.c // 2, h, w).transpose(1, 2).reshape(b, self.c, h, w)
        if self.gate is not None:
            y = y * torch.sigmoid(self.gate(F.adaptive_avg_pool2d(y, 1)))
        if self.residual:
            y = y + x
        if self.down is not None:
            y = self.down(y)
        return y


class RandomSplitNet(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        rng = random.Random(seed)
        c = rng.choice([6, 8, 9, 12])
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.steps = nn.Sequential(*(_Step(rng, c) for _ in range(rng.randint(2, 3))))
        self.tail = _Step(rng, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.steps(self.stem(x)))


@pytest.mark.parametrize("seed", range(24))
def test_random_concat_then_split_graphs_match_the_oracle(seed: int) -> None:
    model = RandomSplitNet(seed)
    shape = (3, 24, 24)
    inspection = trace_module(model, shape)
    assert inspection.complete, inspection.error
    assert inspection_problems(model, shape, inspection=inspection) == []


def test_the_random_graphs_hold_pieces_with_their_own_windows() -> None:
    """The generator does make the case: some piece's window is smaller than its input's."""
    narrower = 0
    for seed in range(24):
        report = inspect_module(RandomSplitNet(seed), (3, 24, 24))
        by_name = {r.name: r for r in report.rows}
        for row in report.rows:
            if row.op in ("split", "chunk", "narrow", "getitem") and row.inputs[0] in by_name:
                narrower += row.geo_out.rf < by_name[row.inputs[0]].geo_out.rf
    assert narrower >= 10


# -- issue 26 item 1: shape tests, negative pieces ----------------------------------------------------------------
def test_a_forward_that_branches_on_its_input_size_is_traced_for_that_size() -> None:
    model = M.ShapeTests()
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    report = inspection.report
    assert [r.name for r in report.rows if r.op == "conv"] == ["c1", "c2"]
    assert report.row("c2").geo_out.rf == (15, 15)
    notes = [d.message for d in report.diagnostics if d.code == "shape-traced"]
    assert notes == ["ShapeTests.forward branches on its input's size; traced for 3x32x32, the table holds the "
                     "branch that size takes"]
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


def test_a_branch_on_the_input_values_is_still_refused() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] > 8 and x.sum() > 0:
                return self.c(x)
            return x

    with pytest.raises(Exception, match="branches on a value computed from the input's values"):
        trace_module(Branchy(), (3, 16, 16))


@pytest.mark.parametrize("use_chunk", [False, True], ids=["res2net_split", "edgenext_chunk"])
def test_the_last_piece_by_a_negative_index(use_chunk: bool) -> None:
    model = M.Res2Net(use_chunk)
    inspection = trace_module(model, (3, 24, 24))
    assert inspection.complete, inspection.error
    rows = {r.name: r for r in inspection.report.rows}
    pieces = [r for r in inspection.report.rows if r.op in ("split", "chunk")]
    assert [r.out_shape[0] for r in pieces] == [4, 4, 4, 4]
    assert rows["block.convs.2"].geo_out.rf == (9, 9)  # 3 (stem) + 3 convs of 3x3 in a row
    assert inspection_problems(model, (3, 24, 24), inspection=inspection) == []


@pytest.mark.parametrize("channels_first", [False, True], ids=["tresnet", "channels_first"])
def test_space_to_depth_is_a_window_of_its_blocks(channels_first: bool) -> None:
    model = M.TResNetStem(channels_first)
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    report = inspection.report
    s2d = report.row("s2d.view")
    # a 4x4 block of 3x3 windows: rf 3 + 3 = 6, jump 4 (a conv with kernel and stride 4 after c0)
    assert (s2d.op, s2d.out_shape, s2d.geo_out.rf, s2d.geo_out.jump) == ("space_to_depth", (64, 8, 8), (6, 6), (4, 4))
    assert report.row("conv").geo_out.rf == (14, 14)
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


def test_a_window_partition_is_refused_with_its_pattern() -> None:
    class Windows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c(x).view(x.size(0), 4, 2, 8, 2, 8).permute(0, 2, 4, 1, 3, 5)  # 2x2 windows of 8x8
            return y.softmax(-1)

    inspection = trace_module(Windows(), (3, 16, 16))
    assert not inspection.complete and inspection.error is not None
    assert "splits the rows or columns of the image into blocks" in inspection.error.message


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "corners"])
def test_upsampling_holds_every_unit_and_each_unit_sees_its_sources(mode: str) -> None:
    model = M.UpsampleNet(mode)
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    report = inspection.report
    ups = [r for r in report.rows if r.op in ("upsample", "conv_transpose")]
    assert [r.geo_out.jump for r in ups][-1] == (1, 1) and all(r.name in inspection.hull_rows for r in ups)
    assert report.output.name in inspection.hull_rows
    if mode == "nearest":
        # low2: rf 15, jump 8; x2 nearest: jump 4, a pair of units shares a source: 15 + 4 = 19; again: 19 + 2
        assert [r.geo_out.rf for r in ups[:2]] == [(19, 19), (21, 21)]
    assert any(d.code == "window-hull" for d in report.diagnostics)
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "qkv_items"])
def test_fused_qkv_attention(fused: bool) -> None:
    model = M.TimmViT(fused)
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    report = inspection.report
    before = [r for r in report.rows if r.name.startswith("attn.") and not r.is_global]
    assert [r.op for r in before][:1] == ["linear"]  # the qkv linear: each token its own patch
    if fused:
        row = report.row("attn.scaled_dot_product_attention")
        assert (row.op, row.out_shape, row.is_global) == ("attention", (2, 17, 4), True)
        assert row.macs == 2 * 17 * 17 * (4 + 4)
    assert report.is_global and report.rf == (4, 4)
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []


def test_attention_with_a_mask_or_causal_is_refused() -> None:
    class Masked(nn.Module):
        def __init__(self, causal: bool) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, 4, 4, stride=4)
            self.causal = causal

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.patch(x).flatten(2).transpose(1, 2)
            if self.causal:
                return F.scaled_dot_product_attention(t, t, t, is_causal=True)
            return F.scaled_dot_product_attention(t, t, t, attn_mask=torch.ones(16, 16, dtype=torch.bool))

    for causal, text in ((True, "causal attention"), (False, "attention with attn_mask")):
        inspection = trace_module(Masked(causal), (3, 16, 16))
        assert not inspection.complete and inspection.error is not None and text in inspection.error.message


def test_resmlp_affine_xca_normalize_attention_bias_and_zero_pad() -> None:
    model = M.ResMLPish()
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    report = inspection.report
    assert report.row("norm").op == "addcmul" and report.row("norm").params == 16
    assert report.row("normalize").is_global and not report.row("norm").is_global
    assert report.params == sum(p.numel() for p in model.parameters())
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []


def test_padding_that_pads_is_refused_with_its_pattern() -> None:
    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # a pad of 1 is the conv's padding (issue 26)
            return self.c(F.pad(x, (2, 2, 2, 2), mode="reflect"))

    with pytest.raises(RfcalcError, match=r"pads the feature map by \[2, 2, 2, 2\] \(reflect\)"):
        trace_module(Padded(), (3, 16, 16))


def test_levit_linear_norm_bias_and_token_subsample() -> None:
    model = M.TinyLeViT()
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    report = inspection.report
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.row("qkv.bn").op == "bn"
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []


def test_a_strided_pick_of_units_is_a_strided_window() -> None:
    model = M.StridedPick()
    inspection = trace_module(model, (3, 18, 18))
    assert inspection.complete, inspection.error
    pick = inspection.report.row("getitem")
    assert (pick.out_shape, pick.geo_out.rf, pick.geo_out.jump) == ((4, 9, 6), (3, 3), (2, 3))
    assert inspection.report.row("c2").geo_out.rf == (7, 9)
    assert inspection_problems(model, (3, 18, 18), inspection=inspection) == []


def test_pixel_unshuffle_and_shuffle() -> None:
    model = M.PixelShuffles()
    inspection = trace_module(model, (3, 32, 32))
    assert inspection.complete, inspection.error
    report = inspection.report
    assert [r.op for r in report.rows if "shuffle" in r.op or r.op == "space_to_depth"] == [
        "space_to_depth", "pixel_shuffle", "pixel_shuffle"]
    assert report.row("down").geo_out.jump == (4, 4) and report.row("up").geo_out.jump == (2, 2)
    assert inspection_problems(model, (3, 32, 32), inspection=inspection) == []


def test_a_parameter_reached_twice_in_one_call_counts_once() -> None:
    """EdgeNeXt's positional encoding reads ``token_projection.weight.device`` and calls ``token_projection``
    on a constant: its parameters reach the ``+`` twice (a get_attr and the module), counted once."""
    class Positions(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.token_projection = nn.Conv2d(2, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.stem(x)
            device = self.token_projection.weight.device
            grid = torch.ones(1, 2, 16, 16, device=device)
            return y + self.token_projection(grid)

    model = Positions()
    report = inspect_module(model, (3, 16, 16))
    assert report.params == sum(p.numel() for p in model.parameters())


def test_attention_on_a_map_back_to_a_map() -> None:
    model = M.ConvAttention()
    inspection = trace_module(model, (3, 16, 16))
    assert inspection.complete, inspection.error
    report = inspection.report
    assert report.row("proj").is_global and report.row("proj").out_shape == (8, 8, 8)
    assert inspection_problems(model, (3, 16, 16), inspection=inspection) == []


def test_a_patch_unfold_into_the_batch_is_refused_with_its_pattern() -> None:
    class Unfold(nn.Module):  # MobileViT's unfold: (B·C·nh, ph, nw, pw)
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c(x)
            return y.reshape(y.size(0) * 4 * 8, 2, 8, 2).transpose(1, 2)

    inspection = trace_module(Unfold(), (3, 16, 16))
    assert inspection.error is not None and "folds part of the image into the batch" in inspection.error.message


def test_the_oracle_holds_a_gate_written_as_a_method_linear() -> None:
    """timm's own ``Sigmoid`` module calls ``x.sigmoid()``: the oracle replaces it by its input as it does
    ``torch.sigmoid`` (a saturated gate has no gradient; regnety_002's last gate was reported not global)."""
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c(x)
            return y * (self.fc(y.mean((2, 3), keepdim=True)) * 1000).sigmoid()

    inspection = trace_module(Gate(), (3, 16, 16))
    assert inspection.report.output.is_global
    assert inspection_problems(Gate(), (3, 16, 16), inspection=inspection) == []
