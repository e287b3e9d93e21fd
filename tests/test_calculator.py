"""The calculator against hand-worked tables and the contract's own example."""
from __future__ import annotations

from fractions import Fraction

import pytest

import rfcalc
from rfcalc.analysis.calculator import output_size

CONTRACT_EXAMPLE = """
version: 1
name: two-branch-dilated
input: {channels: 3, size: 32}
classes: 10
defaults:
  conv: {bias: false, norm: bn, act: relu}
blocks:
  dws:
    params: {out: null, k: 3, dilation: 1}
    layers:
      - {op: conv, groups: depthwise, k: $k, padding: same, dilation: $dilation, norm: none, act: none}
      - {op: conv, out: $out, k: 1}
layers:
  - {op: conv, name: c1, out: 16, padding: 1}
  - {use: dws, name: d1, out: 32, dilation: 2}
  - op: parallel
    name: branches
    merge: concat
    paths:
      - [{op: conv, out: 16, padding: 2, dilation: 2}]
      - [{op: conv, out: 16, padding: 1}]
  - op: residual
    body:
      - {op: conv, out: 32, padding: 1}
      - {op: conv, out: 32, padding: 1, act: none}
    act: relu
  - {op: conv, out: 64, stride: 2, padding: 1, repeat: 2}
  - {op: gap}
  - {op: linear, out: 10}
constraints:
  rf: {gt: 44}
  params: {lt: 200000}
  require: [dilated_conv, depthwise_conv, gap]
  forbid: [maxpool]
"""


def rows_by_name(report: rfcalc.Report) -> dict[str, dict]:
    return {row["name"]: row for row in report.to_dict()["layers"]}


def test_contract_example_first_row_is_exactly_the_contracts():
    row = rfcalc.analyze(CONTRACT_EXAMPLE).to_dict()["layers"][0]
    assert row == {**row, "name": "c1", "op": "conv", "inputs": ["input"], "in_shape": [3, 32, 32],
                   "out_shape": [16, 32, 32], "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1],
                   "dilation": [1, 1], "groups": 1, "jump_in": [1, 1], "jump_out": [1, 1], "rf_in": [1, 1],
                   "rf_out": [3, 3], "start_in": [0, 0], "start_out": [0, 0], "params": 432, "macs": 442368}


def test_contract_example_names_totals_and_merges():
    report = rfcalc.analyze(CONTRACT_EXAMPLE)
    rows = rows_by_name(report)
    assert [n for n in rows if not rows[n].get("attached_to")] == [
        "c1", "d1.0", "d1.1", "branches.0.conv1", "branches.1.conv1", "branches", "residual4.body.conv1",
        "residual4.body.conv2", "residual4", "conv5.0", "conv5.1", "gap6", "linear7"]
    assert rows["d1.0"]["groups"] == 16 and rows["d1.0"]["padding"] == [2, 2] and rows["d1.0"]["rf_out"] == [7, 7]
    assert rows["branches"]["op"] == "concat"
    assert rows["branches"]["inputs"] == ["branches.0.conv1.relu", "branches.1.conv1.relu"]
    assert rows["branches"]["out_shape"] == [32, 32, 32]
    assert rows["branches"]["rf_out"] == [11, 11]  # union of 11 and 9, same centre
    assert rows["residual4"]["inputs"] == ["residual4.body.conv2.bn", "branches"]
    assert rows["residual4.relu"]["op"] == "relu"
    totals = report.to_dict()["totals"]
    assert totals == {"params": 85226, "macs": 36504192, "rf": [49, 49], "jump": [4, 4], "start": [14, 14],
                      "global": True, "output_shape": [10]}
    assert report.to_dict()["schema_version"] == 1 and report.to_dict()["input"] == [3, 32, 32]
    assert sum(r["params"] for r in report.to_dict()["layers"]) == totals["params"]


