"""The whole training step as one CUDA graph: a small CNN on a big GPU is bound by kernel launches, not arithmetic.

An eager step of a ~30M-MAC model launches a few hundred tiny kernels from Python, and the GPU idles between
them (measured on an H200: 6.4 ms a step of batch 256, the GPU busy a few percent of it). Here the step —
normalisation, forward (bf16 autocast), label-smoothed loss, backward, the optimizer update, the EMA of the
weights and the running loss / accuracy sums — is captured once and replayed with one launch per batch.

What is computed stays the same:

- the optimizer update is torch's SGD (momentum, Nesterov, weight decay) or AdamW written with ``torch._foreach``
  ops whose learning rate, momentum and betas are device tensors, filled from the optimizer's param groups before
  every replay: the schedule (OneCycle cycles the momentum too) still runs on the host, on the real optimizer, and
  checkpoints keep torch's optimizer state (``tests/test_train_graphs.py`` checks the update against
  ``optimizer.step()``, step by step);
- the EMA uses the decay the eager step would use, filled the same way;
- the loss and accuracy sums stay on the device and are read only at progress ticks and at the end of the epoch.

Capturing needs a few eager steps first (cudnn picks its kernels, the optimizer state exists); they run on the
real weights, so the weights, buffers, optimizer state and EMA are saved before and put back after: the run then
starts from exactly the state it would have had. The same warm-up runs evaluation once on each evaluation shape,
so the first epoch pays for nothing the others do not. Where capture is impossible (no CUDA, DistributedDataParallel,
``--compile``, ``--no-cuda-graph``, or the capture itself fails), the run takes eager steps and says why in one line.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from rfcalc.errors import message_line

# Eager steps before the capture (PyTorch's recipe runs a few on a side stream: cudnn autotuning, lazy state).
WARMUP_STEPS = 3


@dataclass(frozen=True)
class GraphChoice:
    """Whether a run captures its step, and the reason in words when it does not."""

    capture: bool
    reason: str = ""

    def describe(self) -> str:
        return "CUDA graph" if self.capture else f"eager steps ({self.reason})"


def choose(device: torch.device, *, distributed: bool, compiled: bool, wanted: bool) -> GraphChoice:
    """The step mode of a run, decided before any work from what the run is (the capture may still fail later)."""
    if not wanted:
        return GraphChoice(False, "--no-cuda-graph")
    if device.type != "cuda":
        return GraphChoice(False, f"no CUDA graphs on {device.type}")
    if distributed:
        return GraphChoice(False, "CUDA graphs are not used under DistributedDataParallel")
    if compiled:
        return GraphChoice(False, "--compile")
    return GraphChoice(True)


# ---------------------------------------------------------------------------------------------- the optimizer


class DeviceHyper:
    """The per-step hyper-parameters of every param group as device tensors: ``[lr, momentum or beta1]``, and the
    EMA's weight. ``fill`` writes the current values with ``fill_`` (a kernel argument, no host-to-device copy,
    so it never waits for the GPU)."""

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        self.optimizer = optimizer
        self.groups = [torch.zeros(2, dtype=torch.float32, device=device) for _ in optimizer.param_groups]
        self.ema_weight = torch.zeros((), dtype=torch.float32, device=device)

    def fill(self, ema_weight: float | None = None) -> None:
        for values, group in zip(self.groups, self.optimizer.param_groups):
            values[0].fill_(float(group["lr"]))
            values[1].fill_(float(group["betas"][0] if "betas" in group else group.get("momentum", 0.0)))
        if ema_weight is not None:
            self.ema_weight.fill_(ema_weight)


def _groups(optimizer: torch.optim.Optimizer, hyper: DeviceHyper) -> Iterator[
        tuple[dict[str, Any], torch.Tensor, list[torch.Tensor], list[torch.Tensor]]]:
    """(param group, its device hyper-parameters, its parameters that have gradients, their gradients)."""
    for group, values in zip(optimizer.param_groups, hyper.groups):
        params = [p for p in group["params"] if p.grad is not None]
        if params:
            yield group, values, params, [p.grad for p in params if p.grad is not None]


def prepare_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Create the optimizer state the update reads, as torch's first step would (zeros give that step's result:
    SGD's first momentum buffer is the gradient, 0 x momentum + gradient; Adam's moments start at zero)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if isinstance(optimizer, torch.optim.AdamW):
                if "step" not in state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                else:  # loaded from a checkpoint of an eager run: the step count lives on the CPU there
                    state["step"] = state["step"].to(device=device, dtype=torch.float32)
            elif group.get("momentum", 0.0) > 0 and state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


@torch.no_grad()
def sgd_update(optimizer: torch.optim.Optimizer, hyper: DeviceHyper) -> None:
    """torch.optim.SGD's step (dampening 0) with lr and momentum read from device tensors."""
    for group, values, params, grads in _groups(optimizer, hyper):
        lr, momentum = values[0], values[1]
        if group["weight_decay"]:
            grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
        if group["momentum"] > 0:
            bufs = [optimizer.state[p]["momentum_buffer"] for p in params]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, grads)
            if group["nesterov"]:
                grads = list(torch._foreach_add(grads, torch._foreach_mul(bufs, momentum)))
            else:
                grads = bufs
        torch._foreach_sub_(params, torch._foreach_mul(grads, lr))


