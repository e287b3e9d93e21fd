"""`rfcalc sweep` from start to end: load the sweep, check the data once, run the workers, then the results,
the best spec and the plot. The command line only parses flags and renders what this returns."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.signals import stop_on_signals
from rfcalc.sweep.candidate import make_candidate, write_candidate
from rfcalc.sweep.load import Sweep
from rfcalc.sweep.outcome import Outcome
from rfcalc.sweep.results import Results, collect
from rfcalc.sweep.study import open_study, shown_url, storage_url
from rfcalc.sweep.trainproc import TRAIN_COMMAND
from rfcalc.sweep.worker import WorkerPlan, run_workers, say_with, sweep_of, work

CIFAR_NAMES = ("cifar10", "cifar100")


@dataclass(frozen=True)
class Finished:
    results: Results
    best_spec: Path | None
    plot: Path | None
    front_specs: tuple[Path, ...]
    interrupted: bool

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.best_spec is not None else ExitCode.FAILED


def resolve_data(sweep: Sweep, flag: str | None) -> str:
    """--data, else the sweep file's `data:`, else the base spec's `train.data` (relative to the working folder,
    else to the spec), else CIFAR-10/100; paths made absolute so that every trial's folder sees the same data."""
    def absolute(text: str, *beside: Path) -> str:
        if text.lower().replace("-", "") in CIFAR_NAMES:
            return text
        path = Path(text).expanduser()
        for folder in (Path.cwd(), *beside):
            if (folder / path).exists():
                return str((folder / path).resolve())
        return str(path.resolve())

    if flag:
        return absolute(flag)
    if sweep.data:
        return sweep.data
    given = (sweep.base.get("train") or {}).get("data")
    if isinstance(given, str) and given:
        return absolute(given, Path(sweep.base_file).resolve().parent)
    return "cifar100" if sweep.base.get("classes") == 100 else "cifar10"


def check_data(sweep: Sweep, data: str, say: Callable[[str], None]) -> Any:
    """Read (and cache) the data once, here, and check that it fits the base spec: N workers then start from the
    cache instead of decoding it N times, and a data set that cannot fit fails before any trial. Returns the
    whole data set (an ImageSet)."""
    from rfcalc.analysis.load import load_spec
    from rfcalc.trainer.data import fitting_data

    return fitting_data(load_spec(dict(sweep.base)), data, say)


def cuda_devices() -> int:
    """How many CUDA devices the trials can see (torch asked in a child process: the sweep itself never imports
    torch); 0 at once on a machine without an NVIDIA driver."""
    if not Path("/proc/driver/nvidia/gpus").is_dir() and shutil.which("nvidia-smi") is None:
        return 0
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return 0


