"""The published architectures under arch_specs/ (and examples/quickstart.yaml) against their reports.

Every spec validates, builds, and matches its golden markdown table (tests/golden/<stem>.md);
the reports' exact parameter counts and printed shapes are asserted; the assignment's constraints
pass on the project's C1C2C3C4 designs and fail on two_branch_dilated.yaml for the RF rule only.

Regenerate the golden tables after an intended change with::

    RFCALC_UPDATE_GOLDEN=1 pytest tests/test_arch_specs.py
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rfcalc
from rfcalc.analysis.checker import check_spec
from rfcalc.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_specs"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("RFCALC_UPDATE_GOLDEN") == "1"

ARCH_NAMES = ["two_branch_dilated", "dws_dilated_c1c2c3c4", "skip_bn", "skip_gn", "skip_ln", "ultimus",
              "custom_resnet", "c1c2c3c4_cifar10", "c1c2c3c4_dilated", "resnet_sep_cifar10", "resnet_sep_100k"]
SPECS = {name: ARCH / f"{name}.yaml" for name in ARCH_NAMES} | {"quickstart": ROOT / "examples" / "quickstart.yaml"}
SEEDS = {"two_branch_dilated": "000_", "dws_dilated_c1c2c3c4": "001_", "skip_bn": "002_", "skip_gn": "002_",
         "skip_ln": "002_", "ultimus": "003_", "custom_resnet": "004_"}

# The assignment of seeds 000 and 001: RF > 44, under 200k parameters, a dilated and a depthwise conv,
# GAP, no max-pooling. Given as overrides, so they hold whatever a spec's own `constraints` say.
# A spec's own constraints are checked without the repository's pyproject.toml (use_pyproject=False).
ASSIGNMENT = {"rf": {"gt": 44}, "params": {"lt": 200_000}, "require": ["dilated_conv", "depthwise_conv", "gap"],
              "forbid": ["maxpool"]}


def _spec(name: str) -> rfcalc.Spec:
    return rfcalc.load_spec(SPECS[name])


def test_every_spec_is_here() -> None:
    assert sorted(p.stem for p in ARCH.glob("*.yaml")) == sorted(ARCH_NAMES)


# -- golden tables ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
def test_markdown_table_matches_golden(name: str) -> None:
    result = CliRunner().invoke(app, ["table", str(SPECS[name]), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{name}.md"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.stdout, encoding="utf-8")
    assert golden.is_file(), f"no golden table {golden}; run with RFCALC_UPDATE_GOLDEN=1 to write it"
    assert result.stdout == golden.read_text(encoding="utf-8"), (
        f"`rfcalc table {SPECS[name].relative_to(ROOT)} --format markdown` differs from {golden.relative_to(ROOT)}; "
        "if the change is intended, rerun with RFCALC_UPDATE_GOLDEN=1")


# -- headers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ARCH_NAMES)
def test_header_names_its_report_and_the_true_numbers(name: str) -> None:
    text = SPECS[name].read_text(encoding="utf-8")
    assert text.startswith("#")
    header = text.split("\nversion:")[0]
    if name in SEEDS:
        assert f"seeds/{SEEDS[name]}" in header
        assert "report claims" in header
    found = re.search(r"rfcalc computes:\s*([\d,]+) parameters[^\n]*?RF (\d+)", header)
    assert found, "the header must say what rfcalc computes: 'rfcalc computes: N parameters ... RF R'"
    report = _spec(name).report
    assert int(found.group(1).replace(",", "")) == report.params
    assert (int(found.group(2)),) * 2 == report.rf


# -- the reports' exact numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "params"), [("two_branch_dilated", 94_292), ("ultimus", 25_786),
                                              ("custom_resnet", 6_575_370)])
def test_exact_parameter_counts(name: str, params: int) -> None:
    assert _spec(name).report.params == params


def test_two_branch_dilated_rf_is_39_not_51() -> None:
    report = _spec("two_branch_dilated").report
    assert report.rf == (39, 39)
    # the hand-made table's mistakes: reduction 1 gives 5x5 (not 6x6), reduction 2 gives 3x3 (not 6x6)
    assert report.row("conv5_red1").out_shape == (30, 5, 5)
    assert report.row("conv5_red2").out_shape == (10, 3, 3)
    assert report.row("conv5_red2").geo_out.rf == (31, 31)
    assert report.row("branches").geo_out.rf == (15, 15)
    assert report.row("branches.1.conv1b").in_shape == (3, 32, 32)
    assert report.row("branches.1.conv3b").in_shape == (24, 28, 28)


# torchsummary of seed 004, as printed (layer type, output shape, params)
CUSTOM_RESNET_SUMMARY = """
Conv2d-1 [-1, 64, 32, 32] 1,792
BatchNorm2d-2 [-1, 64, 32, 32] 128
ReLU-3 [-1, 64, 32, 32] 0
Conv2d-4 [-1, 128, 32, 32] 73,856
MaxPool2d-5 [-1, 128, 16, 16] 0
BatchNorm2d-6 [-1, 128, 16, 16] 256
ReLU-7 [-1, 128, 16, 16] 0
Conv2d-8 [-1, 128, 16, 16] 147,584
BatchNorm2d-9 [-1, 128, 16, 16] 256
ReLU-10 [-1, 128, 16, 16] 0
Conv2d-11 [-1, 128, 16, 16] 147,584
BatchNorm2d-12 [-1, 128, 16, 16] 256
ReLU-13 [-1, 128, 16, 16] 0
ResBlock-14 [-1, 128, 16, 16] 0
Conv2d-15 [-1, 256, 14, 14] 295,168
MaxPool2d-16 [-1, 256, 7, 7] 0
BatchNorm2d-17 [-1, 256, 7, 7] 512
ReLU-18 [-1, 256, 7, 7] 0
Conv2d-19 [-1, 512, 7, 7] 1,180,160
MaxPool2d-20 [-1, 512, 4, 4] 0
BatchNorm2d-21 [-1, 512, 4, 4] 1,024
ReLU-22 [-1, 512, 4, 4] 0
Conv2d-23 [-1, 512, 4, 4] 2,359,808
BatchNorm2d-24 [-1, 512, 4, 4] 1,024
ReLU-25 [-1, 512, 4, 4] 0
Conv2d-26 [-1, 512, 4, 4] 2,359,808
BatchNorm2d-27 [-1, 512, 4, 4] 1,024
ReLU-28 [-1, 512, 4, 4] 0
ResBlock-29 [-1, 512, 4, 4] 0
MaxPool2d-30 [-1, 512, 1, 1] 0
Flatten-31 [-1, 512] 0
Linear-32 [-1, 10] 5,130
"""
TORCH_OPS = {"Conv2d": "conv", "BatchNorm2d": "bn", "ReLU": "relu", "MaxPool2d": "maxpool", "ResBlock": "add",
             "Flatten": "flatten", "Linear": "linear"}


def _summary(text: str) -> list[tuple[str, tuple[int, ...], int]]:
    rows = []
    for line in text.strip().splitlines():
        layer, shape, params = re.fullmatch(r"(\w+)-\d+ \[-1, ([\d, ]+)\] ([\d,]+)", line.strip()).groups()
        rows.append((TORCH_OPS[layer], tuple(int(s) for s in shape.split(", ")), int(params.replace(",", ""))))
    return rows


def test_custom_resnet_matches_its_printed_summary_row_by_row() -> None:
    report = _spec("custom_resnet").report
    assert [(r.op, r.out_shape, r.params) for r in report.rows] == _summary(CUSTOM_RESNET_SUMMARY)
    # the two odd steps of the printed shapes: 16 -> 14 (unpadded conv) and 7 -> 4 (ceil_mode pool)
    assert report.row("layer2.conv").in_shape[1:] == (16, 16)
    assert report.row("layer2.conv").out_shape[1:] == (14, 14)
    assert report.row("layer3.pool").in_shape[1:] == (7, 7)
    assert report.row("layer3.pool").out_shape[1:] == (4, 4)


def test_ultimus_matches_its_printed_summary() -> None:
    report = _spec("ultimus").report
    convs = [(r.out_shape, r.params) for r in report.rows if r.op == "conv"]
    assert convs == [((16, 30, 30), 448), ((32, 28, 28), 4_640), ((48, 26, 26), 13_872)]
    blocks = [r for r in report.rows if r.op == "ultimus"]
    assert [(r.out_shape, r.params) for r in blocks] == [((48,), 3 * 384 + 432)] * 4
    assert (report.rows[-1].op, report.rows[-1].out_shape, report.rows[-1].params) == ("linear", (10,), 490)


@pytest.mark.parametrize("name", ["skip_bn", "skip_gn", "skip_ln"])
def test_skip_variants(name: str) -> None:
    spec = _spec(name)
    ops = [r.op for r in spec.report.rows]
    assert spec.report.params < 50_000
    assert spec.report.params == _spec("skip_bn").report.params      # BN, GN and LN all count 2*C
    norm = name.removeprefix("skip_")
    assert norm in ops and not ({"bn", "gn", "ln"} - {norm}) & set(ops)
    assert ops.count("maxpool") == 2 and ops.count("gap") == 1 and ops.count("add") == 1


# -- constraints -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["c1c2c3c4_cifar10", "c1c2c3c4_dilated", "dws_dilated_c1c2c3c4", "resnet_sep_cifar10",
                                  "resnet_sep_100k"])
def test_assignment_constraints_pass(name: str) -> None:
    own = check_spec(_spec(name), use_pyproject=False)
    assert own.ok, [r.message for r in own.rules if not r.ok]
    assignment = rfcalc.check(_spec(name), **ASSIGNMENT)
    assert assignment.ok, [r.message for r in assignment.rules if not r.ok]
    assert len(assignment.rules) == 6


def test_two_branch_dilated_fails_the_rf_rule_only() -> None:
    for result in (check_spec(_spec("two_branch_dilated"), use_pyproject=False),
                   rfcalc.check(_spec("two_branch_dilated"), **ASSIGNMENT)):
        assert not result.ok
        failed = [r for r in result.rules if not r.ok]
        assert [(r.kind, r.value) for r in failed] == [("rf", [39, 39])]
        assert len(result.rules) >= 5


@pytest.mark.parametrize("name", ["skip_bn", "skip_gn", "skip_ln", "ultimus", "custom_resnet", "quickstart"])
def test_other_specs_pass_their_own_constraints(name: str) -> None:
    result = check_spec(_spec(name), use_pyproject=False)
    assert result.rules and result.ok, [r.message for r in result.rules if not r.ok]


def test_dilated_variant_has_no_stride_and_no_pooling_but_gap() -> None:
    report = _spec("c1c2c3c4_dilated").report
    assert all(r.stride in (None, (1, 1)) for r in report.rows if r.op == "conv")
    assert {r.op for r in report.rows} & {"maxpool", "avgpool"} == set()
    assert report.rf[0] > 44


def test_check_cli_exit_codes() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["check", *(str(ARCH / f"{n}.yaml") for n in
                                        ("c1c2c3c4_cifar10", "c1c2c3c4_dilated", "dws_dilated_c1c2c3c4"))])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["check", str(ARCH / "two_branch_dilated.yaml")])
    assert bad.exit_code == 1, bad.output
    assert "39" in bad.output


# -- builds ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
def test_builds_with_the_reported_parameter_count(name: str) -> None:
    import torch

    spec = _spec(name)
    model = rfcalc.build_model(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == spec.report.params
    with torch.no_grad():
        out = model(torch.zeros(2, *spec.input_shape))
    assert tuple(out.shape) == (2, *spec.report.output.out_shape)


# -- examples/README.md ----------------------------------------------------------------------------------------
def test_examples_readme_shows_the_current_output() -> None:
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert (GOLDEN / "quickstart.md").read_text(encoding="utf-8").strip() in readme
    two_branch = (GOLDEN / "two_branch_dilated.md").read_text(encoding="utf-8").strip().splitlines()
    assert two_branch[-1] in readme                  # the summary line; the rows are shown with bold cells
    for name in ARCH_NAMES:
        assert f"`{name}.yaml`" in readme
    runner = CliRunner()
    for spec in ("examples/quickstart.yaml", "arch_specs/two_branch_dilated.yaml"):
        result = runner.invoke(app, ["check", str(ROOT / spec)])
        shown = result.stdout.replace(str(ROOT / spec), spec).strip()
        assert shown in readme, shown


def test_examples_readme_export_step(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "quickstart_model.py"
    result = CliRunner().invoke(app, ["export", str(SPECS["quickstart"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    namespace: dict[str, object] = {"__name__": "exported"}
    exec(compile(out.read_text(encoding="utf-8"), str(out), "exec"), namespace)
    modules = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == "exported"]
    spec = _spec("quickstart")
    counts = {sum(p.numel() for p in cls().parameters()) for cls in modules
              if cls.__name__ not in ("Parallel", "Residual", "GlobalPool", "Ultimus")}
    assert counts == {spec.report.params}
