"""`suggest -o`: the fix is spliced into the user's YAML. Everything but the edited values stays byte for byte
(comments, key order, flow style); the text always parses to exactly the spec the search evaluated."""
from __future__ import annotations

import difflib
import random
from typing import Any

import pytest
import yaml
from conftest import ROOT
from suggest_cases import BUNDLED

from rfcalc.analysis.checker import evaluate_rules, merge_constraints
from rfcalc.analysis.load import load_spec
from rfcalc.errors import SpecError
from rfcalc.spec.random_specs import random_spec, valid_specs
from rfcalc.spec.source import parse_yaml
from rfcalc.suggest import kinds, suggest
from rfcalc.suggest.apply import apply_edits
from rfcalc.suggest.edits import Edit
from rfcalc.suggest.result import Status
from rfcalc.suggest.sites import find_sites, node_keys
from rfcalc.suggest.yaml_patch import patch_text, write_fix


def _failing_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rules that make a bundled spec fail as it is written (no layer changed), so that the real file is patched."""
    report = load_spec(data).report
    tables = [{"rf": {"gt": max(report.rf) + 6}}, {"params": {"lt": int(report.params * 0.9)}},
              {"macs": {"lt": int(report.macs * 0.9)}}]
    ops = {row.op for row in report.rows}
    if not any(r.op == "conv" and max(r.dilation or (1,)) > 1 for r in report.rows):
        tables.append({"require": ["dilated_conv"]})
    if "maxpool" in ops:
        tables.append({"forbid": ["maxpool"]})
    return tables


def _edited_lines(text: str, edits: tuple[Edit, ...]) -> set[int]:
    """0-based lines of the layers the edits touch, in the original text (a whole layer for a block mapping)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: set[int] = set()
    for edit in edits:
        node = root
        for part in edit.site[:-1]:
            node = dict((k.value, v) for k, v in node.value)[part] if isinstance(node, yaml.MappingNode) \
                else node.value[part]
        items = node.value
        index = edit.site[-1]
        target = items[index] if isinstance(index, int) and index < len(items) else None
        if target is not None:
            lines.update(range(target.start_mark.line, target.end_mark.line + 1))
    return lines


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
@pytest.mark.slow
def test_fixes_of_bundled_specs_keep_every_other_line(path) -> None:
    text = path.read_text(encoding="utf-8")
    data, _ = parse_yaml(text, str(path))
    checked = 0
    for table in _failing_tables(data):
        spec = load_spec(path)
        constraints, _ = merge_constraints([("test", table)])
        result = suggest(spec, constraints, top=1)
        assert result.status is Status.FIXED, table
        edits = result.suggestions[0].edits
        fixed, kept = write_fix(text, edits, str(path))
        assert kept, (path.name, table)
        assert parse_yaml(fixed, "fixed")[0] == apply_edits(data, edits)
        assert all(r.ok for r in evaluate_rules(load_spec(fixed).report, constraints))
        before, after = text.splitlines(), fixed.splitlines()
        allowed = _edited_lines(text, edits)
        for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if tag in ("replace", "delete"):
                assert set(range(i1, i2)) <= allowed, (path.name, table, before[i1:i2])
        comments = [line for line in before if line.lstrip().startswith("#")]
        assert [line for line in after if line.lstrip().startswith("#")] == comments
        checked += 1
    assert checked >= 3


def _yaml_texts(data: dict[str, Any]) -> list[str]:
    """The same spec written three ways: block style, flow leaves (PyYAML's default), and one flow mapping per
    layer with a comment on every layer line, the way the bundled specs are written."""
    block = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    leaves = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=80)
    head = yaml.safe_dump({k: v for k, v in data.items() if k != "layers"}, sort_keys=False,
                          default_flow_style=None)
    layers = "".join(f"  - {yaml.safe_dump(layer, default_flow_style=True, width=10**6).strip()}   # layer {i}\n"
                     for i, layer in enumerate(data["layers"]))
    return [block, leaves, f"# a comment on top\n{head}layers:\n{layers}# the end\n"]


