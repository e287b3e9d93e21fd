"""The sweep file: one located line and exit 2 per family of mistakes; paths into the spec; the JSON Schema.

Torch-free and fast (no trial runs here)."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import optuna  # noqa: F401
import pytest
import yaml

from rfcalc.cli.app import app
from rfcalc.spec.models import OPS
from rfcalc.sweep.load import load_sweep
from rfcalc.sweep.paths import PathError, apply, locate, parse_path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")

BASE = """\
version: 1
name: tiny
input: {channels: 3, size: 32}
classes: 10
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
layers:
  - {op: conv, name: c1, out: 8}
  - {op: conv, name: c2, out: 16, stride: 2, dilation: 2, padding: 2}
  - {op: conv, name: c3, out: 16, stride: 2}
  - {op: gap, name: gap}
  - {op: linear, name: fc, out: 10}
constraints:
  params: {lt: 8k}
  require: [dilated_conv]
"""

GOOD = """\
version: 1
spec: base.yaml
space:
  width: {path: [layers.c2.out, layers.c3.out], int: [8, 48], step: 8}
  dilation: {path: [layers.c2.dilation, layers.c2.padding], choices: [1, 2]}
  lr: {path: train.lr, float: [0.001, 0.01], log: true}
budget: {epochs: 2, train_limit: 1000, test_limit: 200, batch_size: 32}
trials: 6
"""


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


CASES = {
    "unknown_key": (GOOD + "trails: 3\n",
                    "sweep.yaml:9:1: trails: unknown key 'trails' (did you mean 'trials'?); allowed: budget, "
                    "constraints, data, enqueue, min_epochs, name, objective, population, prune_after, pruner, "
                    "reduction_factor, seed, space, spec, startup_trials, timeout, trials, version"),
    "unknown_dimension_key": (_edit("int: [8, 48]", "intt: [8, 48]"),
                              "sweep.yaml:4:49: space.width.intt: unknown key 'intt' (did you mean 'int'?); allowed: "
                              "choices, float, int, log, path, step"),
    "no_such_layer": (_edit("layers.c3.out]", "layers.c9.out]"),
                      "sweep.yaml:4:33: space.width.path[1]: layers has no item named 'c9'; names: c1, c2, c3, gap, "
                      "fc"),
    "no_such_field": (_edit("[layers.c2.out,", "[layers.c2.outt,"),
                      "sweep.yaml:4:18: space.width.path[0]: layers.c2 has no key 'outt' (did you mean 'out'?); "
                      "allowed: act, bias, dilation, dropout, groups, k, name, norm, norm_groups, op, out, padding, "
                      "repeat, separable, stride"),
    "index_past_end": (_edit("[layers.c2.out,", "['layers[9].out',"),
                       "sweep.yaml:4:18: space.width.path[0]: layers has 5 items; index 9 is past its end"),
    "unreadable_path": (_edit("path: train.lr", "path: 'train..lr'"),
                        "sweep.yaml:6:14: space.lr.path: cannot read path 'train..lr' at character 6; write dotted "
                        "keys with [i] indexes, e.g. layers.c1.out, layers[3].dilation or train.lr"),
    "two_kinds": (_edit("choices: [1, 2]", "choices: [1, 2], int: [1, 2]"),
                  "sweep.yaml:5:13: space.dilation: give exactly one of int: [low, high], float: [low, high] or "
                  "choices: [...], got int and choices"),
    "low_above_high": (_edit("int: [8, 48]", "int: [48, 8]"),
                       "sweep.yaml:4:10: space.width: int: low must be <= high, got [48, 8]"),
    "one_path_two_dimensions": (_edit("[layers.c2.dilation, layers.c2.padding]", "[layers.c2.dilation, layers.c2.out]"),
                                "sweep.yaml:5:41: space.dilation.path[1]: layers.c2.out is also set by space.width; "
                                "a path belongs to one dimension"),
    "budget_and_space": (_edit("path: train.lr, float: [0.001, 0.01], log: true", "path: train.epochs, int: [1, 3]"),
                         "sweep.yaml:6:14: space.lr.path: budget.epochs sets train.epochs for every trial; search it "
                         "here or set it there, not both"),
    "labelled_choice_path": (_edit("  lr: {path: train.lr, float: [0.001, 0.01], log: true}\n",
                                   "  norm:\n    choices:\n      bn: {defaults.conv.norm: bn}\n"
                                   "      gn: {defaults.cnov.norm: gn, defaults.conv.norm_groups: 4}\n"),
                             "sweep.yaml:9:12: space.norm.choices.gn: defaults has no key 'cnov' (did you mean "
                             f"'conv'?); allowed: {', '.join(sorted(OPS))}"),
    "enqueue_unknown": (GOOD + "enqueue:\n  - {widht: 8}\n",
                        "sweep.yaml:10:6: enqueue[0].widht: no dimension 'widht' in space (did you mean 'width'?); "
                        "dimensions: width, dilation, lr"),
    "enqueue_off_grid": (GOOD + "enqueue:\n  - {width: 12}\n",
                         "sweep.yaml:10:13: enqueue[0].width: must be in [8, 48] on the grid 8, 16, ..., got 12"),
    "objective": (GOOD + "objective: [accuracy, flops]\n",
                  "sweep.yaml:9:12: objective: must be accuracy, [accuracy, params] or [accuracy, macs], got "
                  "['accuracy', 'flops']"),
    "pruner_two_objectives": (GOOD + "objective: [accuracy, params]\npruner: median\n",
                              "sweep.yaml:10:9: pruner: Optuna cannot prune the trials of a two-objective study; use "
                              "pruner: none, got 'median'"),
    "timeout": (GOOD + "timeout: soon\n",
                "sweep.yaml:9:10: timeout: must be a duration like 90, \"90s\", \"3m\" or \"1.5h\", got 'soon'"),
    "budget_missing_epochs": (_edit("budget: {epochs: 2, ", "budget: {"),
                              "sweep.yaml:7:9: budget.epochs: required, but missing"),
    "base_spec_missing": (_edit("spec: base.yaml", "spec: nobase.yaml"), None),
    "inline_spec_invalid": ("version: 1\nspec:\n  version: 1\n  name: inline\n  input: {channels: 3, size: 32}\n"
                            "  layers:\n    - {op: conv, out: 8, dilation: 0}\n    - {op: gap}\n"
                            "space:\n  w: {path: 'layers[0].out', int: [8, 16]}\nbudget: {epochs: 1}\ntrials: 2\n",
                            "sweep.yaml:7:36: spec.layers[0].dilation: must be >= 1, got 0"),
    "model_spec": (BASE, "sweep.yaml:1:1: this is a model spec (it has layers:), not a sweep file; a sweep file "
                         "names it: version: 1, spec: sweep.yaml, space: {width: {path: layers.c1.out, int: [16, 64], "
                         "step: 16}}, budget: {epochs: 2}, trials: 12 (docs/sweep.md)"),
    "first_rung_past_the_budget": (GOOD + "pruner: hyperband\nmin_epochs: 3\n",
                                   "sweep.yaml:10:13: min_epochs: the first rung of the hyperband pruner must be "
                                   "within budget.epochs (2), got 3"),
    "holdout_not_positive": (_edit("batch_size: 32}", "batch_size: 32, holdout: 0}"),
                             "sweep.yaml:7:82: budget.holdout: must be >= 1, got 0"),
    "not_a_mapping": ("- a list\n", "sweep.yaml:1:1: a sweep file is a mapping with version, spec, space, budget and "
                                    "trials, got list"),
    "bad_yaml": ("version: [1\n", "sweep.yaml:1:10: invalid YAML: the '[' opened here is not closed, or an item "
                                  "before it lacks its ',' (the parser stopped at line 2, column 1: did not find "
                                  "expected ',' or ']')"),
    "empty": ("\n", "sweep.yaml:1:1: the sweep file is empty; it needs at least `version`, `spec`, `space`, `budget` "
                    "and `trials`"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sweep_file_is_one_located_line_and_exit_2(case: str, runner, tmp_path: Path, monkeypatch) -> None:
    text, expected = CASES[case]
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sweep", "sweep.yaml"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and LINE.match(lines[0]), result.stderr
    if expected is None:  # the message holds this machine's absolute folder
        assert lines[0] == f"sweep.yaml:2:7: spec: nobase.yaml: no such file (looked in {tmp_path.resolve()}); " \
                           f"give a spec file or an inline spec"
    else:
        assert lines[0] == expected
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--timeout", "0"], "--timeout 0: must be a positive duration, got '0'"),
    (["--trials", "0"], "--trials 0: must be >= 1"),
    (["--device", "tpu"], "--device tpu: unknown device; use auto, cpu, cuda, cuda:N or mps"),
    (["--train-command", " "], "--train-command: empty; give the command that starts `rfcalc train`"),
    (["--show"], "--show: no study in {out} yet (no study.db); run the sweep first, or give its --out / --storage"),
    (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot open the study storage: Can't load plugin: "
                                    "sqlalchemy.dialects:nosuchdb"),
    # issue 25 #11: data that is not there, or does not fit the spec, is found before the study is made
    (["--data", "nosuch"], "--data {tmp}/nosuch: no such file or folder; pass {layouts}, or cifar10 / cifar100"),
    (["--data", "three"], "the spec says classes: 10, but {tmp}/three has 3 classes (c0, c1, c2)"),
])
def test_bad_flags_are_one_line_and_exit_2(args, message, runner, tmp_path: Path, monkeypatch) -> None:
    import cv2
    import numpy as np

    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(GOOD, encoding="utf-8")
    for folder, classes in (("data", 10), ("three", 3)):  # two 32x32 images per class and split
        for split in ("train", "test"):
            for c in range(classes):
                (tmp_path / folder / split / f"c{c}").mkdir(parents=True)
                for i in range(2):
                    cv2.imwrite(str(tmp_path / folder / split / f"c{c}" / f"{i}.png"), np.full((32, 32, 3), c * 20,
                                                                                             np.uint8))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["sweep", "sweep.yaml", "--data", "data", *args])
    assert result.exit_code == 2, result.output
    out = tmp_path.resolve() / "runs" / "sweep"
    from rfcalc.trainer.datasets import LAYOUTS

    assert result.stderr.strip().splitlines() == [message.format(out=out, tmp=tmp_path.resolve(), layouts=LAYOUTS)]
    if "--storage" not in args:
        assert not (out / "study.db").exists()


# ---------------------------------------------------------------- paths


def test_paths_parse_into_keys_indexes_and_names() -> None:
    assert parse_path("layers.c2_2.dilation") == ("layers", "c2_2", "dilation")
    assert parse_path("layers[4].k") == ("layers", 4, "k")
    assert parse_path("layers.br.paths[0][1].out") == ("layers", "br", "paths", 0, 1, "out")
    for bad in ("", ".layers", "layers..k", "[0].k", "layers.0", "layers[x]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_applied_values_land_where_the_path_says_and_the_base_is_untouched() -> None:
    base = yaml.safe_load(BASE)
    base["layers"].insert(2, {"op": "parallel", "name": "br", "paths": [[{"op": "conv", "out": 4, "padding": 1}],
                                                                       [{"op": "conv", "out": 4, "padding": 1}]]})
    data = apply(base, [(parse_path("layers.c2.dilation"), 3), (parse_path("layers.br.paths[1][0].out"), 12),
                        (parse_path("train.lr"), 0.05), (parse_path("defaults.conv.norm"), "gn"),
                        (parse_path("defaults.conv.norm_groups"), 4), (parse_path("layers[0].out"), 24)])
    assert data["layers"][1]["dilation"] == 3 and base["layers"][1]["dilation"] == 2
    assert data["layers"][2]["paths"][1][0]["out"] == 12
    assert data["train"] == {"lr": 0.05} and "train" not in base
    assert data["defaults"]["conv"]["norm"] == "gn" and data["defaults"]["conv"]["norm_groups"] == 4
    assert data["layers"][0]["out"] == 24


def test_a_path_may_add_a_field_the_spec_leaves_at_its_default_but_not_an_unknown_one() -> None:
    base = yaml.safe_load(BASE)
    container, key = locate(base, parse_path("layers.c3.dilation"))  # c3 has no dilation: the default 1
    assert key == "dilation" and container is base["layers"][2]
    locate(base, parse_path("train.weight_decay"))  # no train: section yet
    with pytest.raises(PathError, match="layers.c3 has no key 'dilaton' \\(did you mean 'dilation'\\?\\)"):
        locate(base, parse_path("layers.c3.dilaton"))
    with pytest.raises(PathError, match="train has no key 'learning_rate'"):
        locate(base, parse_path("train.learning_rate"))


def test_the_sweep_merges_the_rules_of_the_spec_its_pyproject_and_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.rfcalc.constraints]\nrf = { gt = 5 }\n"
                                             "params = { lt = \"20k\" }\n", encoding="utf-8")
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(GOOD + "constraints: {params: {lt: 9k}, forbid: [maxpool]}\n")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    assert sweep.base["constraints"] == {"params": {"lt": "9k"}, "require": ["dilated_conv"], "rf": {"gt": 5},
                                         "forbid": ["maxpool"]}
    assert sweep.name == "sweep" and sweep.budget.flags() == ["--epochs", "2", "--train-limit", "1000",
                                                              "--test-limit", "200", "--batch-size", "32"]


def test_the_digest_ignores_the_size_of_the_sweep_but_not_its_space(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    digests = []
    for text in (GOOD, GOOD.replace("trials: 6", "trials: 60\ntimeout: 2h"),
                 GOOD.replace("int: [8, 48]", "int: [8, 56]")):
        (tmp_path / "sweep.yaml").write_text(text, encoding="utf-8")
        digests.append(load_sweep(tmp_path / "sweep.yaml").digest)
    assert digests[0] == digests[1] != digests[2]


# ---------------------------------------------------------------- schema


def test_the_json_schema_accepts_the_example_and_refuses_a_misspelt_key(runner, tmp_path: Path) -> None:
    import jsonschema
    result = runner.invoke(app, ["sweep-schema", "-o", str(tmp_path / "sweep.schema.json")])
    assert result.exit_code == 0, result.output
    schema = json.loads((tmp_path / "sweep.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("sweep_quick.yaml", "sweep_arch.yaml"):
        example = yaml.safe_load((ROOT / "examples" / name).read_text())
        assert list(validator.iter_errors(example)) == [], name
    inline = yaml.safe_load(GOOD)
    inline["spec"] = yaml.safe_load(BASE)
    assert list(validator.iter_errors(inline)) == []
    inline["spec"]["layers"][0]["kernel"] = 3
    assert [e.validator for e in validator.iter_errors(inline)]
    misspelt = yaml.safe_load(textwrap.dedent(GOOD).replace("budget:", "budgte:"))
    assert {e.validator for e in validator.iter_errors(misspelt)} >= {"required", "additionalProperties"}


def test_the_sweep_page_shows_the_bundled_sweep_example() -> None:
    shown = (ROOT / "docs" / "sweep.md").read_text(encoding="utf-8")
    block = shown[shown.index("```yaml\nspace:\n") + len("```yaml\n"):]
    shown = yaml.safe_load(block[:block.index("```")])
    example = yaml.safe_load((ROOT / "examples" / "sweep_quick.yaml").read_text(encoding="utf-8"))
    assert shown == {key: example[key] for key in ("space", "budget", "trials", "timeout")}


BLOCKS = """\
version: 1
name: blocky
input: {channels: 3, size: 32}
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
blocks:
  dws:
    params: {out: null, dilation: 1}
    layers:
      - {op: conv, groups: depthwise, padding: $dilation, dilation: $dilation, norm: none, act: none}
      - {op: conv, out: $out, k: 1, padding: 0}
