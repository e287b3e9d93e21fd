"""`rfcalc erf` (effective receptive field) and `rfcalc table --plot` (RF per layer): numbers and readable PNGs."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import matplotlib  # noqa: F401 - the train extra
import pytest
import torch

import rfcalc
from rfcalc.cli.app import app
from rfcalc.model.erf import effective_rf, last_feature_map, mass_square
from rfcalc.render.plot import plotted_rows, write_rf_plot

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "arch_specs" / "two_branch_dilated.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_mass_square() -> None:
    delta = [[0.0] * 5 for _ in range(5)]
    delta[2][2] = 1.0
    assert mass_square(delta, (Fraction(2), Fraction(2)), 0.95) == 1
    flat = [[1.0] * 5 for _ in range(5)]
    assert mass_square(flat, (Fraction(2), Fraction(2)), 0.95) == 5
    assert mass_square(flat, (Fraction(2), Fraction(2)), 0.3) == 3           # 9 of 25 cells
    assert mass_square(flat, (Fraction(3, 2), Fraction(3, 2)), 0.1) == 2     # a half-pixel centre: even sides
    assert mass_square([[0.0]], (Fraction(0), Fraction(0)), 0.95) == 0


def test_erf_lies_inside_the_theoretical_window() -> None:
    spec = rfcalc.load_spec(SPEC)
    result = effective_rf(spec, batch=4)
    assert result.row == last_feature_map(spec)
    (h_lo, h_hi), (w_lo, w_hi) = result.window(0), result.window(1)
    heat = torch.tensor(result.heat)
    inside = torch.zeros_like(heat, dtype=torch.bool)
    inside[max(0, int(h_lo)):int(h_hi) + 1, max(0, int(w_lo)):int(w_hi) + 1] = True
    assert heat[inside].sum() > 0 and heat[~inside].abs().sum() == 0
    assert 0 < result.side <= max(result.rf)


@pytest.mark.slow
def test_cli_erf_random_weights(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "erf.png"
    result = runner.invoke(app, ["erf", str(SPEC), "-o", str(out), "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert "theoretical RF  31x31" in result.stdout and "effective RF" in result.stdout
    assert "random weights" in result.stdout
    width, height = png_size(out)
    assert width >= 800 and height >= 400


@pytest.mark.parametrize("wrapped", [True, False], ids=["trainer checkpoint", "bare state_dict"])
@pytest.mark.slow
def test_cli_erf_with_a_checkpoint(runner, tmp_path: Path, wrapped: bool) -> None:  # type: ignore[no-untyped-def]
    model = rfcalc.build_model(SPEC)
    state = model.state_dict()
    ckpt = tmp_path / "best.pt"
    torch.save({"model": state, "epoch": 3, "accuracy": 0.9} if wrapped else state, ckpt)
    out = tmp_path / "erf.png"
    result = runner.invoke(app, ["erf", str(SPEC), "--weights", str(ckpt), "-o", str(out), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "weights from best.pt" in result.stdout
    assert out.read_bytes()[:8] == PNG


def test_cli_erf_bad_checkpoint_is_one_line(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ckpt = tmp_path / "other.pt"
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, ckpt)
    result = runner.invoke(app, ["erf", str(SPEC), "--weights", str(ckpt), "-o", str(tmp_path / "e.png")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "does not fit spec" in result.stderr
    missing = runner.invoke(app, ["erf", str(SPEC), "--weights", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and missing.stderr.endswith("none.pt: no such checkpoint\n")


def test_rf_plot(tmp_path: Path) -> None:
    report = rfcalc.analyze(SPEC)
    assert all(row.attached_to is None for row in plotted_rows(report))
    path = write_rf_plot(report, tmp_path / "rf.png", rf_line=44)
    width, height = png_size(path)
    assert width >= 800 and height >= 700


@pytest.mark.slow
def test_rf_plot_rectangular_and_large(tmp_path: Path) -> None:
    spec = {"version": 1, "name": "wide", "input": {"channels": 1, "size": [16, 64]},
            "layers": [{"op": "conv", "k": [3, 5], "padding": [1, 2], "repeat": 70}]}
    path = write_rf_plot(rfcalc.analyze(spec), tmp_path / "wide.png", None)
    assert png_size(path)[0] > 2000


@pytest.mark.slow
def test_cli_table_plot(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "rf.png"
    result = runner.invoke(app, ["table", str(SPEC), "--format", "csv", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG


def test_cli_erf_without_torch_is_one_line(runner, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result = runner.invoke(app, ["erf", str(SPEC)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pip install \"torch==2.13.0\" -e '" in result.stderr


def test_an_rf_larger_than_the_image_is_compared_inside_the_image() -> None:
    """Issue 25: 'effective RF 43x43 … (54% of the theoretical RF side)' on a 32x32 image whose theoretical RF is
    79: only the part of either square inside the image can be compared, and the lines say so."""
    from rfcalc.model.erf import summary

    spec = rfcalc.load_spec(ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml")
    result = effective_rf(spec, batch=2)
    assert max(result.rf) > 32
    half = (result.side - 1) / 2
    effective = max(sum(1 for i in range(32) if abs(i - c) <= half) for c in result.centre)
    window = max(sum(1 for i in range(32) if lo <= i <= hi) for lo, hi in (result.window(0), result.window(1)))
    lines = [" ".join(line.split()) for line in summary(result, (32, 32))]
    assert lines[3] == (f"ratio {effective / window:.0%} of the side of the theoretical RF's part inside the input "
                        f"({effective} of {window} pixels; the rest of the theoretical RF lies outside the image, "
                        f"where no gradient can be)")
    assert f"of the gradient mass; {effective}x{effective} of it inside the input" in lines[2]
    assert all(len(line) <= 80 for text in summary(result, (32, 32), 80) for line in text.splitlines())