def worker_devices(workers: int, device: str | None, gpus: int, per_device: int | None) -> list[str | None]:
    """The device of each worker's trials: on a machine with ``gpus`` CUDA devices and ``--device`` left to
    auto (or ``cuda``), workers fill device 0 with ``per_device`` of them, then device 1, ... (default: spread
    evenly); one small model leaves most of a GPU idle, so several train on each. Elsewhere (CPU, an explicit
    ``cuda:N``) every worker gets ``device`` as given."""
    if gpus < 1 or device not in (None, "auto", "cuda") or (workers == 1 and per_device is None):
        return [device] * workers
    per = per_device or -(-workers // gpus)
    needed = -(-workers // per)
    if needed > gpus:
        raise RfcalcError(f"--workers {workers} with --workers-per-device {per} needs {needed} GPUs; this machine "
                          f"has {gpus} (give --workers-per-device {-(-workers // gpus)} or fewer --workers)")
    return [f"cuda:{i // per}" for i in range(workers)]


def run_sweep(plan: WorkerPlan, workers: int, *, show_only: bool, plot: bool = True,
              say: Callable[[str], None] = say_with(""), per_device: int | None = None) -> Finished:
    sweep = sweep_of(plan)
    out = Path(plan.out)
    images = None
    if not show_only:  # before the study exists: bad data leaves no study.db with a queued candidate behind
        images = check_data(sweep, plan.data, say)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RfcalcError(f"--out {out}: cannot create the folder: {exc.strerror}", ExitCode.SYSTEM) from None
    if images is not None and sweep.budget.holdout:
        from rfcalc.sweep.holdout import FOLDER, write_holdout

        plan = replace(plan, data=str(write_holdout(images, sweep.budget.holdout, out / FOLDER, say)))
    del images
    study = open_study(sweep, plan.url, create=not show_only)
    interrupted = False
    if not show_only:
        say(f"sweep {sweep.name}: {sweep.trials} trials of {sweep.base_name} ({sweep.file}), "
            f"{len(sweep.dimensions)} dimensions, {' vs '.join(sweep.objective)}, {sweep.budget.epochs} epoch(s) "
            f"per trial ({sweep.pruner} pruner, {sweep.measure}); study {shown_url(plan.url)}; trials in "
            f"{out / 'trials'}")
        stop = threading.Event()
        threads = max(1, (os.cpu_count() or 1) // workers)
        own_launcher = plan.launcher not in ((), TRAIN_COMMAND)  # torchrun & co. place their ranks themselves
        gpus = 0 if own_launcher or plan.device == "cpu" or (workers == 1 and per_device is None) else cuda_devices()
        devices = worker_devices(workers, plan.device, gpus, per_device)
        if devices != [plan.device] * workers:
            say("workers: " + "; ".join(f"{', '.join(f'w{i}' for i, d in enumerate(devices) if d == device)} on "
                                        f"{device}" for device in dict.fromkeys(devices)))
        if workers == 1:
            with stop_on_signals(stop):
                interrupted = work(replace(plan, threads=threads, device=devices[0]), stop)
        else:
            plans = [replace(plan, index=i, label=f"w{i}: ", threads=threads, device=devices[i])
                     for i in range(workers)]
            codes = run_workers(plans, stop)
            interrupted = stop.is_set() or any(code == ExitCode.INTERRUPTED for code in codes)
            errors = [code for code in codes if code not in (0, ExitCode.INTERRUPTED)]
            if errors and not interrupted:
                raise RfcalcError(f"{len(errors)} of {workers} workers failed (exit {errors[0]}); their lines above "
                                  f"say why", ExitCode.INTERNAL if ExitCode.INTERNAL in errors else ExitCode.FAILED)
    results = collect(study, sweep, shown_url(plan.url))
    best_spec = write_best(sweep, results, out / "best.yaml")
    fronts = write_front(sweep, results, out / "pareto") if len(sweep.objective) > 1 else ()
    plot_path = None
    if plot and any(r.accuracy is not None for r in results.rows):
        from rfcalc.sweep.plot import limit_of, write_plot

        plot_path = write_plot(results, out / "pareto.png", limit_of(sweep.base.get("constraints"),
                                                                     sweep.second_objective))
    return Finished(results, best_spec, plot_path, fronts, interrupted)


def _note(sweep: Sweep, accuracy: float | None, epochs: int | None) -> str:
    budget = sweep.budget
    images = f"{budget.train_limit:,} training images" if budget.train_limit else "the training split"
    tests = f"{budget.test_limit:,} test images" if budget.test_limit else "the test split"
    measure = "test accuracy"
    if budget.holdout:
        images = (f"{budget.train_limit:,} of the training images not held out" if budget.train_limit else
                  f"the training split less {budget.holdout:,} held-out images")
        tests = f"{min(budget.holdout, budget.test_limit or budget.holdout):,} held-out training images"
        measure = "held-out accuracy"
    recipe = ", ".join(f"{k} {v}" for k, v in sweep.budget.recipe().items())
    return (f"{'best' if accuracy is None else f'{accuracy:.2%}'} {measure} after {epochs} epoch(s) on {images}, "
            f"measured on {tests}; its train: section is the trial's whole recipe ({recipe}): `rfcalc train <this "
            f"file>` trains it the same way (on the whole training split), add --epochs N to train it longer")


def write_best(sweep: Sweep, results: Results, path: Path) -> Path | None:
    """The best trial's spec, standalone (rebuilt from the base spec and its values; `rfcalc check` passes it)."""
    best = results.best
    if best is None:
        path.unlink(missing_ok=True)
        return None
    candidate = make_candidate(sweep, best.number, best.values)
    return write_candidate(sweep, candidate, path, "best trial; " + _note(sweep, best.accuracy, best.epochs))


def write_front(sweep: Sweep, results: Results, folder: Path) -> tuple[Path, ...]:
    written = []
    for row in results.rows:
        if row.front and row.outcome is Outcome.complete:
            candidate = make_candidate(sweep, row.number, row.values)
            written.append(write_candidate(sweep, candidate, folder / f"trial_{row.number:04d}.yaml",
                                           "on the Pareto front; " + _note(sweep, row.accuracy, row.epochs)))
    return tuple(written)


def default_plan(sweep_file: Path, *, out: Path | None, storage: str | None, data: str | None, device: str | None,
                 trials: int | None, timeout: float | None, seed: int | None,
                 launcher: tuple[str, ...]) -> tuple[WorkerPlan, Sweep]:
    """The plan of this run: the sweep file, its output folder (default runs/<name>), storage URL and data."""
    plan = WorkerPlan(str(sweep_file), "", "", "", device, trials, timeout, seed, launcher)
    sweep = sweep_of(plan)
    folder = (out or Path("runs") / sweep.name).resolve()
    return WorkerPlan(str(sweep_file), str(folder), storage_url(folder, storage), resolve_data(sweep, data), device,
                      trials, timeout, seed, launcher), sweep
