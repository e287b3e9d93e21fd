"""One trial, start to end: values -> trial spec -> torch-free check -> (rejected | trained, followed, pruned).

Called by Optuna's ``study.optimize`` (so heartbeats run while a child trains). The outcome is written as user
attributes (:mod:`rfcalc.sweep.outcome`) before the trial ends, whatever the ending.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfcalc.sweep.candidate import judge, make_candidate, write_candidate
from rfcalc.sweep.load import Sweep
from rfcalc.sweep.outcome import ATTRS, Outcome
from rfcalc.sweep.study import is_surplus
from rfcalc.sweep.trainproc import TRAIN_COMMAND, TrainJob, TrainProcess, last_line, read_metrics

INTERRUPT_WAIT_S = 120.0  # how long a child may take to save last.pt after Ctrl-C before it is killed


class TrialFailed(Exception):
    """Training failed (the child's one-line error is the message); the trial is FAIL and counts."""


class Surplus(Exception):
    """The trial started after the budget was full; it is FAIL, not run and not counted."""


@dataclass(frozen=True)
class Context:
    """What every trial of one worker shares."""

    sweep: Sweep
    out: Path
    data: str
    device: str | None
    stop: threading.Event
    say: Callable[[str], None]
    launcher: tuple[str, ...] = TRAIN_COMMAND
    env: dict[str, str] | None = None        # the children's environment (None: this process's)
    poll_s: float = 0.25                      # how often metrics.jsonl is read
    current: dict[str, int] = field(default_factory=dict)   # {"trial": number} of the trial under way


def folder_of(out: Path, number: int) -> Path:
    return out / "trials" / f"{number:04d}"


def run_trial(ctx: Context, trial: Any) -> float | tuple[float, float]:
    import optuna

    sweep, n = ctx.sweep, trial.number
    ctx.current["trial"] = n
    for key in set(trial.user_attrs) & set(ATTRS):  # a retry of a lost trial inherits its attempt's attributes
        trial.set_user_attr(key, None)
    if is_surplus(trial.study, n, sweep.trials):
        trial.set_user_attr("outcome", Outcome.surplus.value)
        raise Surplus(f"trial {n} started after the study had its {sweep.trials} trials")
    values = {dim.name: dim.suggest(trial) for dim in sweep.dimensions}
    folder = folder_of(ctx.out, n)
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("folder", str(folder))
    candidate = make_candidate(sweep, n, values)
    verdict = judge(write_candidate(sweep, candidate, folder / "spec.yaml"))
    trial.set_user_attr("check_ms", round(verdict.seconds * 1000, 2))
    if verdict.params is not None:
        trial.set_user_attr("model_params", verdict.params)
        trial.set_user_attr("macs", verdict.macs)
        trial.set_user_attr("rf", list(verdict.rf or ()))
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    if not verdict.ok:
        trial.set_user_attr("violation", verdict.violation)
        _constrain(trial, verdict.violation)
        _end(trial, Outcome.rejected, verdict.reason)
        ctx.say(f"trial {n}: rejected in {verdict.seconds * 1000:.0f} ms ({shown}): {verdict.reason}")
        raise optuna.TrialPruned(verdict.reason)
    trial.set_user_attr("violation", 0.0)
    _constrain(trial, 0.0)
    twin = _trained_twin(trial, values)
    if twin is not None:
        return _copy(ctx, trial, twin)
    return _train(ctx, trial, folder, verdict.params or 0, shown)


def _train(ctx: Context, trial: Any, folder: Path, params: int, shown: str) -> float | tuple[float, float]:
    import optuna

    sweep, n, epochs = ctx.sweep, trial.number, ctx.sweep.budget.epochs
    resume, resumed_from = _previous_attempt(ctx, trial)
    if resumed_from is not None:
        trial.set_user_attr("resumed_from", resumed_from)
        done = read_metrics(folder_of(ctx.out, resumed_from) / "metrics.jsonl")
        if len(done) >= epochs:  # Ctrl-C landed after its last epoch: nothing is left to train
            trial.set_user_attr("folder", str(folder_of(ctx.out, resumed_from)))  # where its files are
            return _complete(ctx, trial, done, f"trial {resumed_from} had trained all {epochs} epoch(s) when it was "
                                               f"interrupted: its result, not trained again")
    job = TrainJob(folder / "spec.yaml", folder, ctx.data, sweep.budget, ctx.device, resume, ctx.launcher)
    ctx.say(f"trial {n}: training {params:,} params ({shown})" +
            (f", resuming trial {resumed_from} from {resume}" if resume else ""))
    started = time.monotonic()
    proc = TrainProcess(job, folder / "train.log", ctx.env)
    best = -1.0
    try:
        while True:
            finished = not proc.running()
            for row in proc.new_epochs():
                epoch, accuracy = int(row["epoch"]), float(row["test_acc"])
                best = max(best, accuracy)
                trial.set_user_attr("accuracy", best)
                trial.set_user_attr("epochs", epoch)
                ctx.say(f"trial {n}: epoch {epoch}/{epochs}: {sweep.measure} {accuracy:.2%}")
                if len(sweep.objective) > 1:
                    continue
                trial.report(accuracy, epoch)
                if not finished and epoch < epochs and trial.should_prune():
                    proc.kill()
                    reason = f"stopped after epoch {epoch}/{epochs} by the {sweep.pruner} pruner ({accuracy:.2%})"
                    _end(trial, Outcome.pruned, reason, started)
                    ctx.say(f"trial {n}: pruned: {reason}")
                    raise optuna.TrialPruned(reason)
            if finished:
                break
            if ctx.stop.wait(ctx.poll_s):
                code = proc.interrupt(INTERRUPT_WAIT_S)
                proc.new_epochs()  # an epoch that ended while the child stopped
                rows = read_metrics(proc.metrics)
                if len(rows) >= epochs:  # Ctrl-C after the last epoch (while the trainer wrote its figures)
                    return _complete(ctx, trial, rows, f"Ctrl-C came after its last epoch ({epochs}/{epochs}): "
                                                       f"complete", started)
                kept = folder / "last.pt"
                reason = (f"interrupted (Ctrl-C) after {proc.seen} epoch(s); "
                          + (f"{kept} kept to resume" if kept.is_file() and code == 130 else "started over next time"))
                _end(trial, Outcome.interrupted, reason, started)
                ctx.say(f"trial {n}: {reason}")
                raise KeyboardInterrupt
    finally:
        proc.close()
    if proc.returncode != 0:
        reason = f"`rfcalc train` exited {proc.returncode}: {last_line(folder / 'train.log')}"
        _end(trial, Outcome.failed, reason, started)
        ctx.say(f"trial {n}: failed: {reason} (log: {folder / 'train.log'})")
        raise TrialFailed(reason)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    accuracy = float(summary["best_test_acc"])
    trial.set_user_attr("accuracy", accuracy)
    _end(trial, Outcome.complete, "", started)
    ctx.say(f"trial {n}: complete: best {sweep.measure} {accuracy:.2%} in {time.monotonic() - started:.1f} s")
    return _values(sweep, accuracy, trial)


def _complete(ctx: Context, trial: Any, rows: list[dict[str, Any]], reason: str,
              started: float | None = None) -> float | tuple[float, float]:
    """A trial complete from the epochs in its metrics.jsonl (the trainer's best_test_acc is their best)."""
    accuracy = max(float(row["test_acc"]) for row in rows)
    if started is None and len(ctx.sweep.objective) == 1:  # a retry: its intermediate values are its attempt's
        for row in rows:
            trial.report(float(row["test_acc"]), int(row["epoch"]))
    trial.set_user_attr("accuracy", accuracy)
    trial.set_user_attr("epochs", len(rows))
    _end(trial, Outcome.complete, reason, started)
    if started is None:
        trial.set_user_attr("seconds", 0.0)
    ctx.say(f"trial {trial.number}: complete: best {ctx.sweep.measure} {accuracy:.2%} ({reason})")
    return _values(ctx.sweep, accuracy, trial)


def _values(sweep: Sweep, accuracy: float, trial: Any) -> float | tuple[float, float]:
    if len(sweep.objective) == 1:
        return accuracy
    key = "model_params" if sweep.objective[1] == "params" else "macs"
    return accuracy, float(trial.user_attrs[key])


def _constrain(trial: Any, violation: float) -> None:
    """The constraint the samplers see (a queued retry inherits its attempt's, the same: Optuna keeps the first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial.set_constraint("rules", violation)


def _end(trial: Any, outcome: Outcome, reason: str, started: float | None = None) -> None:
    trial.set_user_attr("outcome", outcome.value)
    trial.set_user_attr("reason", reason)
    if started is not None:
        trial.set_user_attr("seconds", round(time.monotonic() - started, 2))


def _trained_twin(trial: Any, values: dict[str, Any]) -> Any:
    """A completed trial with exactly these values: training it again would give the same numbers."""
    import optuna

    for other in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if other.params == values and other.user_attrs.get("same_as") is None:
            return other
    return None


def _copy(ctx: Context, trial: Any, twin: Any) -> float | tuple[float, float]:
    for step, value in sorted(twin.intermediate_values.items()):
        if len(ctx.sweep.objective) == 1:
            trial.report(value, step)
    for key in ("accuracy", "epochs", "folder"):
        trial.set_user_attr(key, twin.user_attrs.get(key))
    trial.set_user_attr("same_as", twin.number)
    _end(trial, Outcome.complete, f"same candidate as trial {twin.number}: its result, not trained again")
    trial.set_user_attr("seconds", 0.0)
    ctx.say(f"trial {trial.number}: same candidate as trial {twin.number}; its result is reused")
    return twin.values[0] if len(twin.values) == 1 else tuple(twin.values)


def _previous_attempt(ctx: Context, trial: Any) -> tuple[Path | None, int | None]:
    """The last.pt of the attempt this trial repeats (an interrupted or lost trial), when this machine has it."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    history = frozen.system_attrs.get("retry_history") or []
    if not history:
        return None, None
    last = int(history[-1])
    checkpoint = folder_of(ctx.out, last) / "last.pt"
    return (checkpoint, last) if checkpoint.is_file() else (None, last)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