layers:
  - {op: conv, name: c1, out: 16, stride: 2}
  - {use: dws, name: d1, out: 32, dilation: 2}
  - {op: gap}
  - {op: linear, out: 10}
constraints: {params: {lt: 2k}}
"""


def test_a_trial_spec_keeps_blocks_and_applies_labelled_choices_and_block_parameters(tmp_path: Path) -> None:
    from rfcalc.analysis.load import load_spec
    from rfcalc.sweep.candidate import judge, make_candidate, write_candidate

    (tmp_path / "base.yaml").write_text(BLOCKS, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(
        "version: 1\nspec: base.yaml\nspace:\n  width: {path: layers.d1.out, choices: [32, 64]}\n"
        "  norm:\n    choices:\n      bn: {defaults.conv.norm: bn}\n"
        "      gn: {defaults.conv.norm: gn, defaults.conv.norm_groups: 4}\n"
        "budget: {epochs: 1}\ntrials: 4\n", encoding="utf-8")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    for values, ok in (({"width": 32, "norm": "gn"}, True), ({"width": 64, "norm": "bn"}, False)):
        candidate = make_candidate(sweep, 7, values)
        path = write_candidate(sweep, candidate, tmp_path / "trials" / f"{values['width']}.yaml")
        verdict = judge(path)
        spec = load_spec(path)
        assert spec.data["blocks"] == yaml.safe_load(BLOCKS)["blocks"]  # blocks intact, expanded only when loaded
        assert spec.data["layers"][1] == {"use": "dws", "name": "d1", "out": values["width"], "dilation": 2}
        assert spec.data["defaults"]["conv"]["norm"] == values["norm"] and spec.name == "blocky-t7"
        assert spec.report.row("d1.1").out_shape[0] == values["width"]
        assert verdict.ok is ok and verdict.params == spec.report.params and 0 <= verdict.seconds < 1
    assert verdict.reason == f"params {spec.report.params:,} < 2,000 ✗ (remove at least {spec.report.params - 1999:,})"
    assert spec.data["defaults"]["conv"].get("norm_groups") is None


def test_every_trial_spec_carries_the_budget_recipe_over_its_own_train_section(tmp_path: Path) -> None:
    """issue 25 #10: the trial spec (and so best.yaml) says how the trial trained - batch size, epochs, aug, seed -
    so that `rfcalc train` on it, with no flag, uses the recipe the sweep measured; the rest of train: is kept."""
    from rfcalc.analysis.load import load_spec
    from rfcalc.sweep.candidate import make_candidate, write_candidate
    from rfcalc.trainer.config import TrainConfig

    (tmp_path / "base.yaml").write_text(BASE + "train: {lr: 0.05, batch_size: 256, epochs: 30, ema: 0.99}\n",
                                        encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(GOOD.replace("batch_size: 32}", "batch_size: 32, aug: fast, seed: 3}"),
                                         encoding="utf-8")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    path = write_candidate(sweep, make_candidate(sweep, 0, {"width": 16, "dilation": 2, "lr": 0.002}),
                           tmp_path / "t0.yaml")
    config = TrainConfig.model_validate(load_spec(path).data["train"])
    assert (config.epochs, config.batch_size, config.aug, config.seed) == (2, 32, "fast", 3)
    assert (config.lr, config.ema) == (0.002, 0.99)  # the sampled value, and the base spec's own


def test_a_use_choice_must_name_a_block_of_the_spec(runner, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "base.yaml").write_text(BLOCKS, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text("version: 1\nspec: base.yaml\nspace:\n  kind: {path: layers.d1.use, "
                                         "choices: [dws, dsw]}\nbudget: {epochs: 1}\ntrials: 4\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sweep", "sweep.yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("sweep.yaml:4:46: space.kind.choices[1]: no block 'dsw' in the spec's blocks "
                                     "(did you mean 'dws'?); blocks: dws")


def _arch_values(sweep, rng) -> dict:
    values = {}
    for dim in sweep.dimensions:
        p = dim.param
        values[dim.name] = (rng.randint(*p.int_range) if p.int_range else round(rng.uniform(*p.float_range), 3)
                            if p.float_range else rng.choice(dim.choices()))
    return values


def test_the_architecture_sweep_example_varies_blocks_depths_strides_and_dilations_and_checks_each_fast(
        tmp_path: Path) -> None:
    """examples/sweep_arch.yaml: every candidate is a valid spec, checked without torch in milliseconds; the
    dimensions change the architecture as their names say (the oracle: the expanded rows of the candidate)."""
    import random

    from rfcalc.analysis.load import load_spec
    from rfcalc.sweep.candidate import judge, make_candidate, write_candidate

    sweep = load_sweep(ROOT / "examples" / "sweep_arch.yaml")
    assert sweep.pruner == "hyperband" and sweep.budget.holdout == 5000 and sweep.budget.test_limit is None
    baseline = dict(sweep.enqueue[0])
    verdict = judge(write_candidate(sweep, make_candidate(sweep, 0, baseline), tmp_path / "base.yaml"))
    assert verdict.ok, verdict.reason

    def rows(values: dict) -> dict:
        spec = load_spec(write_candidate(sweep, make_candidate(sweep, 1, values), tmp_path / "c.yaml"))
        return {r.name: r for r in spec.report.rows}

    base = rows(baseline)
    deeper = rows({**baseline, "s2_depth": 3, "s2_block": "plain", "first_down": "after_stem", "dilated": "s3"})
    assert "s2.r.body.a" in base and "s2.r.body.a" not in deeper  # residual -> plain
    assert [n for n in deeper if n.startswith("s2.") and n.endswith(".a")] == ["s2.0.a", "s2.1.a", "s2.2.a"]
    assert base["stem"].out_shape[1:] == (32, 32) and deeper["stem"].out_shape[1:] == (16, 16)  # the stride moved
    assert base["t1.t"].out_shape[1:] == (16, 16) == deeper["t1.t"].out_shape[1:]
    assert (base["s2.r.body.a"].dilation, base["s3.r.body.a.dw"].dilation) == ((2, 2), (1, 1))
    assert (deeper["s2.0.a"].dilation, deeper["s3.r.body.a.dw"].dilation) == ((1, 1), (2, 2))  # the dilation moved
    rng = random.Random(0)
    verdicts = [judge(write_candidate(sweep, make_candidate(sweep, i, _arch_values(sweep, rng)),
                                      tmp_path / f"t{i}.yaml")) for i in range(40)]
    assert all(v.reason.startswith("params ") for v in verdicts if not v.ok)  # valid specs, over the budget
    assert any(v.ok for v in verdicts) and any(not v.ok for v in verdicts)
    assert all(v.seconds < 1 for v in verdicts)  # milliseconds in practice; 1 s is a wide margin
