"""The captured training step computes what the eager step computes.

CI has no GPU, so the capture itself is not run here; what is captured is: the graph-safe optimizer updates
(device-tensor lr / momentum / betas) against torch's own ``optimizer.step()`` under the real schedule, step by
step, and the whole static step (:class:`StaticStep.run`, the function the graph records) against
:meth:`Engine.step` with the real model, schedule, label smoothing and EMA. Also: when a run captures, and why not.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import rfcalc
from rfcalc.trainer import graphs
from rfcalc.trainer.batches import Normalizer
from rfcalc.trainer.config import TrainConfig
from rfcalc.trainer.engine import Engine, make_optimizer, make_schedule

SPEC = """
version: 1
name: tiny
input: {channels: 3, size: 8}
classes: 4
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
layers:
  - {op: conv, out: 8}
  - {op: conv, out: 8, stride: 2, separable: true}
  - {op: conv, out: 8, dilation: 2, padding: 2, dropout: 0.0}
  - {op: gap}
  - {op: linear, out: 4}
"""


def _model() -> nn.Module:
    torch.manual_seed(0)
    return rfcalc.build_model(rfcalc.load_spec(SPEC))


def _close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-5) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.allclose(x, y, rtol=tol, atol=tol), (x - y).abs().max()


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,momentum,nesterov,schedule", [
    ("sgd", 0.9, True, "onecycle"), ("sgd", 0.9, False, "cosine"), ("sgd", 0.0, False, "onecycle"),
    ("adamw", 0.9, False, "onecycle"), ("adamw", 0.9, False, "cosine"),
])
def test_graph_safe_update_equals_torch_step(optimizer: str, momentum: float, nesterov: bool, schedule: str) -> None:
    cfg = TrainConfig(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.003, momentum=momentum,
                      nesterov=nesterov, schedule=schedule, weight_decay=5e-3)
    ours_model, theirs_model = _model(), _model()
    ours, theirs = make_optimizer(ours_model, cfg), make_optimizer(theirs_model, cfg)
    ours_schedule, theirs_schedule = make_schedule(ours, cfg, 12), make_schedule(theirs, cfg, 12)
    hyper = graphs.DeviceHyper(ours, torch.device("cpu"))
    graphs.prepare_state(ours, torch.device("cpu"))
    update = graphs.update_rule(ours)
    ours._opt_called = True  # the update replaces ours.step() (as in StaticStep)
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        x, y = torch.randn(6, 3, 8, 8, generator=gen), torch.randint(0, 4, (6,), generator=gen)
        for model, opt in ((ours_model, ours), (theirs_model, theirs)):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
        hyper.fill()
        update(ours, hyper)
        theirs.step()
        ours_schedule.step()
        theirs_schedule.step()
        _close(list(ours_model.parameters()), list(theirs_model.parameters()))
    # the state torch keeps (checkpoints) is the state the update wrote
    for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
        for key, value in theirs.state[q].items():
            _close([ours.state[p][key].float().reshape(-1)], [value.float().reshape(-1)])


@pytest.mark.slow
@pytest.mark.parametrize("ema", [None, 0.9])
def test_static_step_equals_engine_step(ema: float | None) -> None:
    cfg = TrainConfig(lr=0.1, ema=ema, label_smoothing=0.1)
    normalize = Normalizer((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), torch.device("cpu"))
    eager = Engine(_model(), cfg, torch.device("cpu"), total_steps=8)
    static_engine = Engine(_model(), cfg, torch.device("cpu"), total_steps=8)
    static = graphs.StaticStep(static_engine, normalize, 5, (8, 8, 3))
    gen = torch.Generator().manual_seed(2)
    total = torch.zeros(2, dtype=torch.float64)
    for _ in range(6):
        x = torch.randint(0, 256, (5, 8, 8, 3), generator=gen, dtype=torch.uint8)
        y = torch.randint(0, 4, (5,), generator=gen)
        loss, correct = eager.step(normalize(x), y)
        total += torch.stack([loss.double(), correct.double()])
        # what CapturedStep.step does around a replay, eagerly
        static_engine.optimizer.zero_grad(set_to_none=True)
        weight = static_engine.ema.next_weight() if static_engine.ema is not None else None
        static.hyper.fill(weight)
        static.x.copy_(x)
        static.y.copy_(y)
        static.run()
        static_engine.schedule.step()
        _close(list(eager.model.parameters()), list(static_engine.model.parameters()))
        _close(list(eager.model.buffers()), list(static_engine.model.buffers()))
        _close(list(eager.eval_model.parameters()), list(static_engine.eval_model.parameters()))
    _close([total], [static_engine.sums], tol=1e-4)


def test_kept_puts_every_changed_tensor_back() -> None:
    cfg = TrainConfig(lr=0.1, ema=0.9)
    engine = Engine(_model(), cfg, torch.device("cpu"), total_steps=8)
    normalize = Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    static = graphs.StaticStep(engine, normalize, 4, (8, 8, 3))
    before = copy.deepcopy([engine.model.state_dict(), engine.ema.model.state_dict() if engine.ema else None,
                            engine.optimizer.state_dict()])
    with graphs.kept(engine):
        static.x.random_(0, 255)
        for _ in range(3):
            engine.optimizer.zero_grad(set_to_none=True)
            static.hyper.fill(0.5)
            static.run()
        assert not torch.equal(next(engine.model.parameters()), next(iter(before[0].values())))
    after = [engine.model.state_dict(), engine.ema.model.state_dict() if engine.ema else None,
             engine.optimizer.state_dict()]
    for key, value in before[0].items():
        assert torch.equal(value, after[0][key]), key
    assert before[1] is not None and after[1] is not None
    for key, value in before[1].items():
        assert torch.equal(value, after[1][key]), key
    for index, state in before[2]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, after[2]["state"][index][key])


@pytest.mark.parametrize("device,distributed,compiled,wanted,capture,reason", [
    ("cuda", False, False, True, True, ""),
    ("cpu", False, False, True, False, "no CUDA graphs on cpu"),
    ("cuda", True, False, True, False, "CUDA graphs are not used under DistributedDataParallel"),
    ("cuda", False, True, True, False, "--compile"),
    ("cuda", False, False, False, False, "--no-cuda-graph"),
])
def test_choice(device: str, distributed: bool, compiled: bool, wanted: bool, capture: bool, reason: str) -> None:
    choice = graphs.choose(torch.device(device), distributed=distributed, compiled=compiled, wanted=wanted)
    assert (choice.capture, choice.reason) == (capture, reason)
    assert choice.describe() == ("CUDA graph" if capture else f"eager steps ({reason})")


def test_eval_batches() -> None:
    assert graphs.eval_batches(10_000, 1000) == [1000]
    assert graphs.eval_batches(2500, 1000) == [1000, 500]
    assert graphs.eval_batches(300, 1000) == [300]


def test_warm_up_is_a_no_op_off_cuda() -> None:
    engine = Engine(_model(), TrainConfig(), torch.device("cpu"), total_steps=2)
    choice = graphs.GraphChoice(False, "no CUDA graphs on cpu")
    x = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    assert graphs.warm_up(engine, lambda t: t, choice, x, torch.zeros(2, dtype=torch.long), [2], True) is choice
    assert engine.captured is None


def test_a_failed_capture_falls_back_to_eager_steps_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a GPU run does when its model cannot be captured (e.g. a forward that reads a value back): one line
    with the reason, eager steps, and the weights, statistics and optimizer state exactly as before the warm-up."""
    from contextlib import nullcontext

    from rfcalc.trainer import engine as engine_module

    engine = Engine(_model(), TrainConfig(lr=0.1, ema=0.9), torch.device("cpu"), total_steps=4)
    engine.device = torch.device("cuda")  # what warm_up reads: it takes the CUDA path; the tensors stay here
    monkeypatch.setattr(engine, "autocast", lambda cache=True: nullcontext())
    monkeypatch.setattr(engine_module, "autocast", lambda device, cache=True: nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: None)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("operation not permitted when stream is capturing\nCUDA kernel errors might be ...")

    monkeypatch.setattr(graphs, "StaticStep", refuse)
    normalize = Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    before = copy.deepcopy(engine.model.state_dict())
    x = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    choice = graphs.warm_up(engine, normalize, graphs.GraphChoice(True), x, torch.tensor([0, 1, 2, 3]), [4, 2], True)
    assert not choice.capture
    assert choice.reason == "capture failed: RuntimeError: operation not permitted when stream is capturing"
    assert choice.describe().startswith("eager steps (capture failed")
    assert engine.captured is None
    for key, value in before.items():  # the eager warm-up (forward, backward, evaluation shapes) changed nothing
        assert torch.equal(value, engine.model.state_dict()[key]), key
    assert all(p.grad is None for p in engine.model.parameters())


@pytest.mark.parametrize(("value", "autotune"), [(None, False), ("0", False), ("", False), ("1", True),
                                                 ("yes", True)])
def test_cudnn_autotuning_is_asked_for_not_the_default(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                        autotune: bool) -> None:
    """Heuristics by default (autotuning cost 12 s of warm-up on an H200 for 1.8% of steady speed)."""
    from rfcalc.trainer.engine import AUTOTUNE_ENV, cudnn_autotune

    if value is None:
        monkeypatch.delenv(AUTOTUNE_ENV, raising=False)
    else:
        monkeypatch.setenv(AUTOTUNE_ENV, value)
    assert cudnn_autotune() is autotune