def test_hand_worked_chain_with_stride_dilation_pool_and_gap():
    # Worked by hand with the contract's formulas:
    # layer          n_out  jump  rf                 start
    # conv k3 p1      32     1    1+2*1  = 3         0
    # conv k3 s2 p1   16     2    3+2*1  = 5         0 + (1-1)*1 = 0
    # conv k3 d2 p2   16     2    5+4*2  = 13        0 + (2-2)*2 = 0
    # maxpool 2       8      4    13+1*2 = 15        0 + (0.5-0)*2 = 1
    # gap (k=8)       1      4    15+7*4 = 43        1 + 3.5*4 = 15
    spec = """
    version: 1
    name: chain
    input: {channels: 3, size: 32}
    layers:
      - {op: conv, out: 8, padding: 1}
      - {op: conv, out: 8, stride: 2, padding: 1}
      - {op: conv, out: 8, dilation: 2, padding: 2}
      - {op: maxpool}
      - {op: gap}
    """
    rows = rfcalc.analyze(spec).to_dict()["layers"]
    assert [r["out_shape"] for r in rows] == [[8, 32, 32], [8, 16, 16], [8, 16, 16], [8, 8, 8], [8]]
    assert [r["jump_out"][0] for r in rows] == [1, 2, 2, 4, 4]
    assert [r["rf_out"][0] for r in rows] == [3, 5, 13, 15, 43]
    assert [r["start_out"][0] for r in rows] == [0, 0, 0, 1, 15]
    assert [r["params"] for r in rows] == [3 * 8 * 9 + 8, 8 * 8 * 9 + 8, 8 * 8 * 9 + 8, 0, 0]
    assert rows[1]["macs"] == 9 * 8 * 8 * 16 * 16


def test_seed_000_true_rf_is_39_not_51():
    # The report's own layers: branch A (two dilated convs, stride-2 conv, conv), branch B, concat,
    # depthwise + pointwise, two reductions, GAP. Its hand table claims 51 by taking GAP's window from 31.
    spec = """
    version: 1
    name: seed000
    input: {channels: 3, size: 32}
    layers:
      - op: parallel
        paths:
          - - {op: conv, out: 12, dilation: 2, padding: 1}
            - {op: conv, out: 24, dilation: 2, padding: 1}
            - {op: conv, out: 48, stride: 2, padding: 1}
            - {op: conv, out: 48, padding: 1}
          - - {op: conv, out: 12, padding: 0}
            - {op: conv, out: 24, padding: 0}
            - {op: conv, out: 48, stride: 2, padding: 1}
            - {op: conv, out: 48, padding: 1}
      - {op: conv, groups: depthwise}
      - {op: conv, out: 60, k: 1}
      - {op: conv, out: 30, stride: 2}
      - {op: conv, out: 10}
      - {op: gap}
    """
    report = rfcalc.analyze(spec)
    rows = rows_by_name(report)
    assert rows["parallel1"]["out_shape"] == [96, 14, 14]
    assert rows["parallel1.0.conv4"]["rf_out"] == [15, 15]
    assert rows["parallel1.1.conv4"]["rf_out"] == [11, 11]
    assert rows["parallel1"]["rf_out"] == [15, 15]
    assert rows["parallel1"]["start_out"] == [2, 2]
    assert rows["conv2"]["out_shape"] == [96, 12, 12] and rows["conv2"]["rf_out"] == [19, 19]
    assert rows["conv3"]["rf_out"] == [19, 19]
    assert rows["conv4"]["out_shape"] == [30, 5, 5] and rows["conv4"]["rf_out"] == [23, 23]
    assert rows["conv5"]["out_shape"] == [10, 3, 3] and rows["conv5"]["rf_out"] == [31, 31]
    assert report.rf == (39, 39)


def test_half_centres_stay_halves_and_non_square_axes_are_independent():
    spec = """
    version: 1
    name: halves
    input: {channels: 1, size: [9, 12]}
    layers:
      - {op: conv, out: 2, k: [2, 3], stride: [1, 2], padding: [0, 1]}
    """
    row = rfcalc.analyze(spec).to_dict()["layers"][0]
    assert row["out_shape"] == [2, 8, 6]
    assert row["start_out"] == [0.5, 0]
    assert row["rf_out"] == [2, 3] and row["jump_out"] == [1, 2]
    assert rfcalc.analyze(spec).rows[0].geo_out.start == (Fraction(1, 2), Fraction(0))


@pytest.mark.parametrize("n,k,s,p,ceil,expected", [
    (7, 2, 2, 0, False, 3), (7, 2, 2, 0, True, 4), (6, 3, 2, 1, True, 4), (5, 3, 2, 1, True, 3),
    (8, 3, 3, 0, True, 3), (32, 3, 1, 1, False, 32), (14, 2, 2, 0, True, 7), (3, 3, 2, 1, True, 2),
])
def test_output_size_matches_pytorch_rule(n, k, s, p, ceil, expected):
    assert output_size(n, k, s, p, ceil) == expected