@torch.no_grad()
def adamw_update(optimizer: torch.optim.Optimizer, hyper: DeviceHyper) -> None:
    """torch.optim.AdamW's step (no amsgrad) with lr and beta1 read from device tensors."""
    for group, values, params, grads in _groups(optimizer, hyper):
        lr, beta1 = values[0], values[1]
        beta2, eps = float(group["betas"][1]), float(group["eps"])
        states = [optimizer.state[p] for p in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        torch._foreach_add_([s["step"] for s in states], 1.0)
        if group["weight_decay"]:
            torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, torch._foreach_mul(grads, 1 - beta1))
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        for param, state, exp_avg, exp_avg_sq in zip(params, states, exp_avgs, exp_avg_sqs):
            step = state["step"]
            step_size = lr / (1 - torch.pow(beta1, step))
            denom = (exp_avg_sq.sqrt() / torch.sqrt(1 - torch.pow(beta2, step))).add_(eps)
            param.sub_(exp_avg / denom * step_size)


def update_rule(optimizer: torch.optim.Optimizer) -> Callable[[torch.optim.Optimizer, DeviceHyper], None]:
    if isinstance(optimizer, torch.optim.AdamW):
        return adamw_update
    if isinstance(optimizer, torch.optim.SGD):
        return sgd_update
    raise TypeError(f"no graph-safe update for {type(optimizer).__name__}")


# ---------------------------------------------------------------------------------------------- the step


class StaticStep:
    """The training step on static buffers: ``x`` (uint8 [B, H, W, C]) and ``y`` in, the optimizer, EMA and the
    ``sums`` (loss x images, correct) updated in place. ``run`` is what is captured; it also runs eagerly (the CPU
    tests compare it with :meth:`rfcalc.trainer.engine.Engine.step`)."""

    def __init__(self, engine: Any, normalize: Callable[[torch.Tensor], torch.Tensor], batch: int,
                 image_shape: tuple[int, ...]) -> None:
        device = engine.device
        self.engine, self.normalize = engine, normalize
        self.x = torch.zeros((batch, *image_shape), dtype=torch.uint8, device=device)
        self.y = torch.zeros(batch, dtype=torch.long, device=device)
        self.sums: torch.Tensor = engine.sums
        self.hyper = DeviceHyper(engine.optimizer, device)
        self.update = update_rule(engine.optimizer)
        prepare_state(engine.optimizer, device)
        # The schedule is stepped on the host while this update replaces optimizer.step(): tell torch's scheduler
        # that the optimizer steps (else it warns that the schedule runs ahead of the optimizer).
        engine.optimizer._opt_called = True

    def run(self) -> None:
        engine = self.engine
        engine.model.train()
        with engine.autocast(cache=False):
            logits = engine.model(self.normalize(self.x))
            loss = engine.criterion(logits, self.y)
        loss.backward()
        self.update(engine.optimizer, self.hyper)
        if engine.ema is not None:
            engine.ema.apply(engine.model, self.hyper.ema_weight)
        with torch.no_grad():
            correct = (logits.argmax(1) == self.y).sum()
            self.sums += torch.stack([loss.detach().to(self.sums.dtype) * len(self.y), correct.to(self.sums.dtype)])


