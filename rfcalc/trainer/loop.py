"""The training loop: epochs of steps, evaluation, checkpoints, metrics; NaN, out-of-memory and Ctrl-C.

Every source of randomness is a function of (seed, epoch, batch) or is saved in ``last.pt``, so a run
interrupted anywhere and resumed with ``--resume`` ends with the same weights as one that never stopped
(on the CPU, bit for bit).
"""
from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import rfcalc
from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.model.weights import load_weights
from rfcalc.trainer import artifacts, checkpoint
from rfcalc.trainer.batches import Normalizer, make_batches
from rfcalc.trainer.data import ImageSet
from rfcalc.trainer.engine import Engine, EvalResult, device_name, evaluate_split, resolve_device, setup_backend
from rfcalc.trainer.options import RunOptions
from rfcalc.trainer.progress import EpochBar, epoch_line



class Diverged(RfcalcError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.FAILED)


class Interrupted(RfcalcError):
    """Ctrl-C: ``last.pt`` holds the state at the last finished batch."""

    def __init__(self, message: str, checkpoint_path: Path) -> None:
        self.checkpoint_path = checkpoint_path
        super().__init__(message, ExitCode.INTERRUPTED)


def on_batch_hook(epoch: int, batch: int) -> None:
    """Called after every optimizer step (tests replace it to interrupt a run at a chosen batch)."""


