"""The optimizer and schedule paths two bundled specs train with (AdamW; cosine), exactly as configured, and a
short real run with them; the one checkpoint reader on every form a checkpoint comes in."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from train_helpers import run, spec_text, write_pickle_folder

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.model.weights import load_weights, read_checkpoint
from rfcalc.trainer.config import TrainConfig
from rfcalc.trainer.engine import Engine, make_optimizer, make_schedule

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_adamw_uses_the_configured_betas_and_decays_weights_only() -> None:
    cfg = TrainConfig(optimizer="adamw", lr=0.002, momentum=0.85, weight_decay=0.05)
    optimizer = make_optimizer(_model(), cfg)
    assert isinstance(optimizer, torch.optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert (decay["lr"], decay["betas"], decay["weight_decay"]) == (0.002, (0.85, 0.999), 0.05)
    assert [tuple(p.shape) for p in decay["params"]] == [(4, 3, 3, 3), (2, 144)]
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])


def test_cosine_schedule_warms_up_linearly_then_follows_the_cosine_to_its_floor() -> None:
    cfg = TrainConfig(schedule="cosine", lr=0.4, warmup=0.25, div_factor=10, final_div_factor=100)
    optimizer = make_optimizer(_model(), cfg)
    schedule = make_schedule(optimizer, cfg, total_steps=20)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    low, end, warm = 0.4 / 10, 0.4 / 10 / 100, 5   # lr / div_factor, that / final_div_factor, 25% of 20 steps
    floor = end / 0.4                               # the cosine's end as a factor of the peak: 0.001
    expected = [0.4 * (0.1 + 0.9 * s / warm) if s < warm
                else 0.4 * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (s - warm) / (20 - warm))))
                for s in range(20)]
    assert lrs[0] == pytest.approx(low)
    assert lrs == pytest.approx(expected)
    assert max(lrs) == pytest.approx(0.4)
    assert lrs[-1] > end and lrs[-1] < 0.41 * low


def test_engine_steps_an_adamw_cosine_run_and_reports_each_steps_lr() -> None:
    cfg = TrainConfig(optimizer="adamw", schedule="cosine", lr=0.01, warmup=0.5, label_smoothing=0.0)
    torch.manual_seed(0)
    engine = Engine(_model(), cfg, torch.device("cpu"), total_steps=4)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))
    seen = []
    for _ in range(4):
        loss, _ = engine.step(x, y)
        seen.append(engine.lr)
        assert math.isfinite(float(loss))
    assert seen == pytest.approx([0.001, 0.0055, 0.01, 0.01 * (1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi / 2)))])


def test_a_short_real_run_with_adamw_and_cosine(tmp_path: Path) -> None:
    data = write_pickle_folder(tmp_path / "data")
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(train="batch_size: 16\naug: fast\noptimizer: adamw\nlr: 0.01\nschedule: cosine"),
                    encoding="utf-8")
    result = run(["train", spec, "--data", data, "--epochs", "2", "--out", tmp_path / "run", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    options = ckpt["resume"]["options"]["config"]
    assert (options["optimizer"], options["schedule"]) == ("adamw", "cosine")
    assert type(ckpt["resume"]["engine"]["optimizer"]["param_groups"][0]["betas"]) in (tuple, list)


@pytest.fixture
def model() -> nn.Module:
    return rfcalc.build_model(spec_text())


def test_read_checkpoint_takes_every_form(model: nn.Module, tmp_path: Path) -> None:
    state = model.state_dict()
    forms = {"bare.pt": state, "wrapped.pt": {"model": state, "epoch": 3},
             "rfcalc.pt": {"format": "rfcalc-checkpoint", "version": 1, "model": state}}
    for name, payload in forms.items():
        torch.save(payload, tmp_path / name)
        ckpt = read_checkpoint(tmp_path / name)
        assert list(ckpt["model"]) == list(state)
        target = rfcalc.build_model(spec_text())
        load_weights(target, ckpt, source=name)
        assert all(torch.equal(target.state_dict()[k], v) for k, v in state.items())


def test_read_checkpoint_says_what_is_wrong(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({}, tmp_path / "empty.pt")
    torch.save({"epoch": 3, "weights": [1]}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    (tmp_path / "folder.pt").mkdir()
    cases = {
        "list.pt": "not an rfcalc checkpoint nor a state_dict (a list)",
        "empty.pt": "not an rfcalc checkpoint nor a state_dict (an empty dict)",
        "other.pt": "not an rfcalc checkpoint nor a state_dict (a dict with keys 'epoch', 'weights' and no "
                    "state_dict under 'model')",
        "junk.pt": "not a readable PyTorch checkpoint (",
        "folder.pt": "not a file, expected a checkpoint (.pt)",
        "missing.pt": "no such checkpoint",
    }
    for name, message in cases.items():
        with pytest.raises(RfcalcError) as exc:
            read_checkpoint(tmp_path / name)
        assert str(exc.value).startswith(f"{tmp_path / name}: {message}"), str(exc.value)