@contextmanager
def kept(engine: Any) -> Iterator[None]:
    """Everything a step changes — weights, buffers (BatchNorm statistics), optimizer state, EMA — put back in
    place (``copy_``: the graph keeps pointing at the same memory) when the block ends."""
    tensors: list[torch.Tensor] = [*engine.model.parameters(), *engine.model.buffers()]
    for state in engine.optimizer.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    if engine.ema is not None:
        tensors += [*engine.ema.model.parameters(), *engine.ema.model.buffers()]
    saved = [t.detach().clone() for t in tensors]
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, value in zip(tensors, saved):
                tensor.copy_(value)


class CapturedStep:
    """A :class:`StaticStep` captured as a CUDA graph; ``step(x, y)`` copies the batch in and replays it."""

    def __init__(self, static: StaticStep) -> None:
        self.static = static
        self.graph: Any = None

    @property
    def batch(self) -> int:
        return len(self.static.y)

    def capture(self, first_x: torch.Tensor, first_y: torch.Tensor, also: Callable[[], None]) -> None:
        """Warm up (``WARMUP_STEPS`` eager steps on ``first_x``, then ``also()``: evaluation's shapes) and capture,
        leaving the run's state as it was. Raises whatever the capture raises (the caller falls back)."""
        engine, static = self.static.engine, self.static
        with kept(engine):
            static.x.copy_(first_x)
            static.y.copy_(first_y)
            static.hyper.fill(0.0 if engine.ema is not None else None)
            side = torch.cuda.Stream()  # type: ignore[no-untyped-call]  # torch declares Stream() without types
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    engine.optimizer.zero_grad(set_to_none=True)
                    static.run()
                also()
            torch.cuda.current_stream().wait_stream(side)
            engine.optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static.run()
            torch.cuda.synchronize()
        static.sums.zero_()
        self.graph = graph

    def step(self, x: torch.Tensor, y: torch.Tensor, ema_weight: float | None) -> None:
        self.static.hyper.fill(ema_weight)
        self.static.x.copy_(x, non_blocking=True)
        self.static.y.copy_(y, non_blocking=True)
        self.graph.replay()


def eval_batches(n: int, batch_size: int) -> list[int]:
    """The batch sizes evaluation of ``n`` images in batches of ``batch_size`` uses (the last one may be smaller)."""
    sizes = [batch_size] if n >= batch_size else []
    return sizes + ([n % batch_size] if n % batch_size else [])


def warm_up(engine: Any, normalize: Callable[[torch.Tensor], torch.Tensor], choice: GraphChoice,
            first_x: torch.Tensor, first_y: torch.Tensor, eval_sizes: list[int], tta: bool) -> GraphChoice:
    """Before the first epoch on CUDA: pay once, on the shapes the run uses, for what the first steps would pay
    (cudnn autotuning of training and evaluation shapes, lazy state), and capture the step when ``choice`` says
    so. The run's state is left as it was. Returns the mode the run takes (eager when the capture failed)."""
    if engine.device.type != "cuda":
        return choice

    def evaluation_shapes() -> None:
        for n in eval_sizes:
            engine.predict(normalize(torch.zeros((n, *first_x.shape[1:]), dtype=torch.uint8, device=first_x.device)),
                           tta)

    if choice.capture:
        try:
            captured = CapturedStep(StaticStep(engine, normalize, len(first_y), tuple(first_x.shape[1:])))
            captured.capture(first_x, first_y, evaluation_shapes)
        except Exception as exc:  # any failure to capture: the run goes on with eager steps
            engine.optimizer.zero_grad(set_to_none=True)
            choice = GraphChoice(False, f"capture failed: {type(exc).__name__}: {message_line(exc)[:120]}")
        else:
            engine.captured = captured
            return choice
    with kept(engine):
        engine.model.train()
        with engine.autocast():
            loss = engine.criterion(engine.model(normalize(first_x)), first_y)
        loss.backward()
        engine.optimizer.zero_grad(set_to_none=True)
        evaluation_shapes()
    torch.cuda.synchronize()
    return choice