@contextmanager
def stop_on_ctrl_c() -> Iterator[dict[str, bool]]:
    """The first Ctrl-C sets a flag (the loop stops cleanly after the batch); a second one stops at once."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class RunState:
    epoch: int = 0                    # epochs finished
    batch: int = 0                    # next batch of the epoch under way
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"test_acc": -1.0, "epoch": 0})
    lrs: list[float] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "seen": 0.0,
                                                               "seconds": 0.0})
    elapsed: float = 0.0
    train_elapsed: float = 0.0


class Trainer:
    """One run of ``rfcalc train``: build everything, then :meth:`fit`."""

    def __init__(self, spec: Any, options: RunOptions, images: ImageSet, console: Console,
                 say: Callable[[str], None], resume: dict[str, Any] | None = None,
                 resume_path: Path | str = "--resume") -> None:
        self.spec, self.options, self.images, self.console, self.say = spec, options, images, console, say
        self.cfg = options.config
        self.out = Path(options.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(options.device)
        setup_backend(self.device, self.cfg.seed)
        model = rfcalc.build_model(spec)
        self.normalize = Normalizer(images.mean, images.std, self.device)
        self.batches = make_batches(images, options, self.device, say)
        self.total_steps = self.cfg.epochs * len(self.batches)
        self.engine = Engine(model, self.cfg, self.device, self.total_steps, compile=options.compile)
        on_device = self.device.type != "cpu"
        self.test_x = torch.from_numpy(images.test_x).to(self.device) if on_device else torch.from_numpy(images.test_x)
        self.test_y = torch.from_numpy(images.test_y).to(self.device) if on_device else torch.from_numpy(images.test_y)
        self.state = RunState()
        if resume is not None:
            self._restore(resume, resume_path)
        self.last_eval: EvalResult | None = None

    # ---------------------------------------------------------------- checkpoints

    def _restore(self, ckpt: dict[str, Any], path: Path | str) -> None:
        saved = ckpt["resume"]
        load_weights(self.engine.model, saved["live_model"], source=path, spec_name=self.spec.name)
        self.engine.load_state(saved["engine"])
        torch.set_rng_state(saved["rng"]["cpu"])
        if self.device.type == "cuda" and saved["rng"].get("cuda"):  # pragma: no cover - no GPU in CI
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        s = self.state
        s.epoch, s.batch, s.rows, s.best = ckpt["epoch"], ckpt["batch"], list(ckpt["metrics"]), dict(ckpt["best"])
        s.lrs, s.partial = list(saved["lrs"]), dict(saved["partial"])
        s.elapsed, s.train_elapsed = float(saved["elapsed"]), float(saved["train_elapsed"])

    def _save(self, name: str, *, with_resume: bool) -> Path:
        s = self.state
        resume = None
        if with_resume:
            rng = {"cpu": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None}
            resume = {"options": self.options.to_dict(), "live_model": self.engine.model.state_dict(),
                      "engine": self.engine.state(), "rng": rng, "lrs": s.lrs, "partial": s.partial,
                      "elapsed": s.elapsed, "train_elapsed": s.train_elapsed}
        path = self.out / name
        checkpoint.save_atomic(checkpoint.payload(
            spec=self.spec, images=self.images, model_state=self.engine.eval_model.state_dict(), epoch=s.epoch,
            batch=s.batch, metrics=s.rows, best=s.best, resume=resume), path)
        return path

    # ---------------------------------------------------------------- the loop

    def fit(self) -> dict[str, Any]:
        s = self.state
        if s.epoch >= self.cfg.epochs:
            raise RfcalcError(f"--resume: that run already finished its {self.cfg.epochs} epochs; nothing to do")
        artifacts.write_metrics(self.out / "metrics.jsonl", s.rows)
        bar = EpochBar(Console(stderr=True, width=self.console.width), self.cfg.epochs)
        try:
            with stop_on_ctrl_c() as flag:
                while s.epoch < self.cfg.epochs:
                    self._epoch(bar, flag)
        except _out_of_memory() as exc:
            bar.stop()
            raise RfcalcError(_oom_message(exc, self.cfg.batch_size), ExitCode.FAILED) from None
        finally:
            bar.stop()
            self.batches.close()
        return self.finish("finished")

    def _epoch(self, bar: EpochBar, flag: dict[str, bool]) -> None:
        s, engine, n_batches = self.state, self.engine, len(self.batches)
        wide = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64
        sums = torch.tensor([s.partial["loss"], s.partial["correct"]], dtype=wide, device=self.device)
        seen, seconds_before = int(s.partial["seen"]), s.partial["seconds"]
        started = last_shown = time.perf_counter()
        seen_here = 0
        bar.start(s.epoch, n_batches, s.batch)
        for b, (x, y) in enumerate(self.batches.epoch(s.epoch, s.batch), start=s.batch):
            loss, correct = engine.step(self.normalize(x), y)
            sums += torch.stack([loss.to(wide), correct.to(wide)])
            seen += len(y)
            seen_here += len(y)
            s.lrs.append(engine.lr)
            on_batch_hook(s.epoch, b)
            now = time.perf_counter()
            if self.device.type == "cpu" or now - last_shown > 0.25 or b == n_batches - 1:
                last_shown = now
                total_loss, total_correct = sums.tolist()
                self._check_finite(total_loss, b, n_batches)
                bar.update(b + 1, total_loss / seen, total_correct / seen, engine.lr, seen_here / (now - started))
            if flag["stop"]:
                total_loss, total_correct = sums.tolist()
                s.batch = b + 1
                s.partial = {"loss": total_loss, "correct": total_correct, "seen": seen,
                             "seconds": seconds_before + time.perf_counter() - started}
                bar.stop()
                path = self._save("last.pt", with_resume=True)
                raise Interrupted(f"interrupted in epoch {s.epoch + 1} after batch {b + 1}/{n_batches}; saved "
                                  f"{path}", path)
        total_loss, total_correct = sums.tolist()
        self._check_finite(total_loss, n_batches - 1, n_batches)
        train_seconds = seconds_before + time.perf_counter() - started
        bar.stop()
        result = evaluate_split(engine, self.test_x, self.test_y, self.normalize, len(self.images.classes),
                                self.cfg.tta)
        self.last_eval = result
        seconds = time.perf_counter() - started + seconds_before
        s.elapsed += seconds
        s.train_elapsed += train_seconds
        row = {"epoch": s.epoch + 1, "lr": engine.lr, "train_loss": total_loss / max(1, seen),
               "train_acc": total_correct / max(1, seen), "test_loss": result.loss, "test_acc": result.accuracy,
               "images_per_s": seen_here / max(1e-9, train_seconds - seconds_before), "seconds": seconds,
               "elapsed": s.elapsed, "train_elapsed": s.train_elapsed}
        s.rows.append(row)
        s.epoch, s.batch = s.epoch + 1, 0
        s.partial = {"loss": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}
        artifacts.write_metrics(self.out / "metrics.jsonl", s.rows)
        if result.accuracy > s.best["test_acc"]:
            s.best = {"test_acc": result.accuracy, "epoch": s.epoch}
            self._save("best.pt", with_resume=False)
        self._save("last.pt", with_resume=True)
        self.console.print(epoch_line(row, self.cfg.epochs), highlight=False)
        if flag["stop"]:
            path = self.out / "last.pt"
            raise Interrupted(f"interrupted after epoch {s.epoch}; saved {path}", path)

    def _check_finite(self, total_loss: float, batch: int, n_batches: int) -> None:
        if math.isfinite(total_loss):
            return
        s = self.state
        last = self.out / "last.pt"
        kept = (f"kept {last} (end of epoch {s.epoch})" if last.is_file() and s.epoch > 0
                else "no checkpoint was written")
        self.finish("diverged", plots=False)
        what = "NaN" if math.isnan(total_loss) else "infinite"
        raise Diverged(f"the loss became {what} in epoch {s.epoch + 1} (by batch {batch + 1}/{n_batches}, lr "
                       f"{self.engine.lr:.3g}); stopped and {kept}; try a lower --lr, e.g. {self.cfg.lr / 10:.3g}")

    # ---------------------------------------------------------------- the end

    def finish(self, status: str, plots: bool = True) -> dict[str, Any]:
        from rfcalc.trainer import finish as report

        return report.finish(self, status, plots)


def _out_of_memory() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [MemoryError]
    for holder in (torch, torch.cuda):
        kind = getattr(holder, "OutOfMemoryError", None)
        if isinstance(kind, type):
            kinds.append(kind)
    return tuple(kinds)


def _oom_message(exc: BaseException, batch_size: int) -> str:
    where = "CUDA" if "CUDA" in str(exc) else "the device"
    return (f"{where} ran out of memory at batch size {batch_size}; try --batch-size {max(1, batch_size // 2)}"
            f"{' or a smaller model' if batch_size <= 8 else ''}")


def describe(trainer: Trainer) -> str:
    cfg = trainer.cfg
    n_train, n_test = len(trainer.images.train_y), len(trainer.images.test_y)
    return (f"{device_name(trainer.device)}, {n_train:,} train / {n_test:,} test images, {cfg.epochs} epochs x "
            f"{len(trainer.batches)} batches of {min(cfg.batch_size, n_train)}, {cfg.optimizer} lr {cfg.lr:g} "
            f"({cfg.schedule}), aug {cfg.aug}")