def _sample_edits(data: dict[str, Any], rng: random.Random) -> list[Edit]:
    spec = load_spec(data)
    names, _ = node_keys(spec.nodes)
    sites = find_sites(data, names)
    edits: list[Edit | None] = []
    for site in sites.sites:
        if site.op == "conv":
            edits += [kinds.dilation(site, 2, True), kinds.padding(site, 3), kinds.separable(site, True),
                      kinds.separable(site, False), kinds.width(site, 5), kinds.depthwise(site, False)]
        if site.op in ("maxpool", "avgpool"):
            edits += [kinds.pool_to_conv(site), kinds.replace_op(site, "avgpool")]
        if site.op not in ("parallel", "residual"):
            edits.append(kinds.remove(site))
    for sequence in sites.sequences:
        items: Any = data
        for part in sequence:
            items = items[part]
        for index in {0, len(items), len(items) // 2}:
            edits.append(kinds.insert(sequence, index, {"op": "conv", "name": "new", "k": 3, "padding": 1}))
    found = [e for e in edits if e is not None]
    return rng.sample(found, min(12, len(found)))


@pytest.mark.parametrize("seed", [s for s, _ in valid_specs(12, first_seed=300)])
@pytest.mark.slow
def test_splicing_random_edits_into_random_layouts(seed: int) -> None:
    """Single edits, and pairs whose second edit is made on the spec the first one left (as the search does)."""
    data = random_spec(seed)
    rng = random.Random(seed)
    for text in _yaml_texts(data):
        assert parse_yaml(text, "t")[0] == data
        for edit in _sample_edits(data, rng):
            patched = patch_text(text, [edit])
            assert parse_yaml(patched, "t")[0] == apply_edits(data, [edit]), (edit, text, patched)
            try:
                then = _sample_edits(apply_edits(data, [edit]), rng)[:2]
            except SpecError:      # the first edit made the spec invalid: nothing to build on
                continue
            for second in then:
                patched = patch_text(text, [edit, second])
                assert parse_yaml(patched, "t")[0] == apply_edits(data, [edit, second]), (edit, second, patched)


def test_two_edits_in_a_row_and_crlf_line_ends() -> None:
    text = ("version: 1\r\nname: x   # the name\r\ninput: {channels: 3, size: 16}\r\nlayers:\r\n"
            "  - {op: conv, out: 8, padding: 1}   # first\r\n  - op: conv\r\n    out: 8\r\n  - {op: gap}\r\n")
    data, _ = parse_yaml(text, "t")
    names, _ = node_keys(load_spec(data).nodes)
    sites = {s.key: s for s in find_sites(data, names).sites}
    edits = [kinds.dilation(sites[("layers", 0)], 2, True), kinds.kernel(sites[("layers", 1)], 5),
             kinds.insert(("layers",), 2, {"op": "conv", "name": "extra", "k": 1})]
    patched = patch_text(text, [e for e in edits if e is not None])
    assert patched == ("version: 1\r\nname: x   # the name\r\ninput: {channels: 3, size: 16}\r\nlayers:\r\n"
                       "  - {op: conv, out: 8, padding: 2, dilation: 2}   # first\r\n  - op: conv\r\n    out: 8\r\n"
                       "    k: 5\r\n    padding: 1\r\n  - {op: conv, name: extra, k: 1}\r\n  - {op: gap}\r\n")


def test_yaml_the_splicer_does_not_handle_falls_back_to_exact_content() -> None:
    text = ("version: 1\nname: x\ninput: {channels: 3, size: 16}\n"
            "layers:\n  - &c {op: conv, out: 8, padding: 1}\n  - *c\n  - {op: gap}\n")
    data, _ = parse_yaml(text, "t")
    names, _ = node_keys(load_spec(data).nodes)
    site = next(s for s in find_sites(data, names).sites if s.key == ("layers", 1))
    edit = kinds.width(site, 16)
    fixed, kept = write_fix(text, [edit], "t")
    assert not kept
    assert parse_yaml(fixed, "t")[0] == apply_edits(data, [edit])
    assert parse_yaml(fixed, "t")[0]["layers"][:2] == [{"op": "conv", "out": 8, "padding": 1},
                                                       {"op": "conv", "out": 16, "padding": 1}]


def test_golden_fixed_two_branch_dilated(runner, tmp_path) -> None:
    from test_suggest_cli import golden

    from rfcalc.cli.app import app

    out = tmp_path / "fixed.yaml"
    result = runner.invoke(app, ["suggest", str(ROOT / "arch_specs" / "two_branch_dilated.yaml"), "-o", str(out),
                                 "-f", "json"])
    assert result.exit_code == 0, result.output
    golden("two_branch_dilated.fixed.yaml", out.read_text(encoding="utf-8"))
    check = runner.invoke(app, ["check", str(out)])
    assert check.exit_code == 0 and "RF 47 > 44 ✓" in check.stdout
