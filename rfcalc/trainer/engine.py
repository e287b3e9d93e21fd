"""The model side of a run: device, the spec's module, optimizer, schedule, EMA, one step, evaluation.

On CUDA: bf16 autocast, channels-last memory, cudnn benchmark, optional ``torch.compile``. On CPU:
channels-last too (faster convolutions with oneDNN), fp32; seeded runs are bit-for-bit repeatable.

Under DistributedDataParallel (a :class:`~rfcalc.trainer.distributed.Comm` of more than one rank) BatchNorm
becomes synchronised BatchNorm unless ``sync_bn`` is off, the training forward goes through
``DistributedDataParallel`` (compiled around it with ``--compile``), and ``model`` stays the plain module: EMA,
evaluation and checkpoints use it, so checkpoints are the same as a single process's.
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rfcalc.errors import RfcalcError, message_line
from rfcalc.spec.train import TrainConfig
from rfcalc.trainer.distributed import Comm, World, shard, sync_norms, wrap

AUTOTUNE_ENV = "RFCALC_CUDNN_BENCHMARK"


def cudnn_autotune() -> bool:
    """Whether cudnn autotunes its convolution kernels (``RFCALC_CUDNN_BENCHMARK=1``) or takes its heuristics'
    choice (the default). Measured on an H200 (bench/RESULTS.md): autotuning made the warm-up 19.2 s instead of
    6.7 s for 1.8% more images/s in the steady state (153.6k vs 150.9k) — it pays only after hundreds of epochs,
    and it took the time to 85% from 11.8 s to 18.9 s."""
    return os.environ.get(AUTOTUNE_ENV, "0").strip() not in ("", "0")


def setup_backend(device: torch.device, seed: int) -> None:
    """Seed torch (CPU runs are then deterministic); on CUDA pick fast kernels (not bit-exact): cudnn's
    heuristics, or its autotuning with ``RFCALC_CUDNN_BENCHMARK=1`` (:func:`cudnn_autotune`)."""
    torch.manual_seed(seed)
    if device.type == "cuda":  # pragma: no cover - no GPU in CI
        torch.backends.cudnn.benchmark = cudnn_autotune()
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device, cache: bool = True) -> Any:
    """bf16 autocast on a CUDA device that has it (``cache`` off inside a CUDA graph capture), else nothing."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():  # pragma: no cover - no GPU in CI
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return nullcontext()


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
    return model


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def zero_init_residual(model: nn.Module) -> int:
    """Set the scale of the last norm layer (in module order) of every residual body to zero, so that each
    block starts as its shortcut (Goyal et al. 2017; torchvision's ``zero_init_residual``); the number of bodies
    changed. A body without an affine norm is left as it is."""
    from rfcalc.model.modules import Residual

    changed = 0
    for block in model.modules():
        if isinstance(block, Residual):
            norms = [m for m in block.body.modules() if isinstance(m, NORMS) and getattr(m, "weight", None) is not None]
            if norms:
                with torch.no_grad():
                    norms[-1].weight.zero_()
                changed += 1
    return changed


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights of convs and linears only, not on norms' affine parameters nor biases."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> Any:
    """Stepped once per batch; ``total_steps`` = epochs x batches per epoch."""
    if cfg.schedule == "onecycle" and total_steps >= 3:
        # OneCycleLR divides by (pct_start * total - 1): keep at least two rising steps on very short runs.
        pct_start = min(max(cfg.warmup, 2.0 / total_steps), 1.0 - 1.0 / total_steps)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=pct_start, div_factor=cfg.div_factor,
            final_div_factor=cfg.final_div_factor, anneal_strategy="cos",
            cycle_momentum=cfg.momentum > 0, base_momentum=max(0.0, cfg.momentum - 0.05), max_momentum=cfg.momentum)
    if cfg.schedule == "cosine":
        warm = max(1, int(cfg.warmup * total_steps))
        low = 1.0 / cfg.div_factor
        end = low / cfg.final_div_factor

        def factor(step: int) -> float:
            if step < warm:
                return low + (1 - low) * step / warm
            t = min(1.0, (step - warm) / max(1, total_steps - warm))
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class EMA:
    """An exponential moving average of the weights (buffers copied), with a warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def next_weight(self) -> float:
        """Count one update and return its weight, 1 - decay (the decay warms up: (1 + n) / (10 + n) at first)."""
        self.updates += 1
        return 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def apply(self, model: nn.Module, weight: float | torch.Tensor) -> None:
        """ema += weight x (weights - ema); buffers copied. ``weight`` may be a device tensor (CUDA graphs)."""
        ema_params: list[torch.Tensor] = list(self.model.parameters())
        step = torch._foreach_sub([p.detach() for p in model.parameters()], ema_params)
        torch._foreach_mul_(step, weight)
        torch._foreach_add_(ema_params, step)
        buffers = list(self.model.buffers())
        if buffers:  # a model without BatchNorm (GroupNorm, LayerNorm) has none
            torch._foreach_copy_(buffers, list(model.buffers()))

    def update(self, model: nn.Module) -> None:
        self.apply(model, self.next_weight())


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    predictions: torch.Tensor  # int64 [N] on the CPU
    per_class: list[float]


class Engine:
    """Owns the module, optimizer, schedule and EMA of a run; ``step`` trains on one normalised batch."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, device: torch.device, total_steps: int,
                 compile: bool = False, comm: Comm | None = None, sync_bn: bool = True) -> None:
        self.device, self.cfg, self.total_steps = device, cfg, total_steps
        self.comm = comm if comm is not None else Comm(World(), device)
        self.synced_norms = 0
        self.zeroed_bodies = zero_init_residual(model) if cfg.zero_init_residual else 0
        if self.comm.world.distributed and sync_bn:
            model, self.synced_norms = sync_norms(model, device)
        self.model = prepare_model(model, device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.schedule = make_schedule(self.optimizer, cfg, total_steps)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.steps = 0
        self.last_lr: float | None = None
        wide = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = torch.zeros(2, dtype=wide, device=device)  # the epoch's loss x images and correct, on device
        self.captured: Any = None  # a rfcalc.trainer.graphs.CapturedStep once the step is captured
        trained = wrap(self.model, self.comm)
        self.compiled = compile
        self.forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(trained) if compile else trained

    @property
    def lr(self) -> float:
        """The learning rate of the last step taken (before any step: the first one's)."""
        return self.last_lr if self.last_lr is not None else float(self.optimizer.param_groups[0]["lr"])

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model

    def autocast(self, cache: bool = True) -> Any:
        return autocast(self.device, cache)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns the summed loss and the number correct (tensors, not synced)."""
        self.model.train()
        with autocast(self.device):
            if self.steps == 0 and self.compiled:
                logits = self._first_compiled_forward(x)
            else:
                logits = self.forward(x)
            loss = self.criterion(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.last_lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.schedule.step()
        self.steps += 1
        if self.ema is not None:
            self.ema.update(self.model)
        with torch.no_grad():
            return loss.detach().float() * len(y), (logits.argmax(1) == y).sum()

    def begin_epoch(self, loss: float = 0.0, correct: float = 0.0) -> None:
        """Start the epoch's sums (a resumed epoch carries those of the batches it already took)."""
        self.sums[0].fill_(loss)
        self.sums[1].fill_(correct)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, normalize: Any) -> None:
        """One step on a uint8 batch, added to :attr:`sums`: a replay of the captured step when there is one for
        this batch size, else :meth:`step`. Nothing is read back to the host."""
        captured = self.captured
        if captured is None or len(y) != captured.batch:
            loss, correct = self.step(normalize(x), y)
            self.sums += torch.stack([loss.to(self.sums.dtype), correct.to(self.sums.dtype)])
            return
        self.last_lr = float(self.optimizer.param_groups[0]["lr"])
        captured.step(x, y, self.ema.next_weight() if self.ema is not None else None)
        self.schedule.step()
        self.steps += 1

    def _first_compiled_forward(self, x: torch.Tensor) -> torch.Tensor:
        """torch.compile compiles on the first call: its failures become one line."""
        try:
            return self.forward(x)
        except Exception as exc:  # any compiler failure
            first = message_line(exc)[:200]
            raise RfcalcError(f"torch.compile failed ({type(exc).__name__}: {first}); train without --compile") \
                from None

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, tta: bool, model: nn.Module | None = None) -> torch.Tensor:
        """Logits of a normalised batch; with ``tta`` the average of the image and its mirror image."""
        model = model or self.eval_model
        model.eval()
        with autocast(self.device):
            logits: torch.Tensor = model(x).float()
            if tta:
                logits = (logits + model(x.flip(3)).float()) / 2
        return logits

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(), "steps": self.steps,
                "last_lr": self.last_lr,
                "ema": None if self.ema is None else {"model": self.ema.model.state_dict(),
                                                      "updates": self.ema.updates}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.steps = int(state["steps"])
        self.last_lr = state.get("last_lr")
        if self.ema is not None and state.get("ema"):
            self.ema.model.load_state_dict(state["ema"]["model"])
            self.ema.updates = int(state["ema"]["updates"])