def test_output_size_against_torch_pooling():
    import torch
    for n in range(2, 12):
        for k in (2, 3):
            for s in (1, 2, 3):
                for p in range(0, k // 2 + 1):
                    for ceil in (False, True):
                        if n + 2 * p < k:
                            continue
                        pool = torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)
                        got = pool(torch.zeros(1, 1, n, n)).shape[-1]
                        assert output_size(n, k, s, p, ceil) == got, (n, k, s, p, ceil)


def test_merges_at_equal_size_and_stride_1_are_always_aligned():
    # n_out = n + 2P - (rf - 1) and start = (rf - 1)/2 - P: equal sizes at stride 1 force equal centres.
    spec = """
    version: 1
    name: aligned
    input: {channels: 1, size: 10}
    layers:
      - op: parallel
        name: u
        merge: add
        paths:
          - [{op: conv, out: 1, k: 3, padding: 1}]
          - [{op: conv, out: 1, k: 5, padding: 1}, {op: conv, out: 1, k: 1, padding: 1}]
    """
    report = rfcalc.analyze(spec)
    assert report.row("u").geo_out.rf == (5, 5) and report.row("u").geo_out.start == (0, 0)
    assert report.diagnostics == ()


def test_misaligned_merge_is_the_union_and_warns_with_both_centres():
    # path 0: k3 s2 p1 on 8 -> 4 units, centre 0, window [-1, 1]
    # path 1: k4 s2 p1 on 8 -> 4 units, centre 0.5, window [-1, 2]; union [-1, 2]: rf 4, centre 0.5
    spec = """
    version: 1
    name: misaligned
    input: {channels: 3, size: 8}
    layers:
      - op: parallel
        name: two
        paths:
          - [{op: conv, out: 4, k: 3, stride: 2, padding: 1}]
          - [{op: conv, out: 4, k: 4, stride: 2, padding: 1}]
    """
    report = rfcalc.analyze(spec)
    row = report.to_dict()["layers"][2]
    assert row["name"] == "two" and row["rf_out"] == [4, 4] and row["start_out"] == [0.5, 0.5]
    assert row["jump_out"] == [2, 2] and row["out_shape"] == [8, 4, 4]
    diagnostics = report.to_dict()["diagnostics"]
    assert len(diagnostics) == 1
    assert diagnostics[0]["code"] == "misaligned-merge" and diagnostics[0]["severity"] == "warning"
    assert diagnostics[0]["path"] == "layers[0]"
    assert "paths[0] at (0, 0)" in diagnostics[0]["message"]
    assert "paths[1] at (0.5, 0.5)" in diagnostics[0]["message"]


def test_depthwise_separable_repeat_and_block_names():
    spec = """
    version: 1
    name: names
    input: {channels: 8, size: 16}
    defaults:
      conv: {bias: false, norm: bn, act: relu}
    blocks:
      pair:
        params: {out: null}
        layers:
          - {op: conv, out: $out, padding: 1}
          - {op: conv, out: $out, padding: 1, name: second}
    layers:
      - {op: conv, groups: depthwise, name: dw}
      - {op: conv, out: 16, separable: true, padding: 1, name: sep}
      - {use: pair, out: 16, name: p, repeat: 2}
      - {op: dropout, p: 0.05}
    """
    report = rfcalc.analyze(spec)
    rows = rows_by_name(report)
    assert rows["dw"]["groups"] == 8 and rows["dw"]["out_shape"] == [8, 14, 14] and rows["dw"]["params"] == 72
    assert rows["sep.dw"]["groups"] == 8 and rows["sep.dw"]["params"] == 72 and "sep.dw.bn" not in rows
    assert rows["sep.pw"]["kernel"] == [1, 1] and rows["sep.pw"]["params"] == 128
    assert rows["sep.pw.bn"]["params"] == 32 and rows["sep.pw.relu"]["op"] == "relu"
    assert [n for n in rows if n.startswith("p.") and not rows[n].get("attached_to")] == [
        "p.0.0", "p.0.second", "p.1.0", "p.1.second"]
    assert rows["dropout4"]["p"] == 0.05


