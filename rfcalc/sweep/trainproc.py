"""A trial's training as a child process, followed through the ``metrics.jsonl`` it rewrites after every epoch.

The child is `python -m rfcalc train <trial spec> --out <trial folder> --data … <budget flags>` (or any launcher
given with ``--train-command``, e.g. torchrun), in a session of its own: a Ctrl-C at the terminal reaches the sweep,
which decides what the child gets. SIGINT makes the trainer finish its batch and save a resumable ``last.pt``
(Ctrl-C); SIGTERM to the whole process group stops it after its batch (pruning; the trainer saves what it has),
then SIGKILL when it takes longer than the timeout.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rfcalc.sweep.model import Budget

TRAIN_COMMAND: tuple[str, ...] = (sys.executable, "-m", "rfcalc", "train")


@dataclass(frozen=True)
class TrainJob:
    """What one trial trains: the spec file, its folder, the data, the budget and where to resume from."""

    spec: Path
    out: Path
    data: str
    budget: Budget
    device: str | None = None
    resume: Path | None = None
    launcher: tuple[str, ...] = TRAIN_COMMAND

    def command(self) -> list[str]:
        command = [*self.launcher, str(self.spec), "--out", str(self.out), "--data", self.data,
                   *self.budget.flags()]
        if self.device:
            command += ["--device", self.device]
        if self.resume is not None:
            command += ["--resume", str(self.resume)]
        return command


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epochs written so far (the trainer replaces the file atomically, so it is always whole)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
    return rows


def last_line(path: Path) -> str:
    """The last non-empty line of a log: the one-line error of a failed `rfcalc train`."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no output"


class TrainProcess:
    """A running `rfcalc train`: its new epochs, whether it still runs, and how to stop it."""

    def __init__(self, job: TrainJob, log: Path, env: dict[str, str] | None = None) -> None:
        self.job = job
        self.metrics = job.out / "metrics.jsonl"
        self.seen = 0
        job.out.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log.open("ab")
        self._log.write(("$ " + " ".join(job.command()) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(job.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)

    def new_epochs(self) -> list[dict[str, Any]]:
        rows = read_metrics(self.metrics)
        fresh = rows[self.seen:]
        self.seen = max(self.seen, len(rows))
        return fresh

    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def interrupt(self, timeout: float) -> int:
        """Ctrl-C for the trainer: it saves ``last.pt`` after its batch and exits 130 (killed after ``timeout``)."""
        self._signal(signal.SIGINT, group=False)
        return self._wait(timeout)

    def kill(self, timeout: float = 10.0) -> int:
        """Stop: SIGTERM to the process group (the trainer and its DataLoader workers; the trainer ends its batch),
        then SIGKILL after ``timeout``."""
        self._signal(signal.SIGTERM, group=True)
        return self._wait(timeout)

    def _wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL, group=True)
            return self.proc.wait()

    def _signal(self, sig: int, *, group: bool) -> None:
        try:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        if self.running():
            self.kill()
        self._log.close()