EVAL_BATCH = 1000  # images per evaluation batch
CPU_EVAL_BATCH = 64  # on the CPU: 5x faster than 1000 for resnet_sep_cifar10 (bench/eval_batch.py, cache-sized)


def evaluate_split(engine: Engine, x: torch.Tensor, y: torch.Tensor, normalize: Any, classes: int, tta: bool,
                   batch_size: int | None = None, model: nn.Module | None = None) -> EvalResult:
    """Loss (plain cross-entropy), accuracy and per-class accuracy on uint8 images ``x`` [N, H, W, C].

    Under DistributedDataParallel each rank predicts its :func:`~rfcalc.trainer.distributed.shard` of the split,
    and the loss sums and the predictions are gathered: every rank gets the result for all N images, each
    counted once.
    """
    comm = engine.comm
    if batch_size is None:
        batch_size = CPU_EVAL_BATCH if engine.device.type == "cpu" else EVAL_BATCH
    mine = shard(len(y), comm.world)
    wide = torch.float32 if engine.device.type == "mps" else torch.float64  # MPS has no float64
    total_loss = torch.zeros((), dtype=wide, device=engine.device)
    predictions = []
    for start in range(mine.start, mine.stop, batch_size):
        stop = min(start + batch_size, mine.stop)
        xb = x[start:stop].to(engine.device, non_blocking=True)
        yb = y[start:stop].to(engine.device, non_blocking=True)
        logits = engine.predict(normalize(xb), tta, model)
        total_loss += nn.functional.cross_entropy(logits, yb, reduction="sum").to(wide)
        predictions.append(logits.argmax(1).cpu())
    part = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)
    pred = comm.gather_shards(part, len(y))
    loss_sum, = comm.sum([float(total_loss)])
    correct = pred == y.cpu()
    counts = torch.bincount(y.cpu(), minlength=classes).clamp(min=1)
    per_class = (torch.bincount(y.cpu()[correct], minlength=classes) / counts).tolist()
    n = max(1, len(y))
    return EvalResult(loss_sum / n, float(correct.sum()) / n, pred, per_class)