def test_defaults_merge_under_and_layer_wins():
    spec = """
    version: 1
    name: d
    input: {channels: 3, size: 8}
    defaults:
      conv: {bias: false, norm: gn, norm_groups: 2, act: relu}
    layers:
      - {op: conv, out: 4}
      - {op: conv, out: 4, bias: true, norm: none, act: gelu}
    """
    rows = rows_by_name(rfcalc.analyze(spec))
    assert rows["conv1"]["params"] == 3 * 4 * 9 and rows["conv1.gn"]["params"] == 8 and rows["conv1.gn"]["groups"] == 2
    assert rows["conv2"]["params"] == 4 * 4 * 9 + 4 and "conv2.gn" not in rows and rows["conv2.gelu"]["op"] == "gelu"


def test_text_substitution_inside_strings_and_lists():
    spec = """
    version: 1
    name: sub
    input: {channels: 3, size: 16}
    blocks:
      b:
        params: {k: 3, act: relu}
        layers:
          - {op: conv, out: 4, k: [$k, 1], padding: same, act: $act}
    layers:
      - {use: b, k: 5, act: silu}
    """
    rows = rows_by_name(rfcalc.analyze(spec))
    assert rows["b1.0"]["kernel"] == [5, 1] and rows["b1.0"]["padding"] == [2, 0]
    assert rows["b1.0.silu"]["op"] == "silu"


def test_ultimus_and_linear_params_match_seed_003():
    spec = """
    version: 1
    name: ultimus
    input: {channels: 3, size: 32}
    layers:
      - {op: conv, out: 16}
      - {op: conv, out: 32}
      - {op: conv, out: 48}
      - {op: gap}
      - {op: ultimus, dim: 8, repeat: 4}
      - {op: linear, out: 10}
    """
    report = rfcalc.analyze(spec)
    assert report.params == 25786
    assert report.row("ultimus5.0").params == 1584
    assert report.row("ultimus5.0").macs == 3 * 48 * 8 + 8 * 48 + 2 * 8 * 8


def test_residual_with_projection_shortcut_and_vector_merges():
    spec = """
    version: 1
    name: proj
    input: {channels: 8, size: 16}
    layers:
      - op: residual
        name: r
        body:
          - {op: conv, out: 16, stride: 2, padding: 1}
          - {op: conv, out: 16, padding: 1}
        shortcut:
          - {op: conv, out: 16, k: 1, stride: 2}
      - {op: gap}
    """
    report = rfcalc.analyze(spec)
    row = report.row("r")
    assert row.out_shape == (16, 8, 8)
    assert row.inputs == ("r.body.conv2", "r.shortcut.conv1")
    # body: rf 3 -> 3+2*2 = 7, start 0; shortcut 1x1 s2: rf 1, start 0 -> union 7
    assert row.geo_out.rf == (7, 7) and row.geo_out.jump == (2, 2)
    assert report.diagnostics == ()


def test_empty_parallel_path_is_identity():
    spec = """
    version: 1
    name: dense
    input: {channels: 4, size: 8}
    layers:
      - op: parallel
        name: cat
        paths: [[], [{op: conv, out: 4, padding: 1}]]
    """
    row = rfcalc.analyze(spec).row("cat")
    assert row.out_shape == (8, 8, 8) and row.inputs == ("input", "cat.1.conv1")


def test_numbers_in_constraints_accept_k_and_underscores():
    for written in ("200000", "200_000", '"200k"', '"0.2M"'):
        spec = CONTRACT_EXAMPLE.replace("params: {lt: 200000}", f"params: {{lt: {written}}}")
        result = rfcalc.check(spec)
        rule = next(r for r in result.rules if r.kind == "params")
        assert rule.limit == 200000 and rule.ok


def test_calculator_is_linear_in_layers():
    """Counted, not timed (the bench measures the 1 s goal): twice the layers, twice the Python calls. A walk
    that revisits earlier layers (quadratic) would make about four times as many."""
    import sys

    def spec(n: int) -> dict:
        return {"version": 1, "name": "deep", "input": {"channels": 4, "size": 8},
                "layers": [{"op": "conv", "out": 4, "padding": 1}] * n}

    def calls(n: int) -> int:
        made = 0

        def count(frame, event, arg):  # sys.setprofile's signature
            nonlocal made
            made += event == "call"

        rfcalc.load_spec(spec(10))  # everything imported and cached before counting
        sys.setprofile(count)
        try:
            rfcalc.load_spec(spec(n))
        finally:
            sys.setprofile(None)
        return made

    small, large = calls(400), calls(800)
    assert 1.8 < large / small < 2.2, (small, large)


