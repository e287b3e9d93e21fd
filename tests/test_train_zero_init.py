"""`train: {zero_init_residual: true}`: every residual body's last norm starts at scale zero, so each block
starts as its shortcut — checked on the bundled ResNet-style spec by running the bodies, not by reading flags."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import run, spec_text, write_pickle_folder

import rfcalc
from rfcalc.model.modules import Residual
from rfcalc.trainer.config import TrainConfig
from rfcalc.trainer.engine import Engine

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
RESNET = ROOT / "arch_specs" / "resnet_sep_cifar10.yaml"


def _bodies(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """What every residual body outputs on ``x`` (eval mode)."""
    outs: list[torch.Tensor] = []
    hooks = [m.body.register_forward_hook(lambda _m, _i, out: outs.append(out.detach()))
             for m in model.modules() if isinstance(m, Residual)]
    model.eval()
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return outs


def test_each_residual_block_starts_as_its_shortcut() -> None:
    torch.manual_seed(0)
    engine = Engine(rfcalc.build_model(RESNET), TrainConfig(zero_init_residual=True), torch.device("cpu"),
                    total_steps=2)
    assert engine.zeroed_bodies == 8
    outs = _bodies(engine.model, torch.randn(2, 3, 32, 32))
    assert len(outs) == 8 and all(torch.count_nonzero(out) == 0 for out in outs)


def test_off_by_default_and_the_first_step_moves_the_zeroed_scales() -> None:
    torch.manual_seed(0)
    plain = Engine(rfcalc.build_model(RESNET), TrainConfig(), torch.device("cpu"), total_steps=2)
    assert plain.zeroed_bodies == 0
    assert all(torch.count_nonzero(out) > 0 for out in _bodies(plain.model, torch.randn(2, 3, 32, 32)))
    engine = Engine(rfcalc.build_model(RESNET), TrainConfig(zero_init_residual=True), torch.device("cpu"),
                    total_steps=2)
    engine.model.train()
    engine.step(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    assert all(torch.count_nonzero(out) > 0 for out in _bodies(engine.model, torch.randn(2, 3, 32, 32)))


RESIDUAL = "- {op: residual, body: [{op: conv, out: 16}, {op: conv, out: 16, act: null}]}"


def test_a_spec_says_it_and_the_run_says_what_it_did(tmp_path: Path) -> None:
    data = write_pickle_folder(tmp_path / "data", per_class=2, test_per_class=1)
    for name, layers, expected in (("res", RESIDUAL, "1 residual block starting as the shortcut"),
                                   ("plain", "", "zero_init_residual: no residual block has a norm layer")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(spec_text(extra_layers=layers, train="batch_size: 8\naug: fast\nzero_init_residual: true"),
                        encoding="utf-8")
        assert rfcalc.load_spec(path).train.zero_init_residual  # type: ignore[union-attr]
        result = run(["train", path, "--data", data, "--epochs", "1", "--out", tmp_path / name, "--device", "cpu"])
        assert result.exit_code == 0, result.output
        assert expected in " ".join(result.output.split()), result.output
