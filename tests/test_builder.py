"""build_model: parameters and every row's output shape against the report, module names, the custom modules."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import bundled_specs

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.model.builder import SpecModel
from rfcalc.model.modules import Parallel, Residual, Ultimus
from rfcalc.model.plan import plan_model, row_modules
from rfcalc.model.weights import load_weights

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = bundled_specs()

EVERY_OP = ROOT / "tests" / "specs" / "every_op.yaml"
EVERY_OP_TEXT = EVERY_OP.read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("one_thread")


def load(path: Path) -> rfcalc.Spec:
    return rfcalc.load_spec(path)  # a bundled spec is valid: a SpecError fails the test


def output_shapes(model: torch.nn.Module, spec: rfcalc.Spec) -> dict[str, tuple[int, ...]]:
    """The output shape of every row, read with forward hooks on its module."""
    modules = row_modules(plan_model(spec.nodes, spec.report))
    named = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [named[module].register_forward_hook(
        lambda m, a, out, row=row: shapes.__setitem__(row, tuple(out.shape[1:]))) for row, module in modules.items()]
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, *spec.input_shape))
    for handle in handles:
        handle.remove()
    return shapes


def check_counts_and_shapes(spec: rfcalc.Spec) -> None:
    model = rfcalc.build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.report.params
    shapes = output_shapes(model, spec)
    assert shapes == {row.name: row.out_shape for row in spec.report.rows}


def test_there_are_bundled_specs() -> None:
    assert len(BUNDLED) >= 5


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
def test_bundled_spec_parameters_and_shapes(path: Path) -> None:
    check_counts_and_shapes(load(path))


def test_every_op_parameters_and_shapes() -> None:
    check_counts_and_shapes(rfcalc.load_spec(EVERY_OP_TEXT))


def test_module_names_read_like_the_spec() -> None:
    model = rfcalc.build_model(EVERY_OP_TEXT)
    names = {name for name, _ in model.named_modules()}
    assert {"c1", "c1.conv", "c1.bn", "c1.relu", "d1.0", "d1.1.conv", "branches", "branches.0.conv1.conv",
            "branches.relu", "res.body.conv1", "res.relu", "s1.dw", "s1.pw.gn", "s1.pw.dropout",
            "down.shortcut.conv1", "c5.0", "c5.1", "mp", "pool", "ult.q", "head"} <= names
    assert isinstance(model, SpecModel) and isinstance(model.branches, Parallel) and isinstance(model.res, Residual)
    assert model.res.shortcut is None
    assert model.d1[0].groups == 16 and model.d1[0].padding == (2, 2)
    text = str(model)
    assert "spec='every-op', input=3x32x32" in text and "(branches): Parallel(" in text
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_every_row_has_its_module() -> None:
    spec = rfcalc.load_spec(EVERY_OP_TEXT)
    modules = row_modules(plan_model(spec.nodes, spec.report))
    assert list(modules) == [row.name for row in spec.report.rows] or set(modules) == {
        row.name for row in spec.report.rows}
    assert modules["c1"] == "c1.conv" and modules["d1.0"] == "d1.0" and modules["branches.relu"] == "branches.relu"
    named = dict(rfcalc.build_model(spec).named_modules())
    assert all(module in named for module in modules.values())


def test_ultimus_is_per_sample_attention() -> None:
    torch.manual_seed(0)
    block = Ultimus(6, dim=3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    out = block(x)
    for i in range(4):  # one sample at a time, as written in the contract
        q, k, v = block.q(x[i:i + 1]), block.k(x[i:i + 1]), block.v(x[i:i + 1])
        attention = torch.softmax(q.T @ k / 3 ** 0.5, dim=-1)
        expected = block.out(v @ attention)
        torch.testing.assert_close(out[i:i + 1], expected)
    torch.testing.assert_close(block(x[1:2]), out[1:2])  # no mixing across the batch
    assert sum(p.numel() for p in block.parameters()) == 3 * 6 * 3 + 3 * 6 + 6


def test_parallel_add_and_identity_path() -> None:
    spec = rfcalc.load_spec("""
version: 1
name: add
input: {channels: 4, size: 8}
layers:
  - op: parallel
    name: p
    merge: add
    paths: [[], [{op: conv, out: 4, padding: 1}], [{op: avgpool, k: 3, stride: 1, padding: 1}]]
""")
    model = rfcalc.build_model(spec)
    x = torch.randn(1, 4, 8, 8)
    expected = x + getattr(model.p, "1")(x) + torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    torch.testing.assert_close(model(x), expected)


def test_name_that_clashes_with_a_module_attribute_is_refused_by_the_core() -> None:
    with pytest.raises(rfcalc.SpecError, match="name 'training' is taken by PyTorch's nn.Module"):
        rfcalc.load_spec({"version": 1, "name": "x", "input": {"channels": 1, "size": 4},
                          "layers": [{"op": "relu", "name": "training"}]})


def test_checkpoint_forms_and_mismatch() -> None:
    spec = rfcalc.load_spec(EVERY_OP_TEXT)
    source, target = rfcalc.build_model(spec), rfcalc.build_model(spec)
    load_weights(target, {"model": source.state_dict(), "epoch": 3})
    load_weights(target, source.state_dict())
    torch.testing.assert_close(target.c1.conv.weight, source.c1.conv.weight)
    with pytest.raises(RfcalcError) as missing:
        load_weights(target, {"model": {}})
    assert str(missing.value) == ("the checkpoint does not fit spec 'every-op': 'c1.conv.weight' [16, 3, 3, 3] is "
                                  "missing from the checkpoint")
    other = rfcalc.build_model(EVERY_OP_TEXT.replace("out: 16, padding: 1}", "out: 8, padding: 1}", 1))
    with pytest.raises(RfcalcError) as mismatch:
        load_weights(target, other.state_dict(), source="other.pt")
    assert str(mismatch.value) == ("other.pt does not fit spec 'every-op': 'c1.conv.weight' is [8, 3, 3, 3] in the "
                                   "checkpoint but [16, 3, 3, 3] in the spec")
    with pytest.raises(RfcalcError, match="holds a list, not a state_dict"):
        load_weights(target, [1, 2])


def test_missing_torch_is_one_line() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import rfcalc\n"
            "try:\n    rfcalc.build_model({'version': 1, 'name': 'x', 'input': {'channels': 1, 'size': 4},"
            " 'layers': [{'op': 'relu'}]})\n"
            "except rfcalc.RfcalcError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip() == "build_model needs torch: pip install \"torch==2.13.0\" -e '.[torch]'", done.stderr


def test_core_stays_torch_free() -> None:
    code = ("import sys, rfcalc, rfcalc.model.plan, rfcalc.model.export, rfcalc.render.plot, "
            "rfcalc.spec.random_specs\n"
            "rfcalc.analyze('examples/quickstart.yaml')\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_resnet50_parameters() -> None:
    """bench/resnet50.yaml has torchvision's resnet50 count (how fast it builds: bench/build_speed.py)."""
    spec = rfcalc.load_spec(ROOT / "bench" / "resnet50.yaml")
    model = rfcalc.build_model(spec)
    assert spec.report.params == sum(p.numel() for p in model.parameters()) == 25_557_032