# -- global: every unit sees every input pixel (torch-free; the gradient oracle checks it in test_gradient_rf) --
def _global(layers: list[dict], size: int | list[int] = 16) -> list[tuple[str, bool]]:
    report = rfcalc.analyze({"version": 1, "name": "g", "input": {"channels": 3, "size": size}, "layers": layers})
    return [(r.op, r.is_global) for r in report.rows]


def test_global_after_gap_linear_ultimus_and_flatten_linear():
    assert _global([{"op": "conv", "out": 4, "padding": 1}, {"op": "gap"}, {"op": "ultimus", "dim": 2},
                    {"op": "linear", "out": 2}]) == [("conv", False), ("gap", True), ("ultimus", True),
                                                     ("linear", True)]
    # flatten keeps each element's window; the linear after it mixes them all (its rf stays the conv's: 3)
    rows = rfcalc.analyze({"version": 1, "name": "g", "input": {"channels": 3, "size": 8}, "layers": [
        {"op": "conv", "out": 2, "padding": 1}, {"op": "flatten"}, {"op": "linear", "out": 2}]}).rows
    assert [(r.op, r.geo_out.rf, r.is_global) for r in rows] == [("conv", (3, 3), False),
                                                                 ("flatten", (3, 3), False),
                                                                 ("linear", (3, 3), True)]


def test_global_where_windows_cover_the_image_and_not_where_pixels_drop_out():
    # a 3x3 conv on a 2x2 image: every unit's window holds the whole image
    assert _global([{"op": "conv", "out": 2, "padding": 1}], size=2) == [("conv", True)]
    # a 1x1 conv with stride 2 skips every other pixel: the pool over it is not global
    assert _global([{"op": "conv", "out": 2, "k": 1, "stride": 2}, {"op": "gap"}, {"op": "linear", "out": 2}]) \
        == [("conv", False), ("gap", False), ("linear", False)]
    # a stride-2 2x2 conv on 17 pixels drops the last one (floor)
    assert _global([{"op": "conv", "out": 2, "k": 2, "stride": 2}, {"op": "gap"}], size=17)[-1] == ("gap", False)
    # ... and a shortcut that skips pixels is covered by the body beside it
    assert _global([{"op": "residual", "body": [{"op": "conv", "out": 3, "stride": 2, "padding": 1}],
                     "shortcut": [{"op": "conv", "out": 3, "k": 1, "stride": 2}]}, {"op": "gap"}])[-1] \
        == ("gap", True)


def test_json_and_csv_carry_global_and_the_rf_rule_judges_the_local_window():
    spec = rfcalc.load_spec({"version": 1, "name": "g", "input": {"channels": 3, "size": 16}, "layers": [
        {"op": "conv", "out": 4, "padding": 1}, {"op": "flatten"}, {"op": "linear", "out": 2}],
        "constraints": {"rf": {"gt": 10}}})
    data = spec.report.to_dict()
    assert [row["global"] for row in data["layers"]] == [False, False, True]
    assert data["totals"]["global"] is True and data["totals"]["rf"] == [3, 3]
    from rfcalc.render.report import render_csv, rf_cell

    lines = render_csv(spec.report).splitlines()
    assert lines[0].endswith(",macs,global") and lines[-1].endswith(",true") and lines[1].endswith(",false")
    assert rf_cell(spec.report.output) == "3 · global"
    result = rfcalc.check(spec)
    assert not result.ok and result.rules[0].value == [3, 3]  # the window (3), not "the whole image"


# -- the reach caches belong to one analysis (issue 22 item 7) ------------------------------------------------------
def test_reach_caches_live_as_long_as_one_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from rfcalc.table import reach as R

    made: list[R.Memo] = []

    class Seen(R.Memo):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(R, "Memo", Seen)
    path = Path(__file__).parent.parent / "arch_specs" / "two_branch_dilated.yaml"
    first = rfcalc.analyze(str(path))
    second = rfcalc.analyze(str(path))
    assert first.to_dict() == second.to_dict()
    assert len(made) >= 2 and made[0] is not made[1]   # each analysis its own caches ...
    assert made[0].windows and made[0].packed           # ... which it used
    assert R.active_memo() is None                      # and none is held after it
    assert not [n for n, v in vars(R).items() if isinstance(v, dict) and v and not n.startswith("__")]
    with R.memo() as outer, R.memo() as inner:          # a nested analysis shares the enclosing one's
        assert inner is outer
