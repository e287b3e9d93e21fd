"""One test per family of bad input: a located one-line message, exit code 2, never a traceback."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import rfcalc
from rfcalc.cli.app import app
from rfcalc.ops.activation import ACT_NAMES
from rfcalc.ops.fields import one_of
from rfcalc.spec.models import OPS

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")
HEADER = "version: 1\nname: bad\ninput: {channels: 3, size: 16}\n"
ALL_OPS = ", ".join(OPS)  # the vocabulary messages list, from the op registry (a new op changes no case here)


def run_table(runner, path: Path) -> list[str]:
    result = runner.invoke(app, ["table", str(path), "--format", "json"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and result.stdout == ""
    for line in lines:
        assert LINE.match(line), line
    return lines


CASES = {
    'unknown_op': (
        'layers:\n  - {op: conv, out: 8}\n  - {op: cnov, out: 8}\n',
        [f"spec.yaml:6:10: layers[1].op: unknown op 'cnov' (did you mean 'conv'?); allowed: {ALL_OPS}"]),
    'unknown_key': (
        'layers:\n  - {op: conv, out: 8, kernel: 3}\n',
        ["spec.yaml:5:24: layers[0].kernel: unknown key 'kernel' (did you mean 'k'?); allowed: act, bias, dilation, dropout, groups, k, name, norm, norm_groups, op, out, padding, repeat, separable, stride"]),
    'bad_value': (
        'layers:\n  - {op: conv, out: 8}\n  - {op: conv, out: 8, dilation: 0}\n',
        ['spec.yaml:6:34: layers[1].dilation: must be >= 1, got 0']),
    'bad_type': (
        'layers:\n  - {op: conv, out: eight}\n',
        ["spec.yaml:5:21: layers[0].out: must be an integer, got 'eight'"]),
    'bad_enum': (
        'layers:\n  - {op: conv, out: 8, act: rleu}\n',
        [f"spec.yaml:5:29: layers[0].act: must be one of {one_of(('none', *ACT_NAMES))}, got 'rleu'"]),
    'merge_shape_mismatch': (
        'layers:\n  - op: parallel\n    name: br\n    paths:\n      - [{op: conv, out: 4, padding: 1}]\n      - [{op: conv, out: 4}]\n',
        ["spec.yaml:5:5: layers[0] (concat 'br'): paths[0] gives 4x16x16 but paths[1] gives 4x14x14; a merge needs equal spatial sizes"]),
    'merge_channel_mismatch': (
        'layers:\n  - op: residual\n    body: [{op: conv, out: 8, padding: 1}]\n',
        ["spec.yaml:5:5: layers[0] (add 'residual1'): body gives 8x16x16 but the identity shortcut gives 3x16x16; add needs equal channels (use a shortcut conv or concat)"]),
    'merge_jump_mismatch': (
        'layers:\n  - op: parallel\n    name: j\n    paths:\n      - [{op: conv, out: 4, stride: 2, padding: 1}]\n      - [{op: conv, out: 4, k: 1, padding: 0}, {op: avgpool, k: 1, stride: 1}, {op: conv, out: 4, k: 9, padding: 0}]\n',
        ["spec.yaml:5:5: layers[0] (concat 'j'): paths[0] has jump 2 but paths[1] has jump 1; a merge needs equal jumps"]),
    'size_reaches_zero': (
        'layers:\n  - {op: conv, out: 4, stride: 2}\n  - {op: conv, out: 4, k: 9}\n',
        ["spec.yaml:6:5: layers[1] (conv 'conv2'): spatial size reaches zero: input 7 with effective kernel 9, padding 0, stride 1 gives 0; use a smaller kernel or stride, more padding, or fewer reductions"]),
    'linear_on_feature_map': (
        'layers:\n  - {op: conv, out: 4}\n  - {op: linear, name: head, out: 10}\n',
        ["spec.yaml:6:5: layers[1] (linear 'head'): needs a vector input but gets 4x14x14; add {op: gap} or {op: flatten} before it"]),
    'unknown_block': (
        'blocks:\n  dws:\n    layers: [{op: conv, groups: depthwise}]\nlayers:\n  - {use: dwz}\n',
        ["spec.yaml:8:11: layers[0].use: unknown block 'dwz' (did you mean 'dws'?); defined blocks: dws"]),
    'missing_block_param': (
        'blocks:\n  b:\n    params: {out: null}\n    layers: [{op: conv, out: $out}]\nlayers:\n  - {use: b}\n',
        ["spec.yaml:9:5: layers[0]: missing parameter 'out' for block 'b' (it has no default)"]),
    'unknown_block_param': (
        'blocks:\n  b:\n    params: {out: 4}\n    layers: [{op: conv, out: $out}]\nlayers:\n  - {use: b, uot: 3}\n',
        ["spec.yaml:9:14: layers[0].uot: unknown parameter 'uot' for block 'b' (did you mean 'out'?); its params: out"]),
    'block_param_value_located_at_use_site': (
        'blocks:\n  b:\n    params: {k: 3}\n    layers: [{op: conv, k: $k}]\nlayers:\n  - {use: b, k: 0}\n',
        ['spec.yaml:9:17: layers[0] > blocks.b.layers[0].k: must be >= 1, got 0']),
    'duplicate_name': (
        'layers:\n  - {op: conv, name: c1}\n  - {op: conv, name: c1}\n',
        ["spec.yaml:6:22: layers[1].name: duplicate name 'c1', already used by layers[0]; names must be unique"]),
    'duplicate_yaml_key': (
        'layers:\n  - {op: conv, out: 4, out: 8}\n',
        ["spec.yaml:5:24: layers[0].out: duplicate key 'out'; each key may appear once"]),
    'same_padding_with_stride': (
        'layers:\n  - {op: conv, out: 4, stride: 2, padding: same}\n',
        ["spec.yaml:5:5: layers[0] (conv 'conv1'): padding 'same' needs stride 1, got stride 2; give an explicit padding"]),
    'same_padding_even_kernel': (
        'layers:\n  - {op: conv, out: 4, k: 4, padding: same}\n',
        ["spec.yaml:5:5: layers[0] (conv 'conv1'): padding 'same' needs an odd effective kernel, got 4 on axis h (k 4, dilation 1); give an explicit padding"]),
    'groups_do_not_divide': (
        'layers:\n  - {op: conv, out: 4, groups: 2}\n',
        ["spec.yaml:5:5: layers[0] (conv 'conv1'): groups 2 must divide the input channels, got 3 input channels"]),
    'gn_without_groups': (
        'layers:\n  - {op: conv, out: 4, norm: gn}\n',
        ['spec.yaml:5:5: layers[0]: norm: gn needs norm_groups (the number of groups, a divisor of out)']),
    'missing_op': (
        'layers:\n  - {out: 4}\n',
        [f'spec.yaml:5:5: layers[0]: missing `op` (one of {ALL_OPS}) or `use: BLOCK`']),
    'missing_top_level': (
        '',
        ['spec.yaml:1:1: layers: required, but missing']),
    'unknown_top_level': (
        'layers: [{op: gap}]\nlayrs: []\n',
        ["spec.yaml:5:1: layrs: unknown key 'layrs' (did you mean 'layers'?); allowed: blocks, classes, constraints, defaults, input, layers, name, train, version"]),
    'bad_version': ('layers: [{op: gap}]\n', None),
    'pool_padding_too_large': (
        'layers:\n  - {op: maxpool, k: 2, padding: 2}\n',
        ["spec.yaml:5:5: layers[0]: padding must be at most half the kernel (PyTorch's rule), got padding 2 for k 2"]),
    'conv_after_gap': (
        'layers:\n  - {op: gap}\n  - {op: conv, out: 4}\n',
        ["spec.yaml:6:5: layers[1] (conv 'conv2'): needs a feature map (C x H x W) input but gets a vector of 3; conv must come before gap/flatten"]),
    'self_recursive_block': (
        'blocks:\n  b:\n    layers: [{use: b}]\nlayers:\n  - {use: b}\n',
        ["spec.yaml:6:20: layers[0] > blocks.b.layers[0].use: block 'b' uses itself (b -> b)"]),
    'reserved_name': (
        'layers:\n  - {op: conv, name: forward}\n',
        ["spec.yaml:5:22: layers[0].name: name 'forward' is taken by PyTorch's nn.Module (it would hide an "
         "attribute of the built model) or starts with '_'; choose another name"]),
    'groups_do_not_divide_out': (
        'layers:\n  - {op: conv, out: 5, groups: 3}\n',
        ["spec.yaml:5:5: layers[0] (conv 'conv1'): groups 3 must divide out, got out 5"]),
    'norm_groups_do_not_divide_out': (
        'layers:\n  - {op: conv, out: 6, norm: gn, norm_groups: 4}\n',
        ["spec.yaml:5:5: layers[0] (conv 'conv1'): norm_groups 4 must divide out, got out 6"]),
    'gn_groups_do_not_divide_the_channels': (
        'layers:\n  - {op: gn, groups: 2}\n',
        ["spec.yaml:5:5: layers[0] (gn 'gn1'): groups 2 must divide the channels, got 3 channels"]),
    'merge_of_a_map_and_a_vector': (
        'layers:\n  - op: parallel\n    paths: [[{op: gap}], []]\n',
        ["spec.yaml:5:5: layers[0] (concat 'parallel1'): paths[0] gives a vector of 3 but paths[1] gives 3x16x16; "
         "a merge needs both feature maps or both vectors"]),
    'defaults_for_an_unknown_op': (
        'defaults:\n  cnv: {k: 3}\nlayers:\n  - {op: conv}\n',
        [f"spec.yaml:5:3: defaults.cnv: unknown op 'cnv' (did you mean 'conv'?); allowed: {ALL_OPS}"]),
    'defaults_with_a_name': (
        'defaults:\n  conv: {name: c, k: 3}\nlayers:\n  - {op: conv}\n',
        ["spec.yaml:5:10: defaults.conv.name: 'name' cannot have a default"]),
    'defaults_with_a_bad_value_is_one_line_not_one_per_layer': (
        'defaults:\n  conv: {dilation: 0, k: 3}\nlayers:\n  - {op: conv}\n  - {op: conv}\n  - {op: conv, out: 0}\n',
        ["spec.yaml:5:20: defaults.conv.dilation: must be >= 1, got 0",
         "spec.yaml:9:21: layers[2].out: must be >= 1, got 0"]),
    'defaults_not_a_mapping': (
        'defaults:\n  conv: [1, 2]\nlayers:\n  - {op: conv}\n',
        ["spec.yaml:5:9: defaults.conv: must be a mapping, got [1, 2]"]),
    'a_bad_value_that_defaults_also_has_is_located_at_the_layer': (
        'defaults:\n  conv:\n    padding: 1\n    act: relu\nlayers:\n  - op: conv\n    padding: full\n'
        '  - {op: conv, k: 3.5, act: relu7}\n',
        ["spec.yaml:10:14: layers[0].padding: must be an integer or [h, w], got 'full'",
         "spec.yaml:11:19: layers[1].k: must be an integer or [h, w], got 3.5",
         f"spec.yaml:11:29: layers[1].act: must be one of {one_of(('none', *ACT_NAMES))}, got 'relu7'"]),
    'a_rule_broken_by_a_default_names_the_default': (
        'defaults:\n  conv: {groups: 2, norm: gn}\nlayers:\n  - {op: conv, out: 8, separable: true, norm: bn}\n'
        '  - {op: conv, out: 8, groups: 1, norm_groups: 2}\n  - {op: conv, out: 8, groups: 1}\n',
        ["spec.yaml:7:5: layers[0]: separable: true builds its own depthwise conv; leave groups at 1, got 2 "
         "(groups from defaults.conv at line 5)",
         "spec.yaml:9:5: layers[2]: norm: gn needs norm_groups (the number of groups, a divisor of out) "
         "(norm from defaults.conv at line 5)"]),
    'classes_that_the_output_does_not_give': (
        'classes: 100\nlayers:\n  - {op: conv, out: 4}\n  - {op: gap}\n  - {op: linear, name: fc, out: 10}\n',
        ["spec.yaml:4:10: classes: the model's output is [10] per image (layers[2] 'fc' at line 8), not 100 class "
         "scores; end the spec with {op: linear, out: 100} (or a conv to 100 channels and gap), or write classes: 10"]),
    'a_placeholder_typo_in_a_block_is_one_line_however_often_the_block_is_used': (
        'blocks:\n  cb:\n    params: {out: null}\n    layers:\n      - {op: conv, out: $outt}\n'
        'layers:\n  - {use: cb, out: 8}\n  - {use: cb, out: 8}\n',
        ["spec.yaml:8:25: blocks.cb.layers[0].out: unknown parameter '$outt' in block 'cb' (did you mean 'out'?); "
         "its params: out"]),
    'negative_repeat': (
        'layers:\n  - {op: conv, repeat: 0}\n',
        ['spec.yaml:5:24: layers[0].repeat: must be an integer >= 1, got 0']),
    'negative_bound': (
        'layers:\n  - {op: conv}\nconstraints:\n  params: {lt: -5}\n',
        ['spec.yaml:7:16: constraints.params.lt: must be >= 0, got -5']),
    'contradictory_bounds': (
        'layers:\n  - {op: conv}\nconstraints:\n  rf: {gt: 44, lt: 10}\n',
        ['spec.yaml:7:7: constraints.rf: no value is > 44 and < 10: the bounds contradict each other']),
    'bounds_that_meet_exclude_the_point': (
        'layers:\n  - {op: conv}\nconstraints:\n  rf: [">=45", "<45"]\n',
        ['spec.yaml:7:7: constraints.rf: no value is >= 45 and < 45: the bounds contradict each other']),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_family(case, runner, write_spec):
    body, expected = CASES[case]
    text = HEADER + body
    if case == "bad_version":
        text = text.replace("version: 1", "version: 2")
        expected = ["spec.yaml:1:10: version: must be one of 1, got 2"]
    path = write_spec(text)
    lines = [line.replace(str(path), "spec.yaml") for line in run_table(runner, path)]
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected):
        assert line.startswith(want), f"\n got: {line}\nwant: {want}"


def test_a_bad_value_from_defaults_says_so():
    """A value that reaches a layer from `defaults:` is located where `defaults` writes it, and the message says so
    (the expander is given an unchecked default here; load_spec reports a bad default once, as defaults.conv.k)."""
    from rfcalc.spec.expand import Expander, RawLayer
    from rfcalc.spec.source import parse_yaml

    data, source = parse_yaml("defaults:\n  conv: {k: 3.5}\nlayers:\n  - {op: conv, out: 8}\n", "spec.yaml")
    expander = Expander(source, data["defaults"], {})
    expander.sequence([RawLayer(data["layers"][0], ("layers", 0), "layers[0]")], "")
    assert [str(p) for p in expander.problems] == [
        "spec.yaml:2:13: layers[0].k: must be an integer or [h, w], got 3.5 (from defaults.conv at line 2)"]


def test_all_problems_of_a_file_are_reported_at_once(runner, write_spec):
    path = write_spec(HEADER + "layers:\n  - {op: cnov}\n  - {op: conv, k: 0}\n  - {op: conv, strid: 2}\n")
    lines = run_table(runner, path)
    assert [line.split(": ")[1] for line in lines] == ["layers[0].op", "layers[1].k", "layers[2].strid"]


def test_invalid_yaml(runner, write_spec):
    path = write_spec("version: 1\nname: [unclosed\n")
    (line,) = run_table(runner, path)
    assert line.startswith(f"{path}:2:7: invalid YAML: the '[' opened here is not closed, or an item before it "
                           "lacks its ',' (the parser stopped at line 3, column 1: ")
    assert line.endswith("expected ',' or ']')")  # libyaml says "did not find expected", PyYAML "expected"


def test_a_tab_is_named(runner, write_spec):
    path = write_spec("version: 1\nname: t\ninput: {channels: 3, size: 32}\nlayers:\n\t- {op: conv, out: 8}\n")
    (line,) = run_table(runner, path)
    assert line.startswith(f"{path}:5:1: invalid YAML: found character"), line  # libyaml and PyYAML differ here
    assert line.endswith("that cannot start any token (a tab: YAML is indented with spaces)"), line


def test_values_are_spelled_as_in_yaml(runner, write_spec):
    path = write_spec(HEADER + "layers:\n  - {op: conv, out: 8, k: true}\n")
    (line,) = run_table(runner, path)
    assert line.endswith("layers[0].k: must be an integer or [h, w], got true"), line


@pytest.mark.parametrize(("text", "where", "says"), [
    ("input: {channels: 3, size: 32\nlayers:\n  - {op: conv, out: 8}\n", "3:8",
     "the '{' opened here is not closed, or an item before it lacks its ',' (the parser stopped at line 4, "
     "column 7: "),
    ("input: {channels: 3, size: 32}\nlayers: [\n  {op: conv, out: 8},\n  {op: gap}\n", "4:9",
     "the '[' opened here is not closed"),
    ('input: {channels: 3, size: 32}\nlayers:\n  - {op: conv, name: "c1, out: 8}\n', "5:22",
     "the quote opened here is never closed (the parser stopped at line 6, column 1: "),
    ("input: {channels: 3 size: 32}\nlayers:\n  - {op: conv}\n", "3:25", "invalid YAML: "),  # same line: there
])
def test_invalid_yaml_is_located_where_it_opens(runner, write_spec, text, where, says):
    path = write_spec("version: 1\nname: x\n" + text)
    (line,) = run_table(runner, path)
    assert line.startswith(f"{path}:{where}: invalid YAML: ") and says in line, line


@pytest.mark.parametrize("name", ["couche_été", "ﬁlter", "2conv", "c-1"])
def test_names_are_ascii_identifiers(runner, write_spec, name):
    path = write_spec(HEADER + f"layers:\n  - {{op: conv, out: 8, name: \"{name}\"}}\n")
    (line,) = run_table(runner, path)
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "_"))})
    why = f" ({', '.join(map(repr, bad))} is not allowed)" if bad else ""
    assert line.endswith(f"layers[0].name: must be a name of ASCII letters (a-z, A-Z), digits and '_' that does not "
                         f"start with a digit, got '{name}'{why}"), line


def test_block_names_get_the_same_words(runner, write_spec):
    path = write_spec(HEADER + "blocks:\n  bloc_été:\n    layers: [{op: relu}]\nlayers:\n  - {use: bloc_été}\n")
    lines = run_table(runner, path)
    assert "must be a name of ASCII letters (a-z, A-Z), digits and '_'" in lines[0], lines


def test_a_long_value_is_previewed_not_dumped(runner, write_spec):
    block = ("blocks:\n  basic:\n    - {op: residual, body: [{op: conv, out: 8, padding: 1}, "
             "{op: conv, out: 8, padding: 1}]}\n    - {op: relu}\nlayers:\n  - {use: basic}\n")
    (line, *_) = run_table(runner, write_spec(HEADER + block))
    assert line.endswith("blocks.basic: must be a mapping with layers (required) and params, got a list of 2 items: "
                         "[{op: residual, …}, {op: relu}]"), line
    (line,) = run_table(runner, write_spec(HEADER + "layers:\n  - {op: conv, out: " + "x" * 300 + "}\n"))
    assert line.endswith(f"got '{'x' * 40}'… (300 characters)"), line


def test_empty_file(runner, write_spec):
    (line,) = run_table(runner, write_spec(""))
    assert line.endswith("the spec file is empty; it needs at least `version`, `name`, `input` and `layers`")


def test_only_comments_is_empty(runner, write_spec):
    (line,) = run_table(runner, write_spec("# nothing here\n"))
    assert "the spec is empty" in line


def test_binary_file(runner, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (line,) = run_table(runner, path)
    assert line == f"{path}:1:1: binary file, expected YAML text"


def test_not_utf8(runner, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    (line,) = run_table(runner, path)
    assert line == f"{path}:1:1: not UTF-8 text (byte 9), expected YAML"


def test_missing_file(runner, tmp_path):
    (line,) = run_table(runner, tmp_path / "nope.yaml")
    assert line == f"{tmp_path / 'nope.yaml'}:1:1: file not found"


def test_directory_instead_of_file(runner, tmp_path):
    (line,) = run_table(runner, tmp_path)
    assert line.endswith("is a directory, expected a YAML spec file")


def test_top_level_not_a_mapping(runner, write_spec):
    (line,) = run_table(runner, write_spec("- just\n- a list\n"))
    assert line.endswith("the spec must be a mapping with version, name, input and layers, got list")


def test_api_raises_spec_error_with_problems():
    with pytest.raises(rfcalc.SpecError) as info:
        rfcalc.load_spec(HEADER + "layers:\n  - {op: conv, dilation: 0}\n")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.column, problem.path) == ("<string>", 5, 26, "layers[0].dilation")
    assert problem.message == "must be >= 1, got 0"


def test_check_reports_invalid_spec_with_exit_2_and_still_checks_the_others(runner, write_spec):
    good = write_spec(HEADER + "layers: [{op: conv, out: 4}, {op: gap}]\nconstraints: {rf: {gt: 1}}\n", "good.yaml")
    bad = write_spec(HEADER + "layers: [{op: cnov}]\n", "bad.yaml")
    result = runner.invoke(app, ["check", str(good), str(bad), "--format", "json"])
    assert result.exit_code == 2
    import json

    data = json.loads(result.stdout)
    assert [r["ok"] for r in data["results"]] == [True]
    assert data["errors"][0]["path"] == "layers[0].op" and data["errors"][0]["line"] == 4
