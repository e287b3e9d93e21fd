"""The training loop: epochs of steps, evaluation, checkpoints, metrics; NaN, out-of-memory, Ctrl-C and SIGTERM.

Every source of randomness is a function of (seed, epoch, batch) or is saved in ``last.pt``, so a run
interrupted anywhere and resumed with ``--resume`` ends with the same weights as one that never stopped
(on the CPU, bit for bit).

Under DistributedDataParallel every rank runs this loop on its shard of each global batch. After every step
the ranks agree (one small all-reduce on the CPU, overlapped with the next step) on whether any of them was
asked to stop or saw a non-finite loss, so all stop after the same batch (one step after the signal); the
epoch's sums and the evaluation are all-reduced; rank 0 alone prints and writes, and ``last.pt`` holds every
rank's random state.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import rfcalc
from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.lines import print_parts
from rfcalc.model.weights import load_weights
from rfcalc.quantities import count
from rfcalc.signals import StopFlag, stop_on_signals
from rfcalc.trainer import artifacts, checkpoint, graphs
from rfcalc.trainer.batches import Normalizer, make_batches
from rfcalc.trainer.data import ImageSet
from rfcalc.trainer.devices import device_name, resolve_device
from rfcalc.trainer.distributed import Comm, World
from rfcalc.trainer.engine import EVAL_BATCH, Engine, EvalResult, cudnn_autotune, evaluate_split, setup_backend
from rfcalc.trainer.options import RunOptions
from rfcalc.trainer.progress import EpochBar, epoch_parts
from rfcalc.trainer.state import Best, EpochRow, Partial, RunState


class Diverged(RfcalcError):
    everywhere = True  # every rank raises it at the same step

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.FAILED)


class Interrupted(RfcalcError):
    """Ctrl-C or SIGTERM: ``last.pt`` holds the state at the last finished batch."""

    everywhere = True

    def __init__(self, message: str, checkpoint_path: Path) -> None:
        self.checkpoint_path = checkpoint_path
        super().__init__(message, ExitCode.INTERRUPTED)


def rank_seed(seed: int, rank: int) -> int:
    """The torch seed of rank ``rank`` after the model is built (dropout masks differ between ranks)."""
    return int(np.random.SeedSequence([seed, rank, 0xDD9]).generate_state(1, np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF)


class Trainer:
    """One run of ``rfcalc train``: build everything, then :meth:`fit`."""

    def __init__(self, spec: Any, options: RunOptions, images: ImageSet, console: Console,
                 say: Callable[[str], None], resume: dict[str, Any] | None = None,
                 resume_path: Path | str = "--resume", comm: Comm | None = None) -> None:
        self.spec, self.options, self.images, self.console, self.say = spec, options, images, console, say
        self.cfg = options.config
        self.out = Path(options.out)
        self.comm = comm if comm is not None else Comm(World(), resolve_device(options.device))
        self.world = self.comm.world
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.device = self.comm.device
        setup_backend(self.device, self.cfg.seed)
        model = rfcalc.build_model(spec)  # the same initial weights on every rank
        if self.world.rank:
            torch.manual_seed(rank_seed(self.cfg.seed, self.world.rank))
        self.normalize = Normalizer(images.mean, images.std, self.device)
        self.batches = make_batches(images, options, self.device, say, self.world)
        self.total_steps = self.cfg.epochs * len(self.batches)
        self.engine = Engine(model, self.cfg, self.device, self.total_steps, compile=options.compile,
                             comm=self.comm, sync_bn=options.sync_bn)
        self.graph_choice = graphs.choose(self.device, distributed=self.world.distributed, compiled=options.compile,
                                          wanted=options.cuda_graph)
        on_device = self.device.type != "cpu"
        self.test_x = torch.from_numpy(images.test_x).to(self.device) if on_device else torch.from_numpy(images.test_x)
        self.test_y = torch.from_numpy(images.test_y).to(self.device) if on_device else torch.from_numpy(images.test_y)
        self.state = RunState()
        if resume is not None:
            self._restore(resume, resume_path)
        self.last_eval: EvalResult | None = None

    @property
    def global_batch(self) -> int:
        return min(self.cfg.batch_size * self.world.size, len(self.images.train_y))

    # ---------------------------------------------------------------- checkpoints

    def _restore(self, ckpt: dict[str, Any], path: Path | str) -> None:
        saved = ckpt["resume"]
        load_weights(self.engine.model, saved["live_model"], source=path, spec_name=self.spec.name)
        self.engine.load_state(saved["engine"])
        rng = saved["rng"]
        mine = rng["ranks"][self.world.rank] if rng.get("ranks") else rng
        torch.set_rng_state(mine["cpu"])
        if self.device.type == "cuda" and mine.get("cuda"):  # pragma: no cover - no GPU in CI
            torch.cuda.set_rng_state(mine["cuda"], self.device)
        s = self.state
        s.epoch, s.batch = int(ckpt["epoch"]), int(ckpt["batch"])
        s.rows = [EpochRow.from_dict(row) for row in ckpt["metrics"]]
        s.best = Best.from_dict(ckpt["best"])
        s.lrs, s.partial = list(saved["lrs"]), Partial.from_dict(saved["partial"])
        s.elapsed, s.train_elapsed = float(saved["elapsed"]), float(saved["train_elapsed"])

    def _rng_state(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if cuda else None}  # pragma: no cover - cuda

    def _save(self, name: str, *, with_resume: bool) -> Path:
        """Rank 0 writes ``name`` atomically; with the resume state every rank takes part (its random state)."""
        s = self.state
        resume = None
        if with_resume:
            rng = self._rng_state()
            ranks = self.comm.gather(rng, during="a checkpoint")
            if self.world.distributed:
                rng = {**ranks[0], "ranks": ranks}
            resume = {"options": self.options.to_dict(), "live_model": self.engine.model.state_dict(),
                      "engine": self.engine.state(), "rng": rng, "lrs": s.lrs, "partial": s.partial.to_dict(),
                      "elapsed": s.elapsed, "train_elapsed": s.train_elapsed, "world_size": self.world.size,
                      "run_id": self.world.run_id}
        path = self.out / name
        if self.world.main:
            checkpoint.save_atomic(checkpoint.payload(
                spec=self.spec, images=self.images, model_state=self.engine.eval_model.state_dict(), epoch=s.epoch,
                batch=s.batch, metrics=[row.to_dict() for row in s.rows], best=s.best.to_dict(), resume=resume),
                path)
        return path

    # ---------------------------------------------------------------- the loop

    def fit(self) -> dict[str, Any]:
        s = self.state
        if s.epoch >= self.cfg.epochs:
            raise RfcalcError(f"--resume: that run already finished its {self.cfg.epochs} epochs; nothing to do")
        if self.world.main:
            artifacts.write_metrics(self.out / "metrics.jsonl", s.rows)
        bar = EpochBar(Console(stderr=True, width=self.console.width, quiet=self.console.quiet), self.cfg.epochs)
        self._warm_up()
        try:
            with stop_on_signals(keep=self.world.distributed) as flag, self.comm.guard("training"):
                while s.epoch < self.cfg.epochs:
                    self._epoch(bar, flag)
        except _out_of_memory() as exc:
            bar.stop()
            raise RfcalcError(_oom_message(exc, self.cfg.batch_size), ExitCode.FAILED) from None
        finally:
            bar.stop()
            self.batches.close()
        return self.finish("finished")

    def _warm_up(self) -> None:
        """On CUDA (one process): the run's shapes once (lazy CUDA state; cudnn autotuning where asked) and the CUDA
        graph capture, before epoch 1, timed and counted in the run's elapsed time (``warmup_seconds``)."""
        if self.device.type != "cuda" or self.world.distributed:
            return
        started = time.perf_counter()
        batch = min(self.cfg.batch_size, len(self.images.train_y))
        first_x = torch.from_numpy(self.images.train_x[:batch]).to(self.device)
        first_y = torch.from_numpy(self.images.train_y[:batch]).to(self.device)
        wanted = self.graph_choice
        self.graph_choice = graphs.warm_up(self.engine, self.normalize, wanted, first_x, first_y,
                                           graphs.eval_batches(len(self.test_y), EVAL_BATCH), self.cfg.tta)
        seconds = time.perf_counter() - started
        self.state.warmup += seconds
        self.state.elapsed += seconds
        if wanted.capture and not self.graph_choice.capture:
            self.say(f"notice: {self.graph_choice.reason}; this run takes eager steps")
        what = ", ".join(part for part, done in (("cudnn autotuning", cudnn_autotune()), ("lazy CUDA state", True),
                                                 ("CUDA graph capture", self.graph_choice.capture)) if done)
        self.say(f"warm-up {seconds:.1f} s ({what}) before epoch {self.state.epoch + 1}")

    def _epoch(self, bar: EpochBar, flag: StopFlag) -> None:
        s, engine, comm, n_batches = self.state, self.engine, self.comm, len(self.batches)
        carried = s.partial if self.world.main else Partial(seconds=s.partial.seconds)  # rank 0 carries the sums
        engine.begin_epoch(carried.loss, carried.correct)
        sums = engine.sums
        seen, seconds_before = int(carried.seen), carried.seconds
        started = last_shown = time.perf_counter()
        seen_here = 0
        bar.start(s.epoch, n_batches, s.batch)
        for b, (x, y) in enumerate(self.batches.epoch(s.epoch, s.batch), start=s.batch):
            engine.train_step(x, y, self.normalize)
            seen += len(y)
            seen_here += len(y)
            s.lrs.append(engine.lr)
            now = time.perf_counter()
            bad = False
            if self.device.type == "cpu" or now - last_shown > 0.25 or b == n_batches - 1:
                last_shown = now
                total_loss, total_correct = sums.tolist()
                bad = not math.isfinite(total_loss)
                bar.update(b + 1, total_loss / max(1, seen), total_correct / max(1, seen), engine.lr,
                           seen_here * self.world.size / (now - started))
            decided = comm.exchange(flag.stop, bad)  # under DDP: the flags of the step before, agreed
            if decided is None:
                continue
            stop, bad = decided
            if bad:
                self._diverged(sums.tolist()[0], b, n_batches)
            if stop and b < n_batches - 1:  # after the last batch the epoch ends as usual, then stops (below)
                total_loss, total_correct, all_seen = comm.sum([*sums.tolist(), seen])
                s.batch = b + 1
                s.partial = Partial(loss=total_loss, correct=total_correct, seen=all_seen,
                                    seconds=seconds_before + time.perf_counter() - started)
                bar.stop()
                path = self._save("last.pt", with_resume=True)
                raise Interrupted(f"interrupted in epoch {s.epoch + 1} after batch {b + 1}/{n_batches}; saved "
                                  f"{path}", path)
        comm.drain()  # the last step's flags: the sums below and the stop check after the epoch cover them
        total_loss, total_correct, all_seen, all_seen_here = comm.sum([*sums.tolist(), seen, seen_here])
        if not math.isfinite(total_loss):
            self._diverged(total_loss, n_batches - 1, n_batches)
        train_seconds = seconds_before + time.perf_counter() - started
        bar.stop()
        comm.broadcast_buffers(engine.model)
        if engine.ema is not None:
            comm.broadcast_buffers(engine.ema.model)
        result = evaluate_split(engine, self.test_x, self.test_y, self.normalize, len(self.images.classes),
                                self.cfg.tta)
        self.last_eval = result
        seconds = time.perf_counter() - started + seconds_before
        s.elapsed += seconds
        s.train_elapsed += train_seconds
        row = EpochRow(epoch=s.epoch + 1, lr=engine.lr, train_loss=total_loss / max(1, all_seen),
                       train_acc=total_correct / max(1, all_seen), test_loss=result.loss, test_acc=result.accuracy,
                       images_per_s=all_seen_here / max(1e-9, train_seconds - seconds_before), seconds=seconds,
                       elapsed=s.elapsed, train_elapsed=s.train_elapsed)
        s.rows.append(row)
        s.epoch, s.batch = s.epoch + 1, 0
        s.partial = Partial()
        if self.world.main:
            artifacts.write_metrics(self.out / "metrics.jsonl", s.rows)
        if result.accuracy > s.best.test_acc:
            s.best = Best(test_acc=result.accuracy, epoch=s.epoch)
            self._save("best.pt", with_resume=False)
        self._save("last.pt", with_resume=True)
        print_parts(self.console, epoch_parts(row, self.cfg.epochs), sep="  ")
        stop, = comm.agree(flag.stop)
        if stop:
            path = self.out / "last.pt"
            raise Interrupted(f"interrupted after epoch {s.epoch}; saved {path}", path)

    def _diverged(self, total_loss: float, batch: int, n_batches: int) -> None:
        s = self.state
        last = self.out / "last.pt"
        kept = (f"kept {last} (end of epoch {s.epoch})" if s.epoch > 0 and (last.is_file() or not self.world.main)
                else "no checkpoint was written")
        self.finish("diverged", plots=False)
        what = "infinite" if math.isinf(total_loss) else "NaN"
        where = f"in epoch {s.epoch + 1} (by batch {batch + 1}/{n_batches}, lr {self.engine.lr:.3g})"
        raise Diverged(f"the loss became {what} {where}; stopped and {kept}; try a lower --lr, e.g. "
                       f"{self.cfg.lr / 10:.3g}")

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
    cfg, world = trainer.cfg, trainer.world
    n_train, n_test = len(trainer.images.train_y), len(trainer.images.test_y)
    notes = []
    if world.distributed:
        norms = trainer.engine.synced_norms
        notes.append(f"{world.size} ranks x {cfg.batch_size}{f', {norms} BatchNorm synchronised' if norms else ''}"
                     f"{', BatchNorm per rank' if not norms and not trainer.options.sync_bn else ''}")
        where = f"{world.size} ranks on {count(world.nodes, 'node')}, each {device_name(trainer.device)}"
    else:
        where = device_name(trainer.device)
    left = n_train - len(trainer.batches) * trainer.global_batch
    if left * 100 >= n_train:  # full batches only (a last batch of a few images breaks batch norm): say so
        notes.append(f"{left:,} of the {n_train:,} images sit out each epoch, a new draw every epoch")
    batch = f"{count(len(trainer.batches), 'batch', 'batches')} of {trainer.global_batch}" + (
        f" ({', '.join(notes)})" if notes else "")
    steps = f", {trainer.graph_choice.describe()}" if trainer.device.type == "cuda" else ""
    if cfg.zero_init_residual:
        zeroed = trainer.engine.zeroed_bodies
        steps += (f", {count(zeroed, 'residual block')} starting as the shortcut" if zeroed else
                  ", zero_init_residual: no residual block has a norm layer to start at zero")
    return (f"{where}, {n_train:,} train / {n_test:,} test images, {count(cfg.epochs, 'epoch')} x {batch}, "
            f"{cfg.optimizer} lr {cfg.lr:g} ({cfg.schedule}), aug {trainer.batches.description}{steps}")
