"""Workers: run trials until the study has its `trials` (over every worker and machine), the time limit is
reached, or Ctrl-C - in this process, or in N processes that share the study's storage.

Ctrl-C (or SIGTERM): the first stops every worker after it has told its trial's child to save a resumable
``last.pt``; the trial is recorded as interrupted and its candidate queued again, so the next run of the same
command trains it first, from that checkpoint. A second Ctrl-C stops at once (the child is killed).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rfcalc.errors import ExitCode, RfcalcError, SpecError, debugging, internal_error_lines
from rfcalc.signals import stop_on_signals
from rfcalc.sweep.load import Sweep, load_sweep
from rfcalc.sweep.objective import Context, Surplus, TrialFailed, run_trial
from rfcalc.sweep.outcome import Outcome, counts, outcome_of
from rfcalc.sweep.study import open_study
from rfcalc.sweep.trainproc import TRAIN_COMMAND


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker process needs (picklable): it loads the sweep file itself."""

    sweep_file: str
    out: str
    url: str
    data: str
    device: str | None = None
    trials: int | None = None
    timeout: float | None = None
    seed: int | None = None
    launcher: tuple[str, ...] = ()
    index: int = 0
    label: str = ""
    threads: int | None = None      # OMP_NUM_THREADS of each trial (cores / workers) unless the caller set it


def sweep_of(plan: WorkerPlan) -> Sweep:
    """The sweep file with the command line's --trials / --timeout / --seed laid over it."""
    sweep = load_sweep(plan.sweep_file)
    changes: dict[str, Any] = {k: v for k, v in (("trials", plan.trials), ("timeout", plan.timeout),
                                                 ("seed", plan.seed)) if v is not None}
    return replace(sweep, **changes) if changes else sweep


def say_with(label: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"{label}{message}", flush=True)

    return say


def trial_env(threads: int | None) -> dict[str, str]:
    """The environment of every trial's `rfcalc train`: this one, plus (unless already set) OMP_NUM_THREADS =
    cores / workers, and OMP_WAIT_POLICY=PASSIVE - idle OpenMP threads sleep instead of spinning, which on a
    CPU shared with other trials or other work is the difference between ~200 and ~1,700 images/s for a small
    model (bench/RESULTS.md, sweep section)."""
    env = dict(os.environ)
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def more_to_do(study: Any, trials: int) -> bool:
    """Fewer than ``trials`` counted trials, or queued candidates (a queued retry replaces an interrupted one)."""
    all_trials = study.get_trials(deepcopy=False)
    return (sum(1 for t in all_trials if counts(t)) < trials
            or any(outcome_of(t) is Outcome.waiting for t in all_trials))


def work(plan: WorkerPlan, stop: threading.Event) -> bool:
    """Run trials until done; True when stopped by Ctrl-C / SIGTERM."""
    sweep = sweep_of(plan)
    study = open_study(sweep, plan.url, plan.index)
    say = say_with(plan.label)
    env = trial_env(plan.threads)
    ctx = Context(sweep, Path(plan.out), plan.data, plan.device, stop, say, plan.launcher or TRAIN_COMMAND, env=env)
    started = time.monotonic()
    while not stop.is_set():
        if not more_to_do(study, sweep.trials):
            break
        if sweep.timeout is not None and time.monotonic() - started >= sweep.timeout:
            say(f"time limit ({sweep.timeout:g} s) reached: no new trial started")
            break
        try:
            study.optimize(lambda trial: run_trial(ctx, trial), n_trials=1, catch=(TrialFailed, Surplus),
                           gc_after_trial=False)
        except KeyboardInterrupt:
            _queue_again(study, ctx.current.get("trial"))
            return True
    return stop.is_set()


def _queue_again(study: Any, number: int | None) -> None:
    """Queue an interrupted trial's candidate again; the retry resumes from its last.pt. The system attributes
    are those of Optuna's RetryHeartbeatStaleTrialCallback, so interrupted and lost trials read the same."""
    import optuna

    if number is None:
        return
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None or outcome_of(trial) not in (Outcome.interrupted, Outcome.lost):
        return
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        system_attrs={"failed_trial": history[0], "retry_history": history}))


def _worker_main(plan: WorkerPlan) -> None:
    """A worker process: its own session (Ctrl-C reaches it only through the parent), then :func:`work`."""
    os.setsid()
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            interrupted = work(plan, stop)
    except (SpecError, RfcalcError) as exc:
        print(f"{plan.label}{exc}", file=sys.stderr, flush=True)
        sys.exit(int(getattr(exc, "exit_code", ExitCode.BAD_INPUT)))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # a bug in rfcalc: said as one, never as a failed worker
        if debugging():
            raise
        for line in internal_error_lines(exc, f"{plan.label}rfcalc sweep"):
            print(line, file=sys.stderr, flush=True)
        sys.exit(int(ExitCode.INTERNAL))
    sys.exit(int(ExitCode.INTERRUPTED) if interrupted else 0)


def run_workers(plans: list[WorkerPlan], stop: threading.Event) -> list[int]:
    """Run each plan in its own process (spawned); the parent forwards every Ctrl-C. Returns the exit codes."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker_main, args=(plan,), name=f"rfcalc-sweep-{plan.label.strip(': ')}")
             for plan in plans]
    for proc in procs:
        proc.start()
    signals_seen = 0

    def forward() -> None:
        nonlocal signals_seen
        signals_seen += 1

    forwarded = 0
    with stop_on_signals(stop, forward, second_raises=False):
        while any(proc.is_alive() for proc in procs):
            for proc in procs:
                proc.join(0.2)
            while forwarded < signals_seen:
                forwarded += 1
                for proc in procs:
                    if proc.is_alive() and proc.pid is not None:
                        os.kill(proc.pid, signal.SIGINT)
    return [proc.exitcode if proc.exitcode is not None else 1 for proc in procs]
