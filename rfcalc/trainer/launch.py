"""`rfcalc train --nproc-per-node N`: start N workers on this machine through torch.distributed.elastic, the
machinery behind torchrun (``torchrun --standalone --nproc-per-node N -m rfcalc train ...``).

The agent runs in this process (``elastic_launch``), not in a child ``python -m torch.distributed.run``: one
interpreter fewer, torchrun's log lines kept out of the output, and a worker that dies becomes one line here
instead of torchrun's traceback and failure table. The workers are ``python -m rfcalc train ...`` with the same
flags, exactly what torchrun would start; each knows from ``$RFCALC_LAUNCHER`` how it was launched (for the
resume command it prints).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.trainer.distributed import LAUNCHER_ENV, Silent, World, choose_device

MONITOR_INTERVAL = 0.1  # seconds between the agent's looks at its workers
SHUTDOWN_TIMEOUT = 30   # seconds a worker gets to save last.pt after SIGINT/SIGTERM before SIGKILL


def check_launch(nproc: int, max_restarts: int, device: str | None) -> None:
    """One-line errors before anything starts: counts, nesting, and more ranks than GPUs or no NCCL."""
    if nproc < 1:
        raise RfcalcError(f"--nproc-per-node {nproc}: must be >= 1")
    if max_restarts < 0:
        raise RfcalcError(f"--max-restarts {max_restarts}: must be >= 0")
    if World.from_env().size > 1 or os.environ.get("TORCHELASTIC_RUN_ID"):
        raise RfcalcError("--nproc-per-node: this process is already a rank of torchrun; leave the flag out")
    choose_device(World(size=nproc, local_size=nproc), device or "auto")


@contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent logs every start, restart and failure; the workers and the line below say what matters.
    (torch.distributed.elastic sets a level on each of its module loggers, so each is silenced.)"""
    names = ["torch.distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.")]
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def launch(argv: Sequence[str], *, nproc: int, max_restarts: int, out: Path, spec_path: Path,
           entry: Sequence[str] | None = None) -> None:
    """Run ``python -m rfcalc *argv`` as ``nproc`` ranks; returns when all finished, else raises one line.

    ``entry`` replaces ``[sys.executable, "-m", "rfcalc"]`` (the command every worker runs before ``argv``).
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    command = list(entry) if entry else [sys.executable, "-m", "rfcalc"]
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    env = {LAUNCHER_ENV: "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads)}
    with tempfile.TemporaryDirectory(prefix="rfcalc-launch-") as logs, _environment(env), _quiet_agent():
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex, rdzv_backend="c10d",
            rdzv_endpoint="localhost:0", max_restarts=max_restarts, monitor_interval=MONITOR_INTERVAL,
            logs_specs=DefaultLogsSpecs(log_dir=logs), shutdown_timeout=SHUTDOWN_TIMEOUT)
        try:
            elastic_launch(config, command[0])(*command[1:], *argv)
        except ChildFailedError as exc:
            raise failure(exc.failures, nproc=nproc, max_restarts=max_restarts, out=out,
                          spec_path=spec_path) from None
        except SignalException as exc:
            # The workers got the signal too, saved last.pt and rank 0 printed the resume command.
            code = ExitCode.INTERRUPTED if exc.sigval in (signal.SIGINT, signal.SIGTERM) else ExitCode.FAILED
            raise Silent(code) from None


def failure(failures: dict[int, Any], *, nproc: int, max_restarts: int, out: Path, spec_path: Path) -> RfcalcError:
    """The workers' failures as one line: a rank killed by a signal is named; otherwise the workers have said
    what went wrong themselves, and only their exit code is passed on."""
    ranks = sorted(failures.items())
    signalled = [(r, f) for r, f in ranks if f.exitcode < 0]
    # SIGTERM is what the agent sends to the other ranks once one has failed: the cause is elsewhere. SIGABRT is
    # how a rank may end when its collective's peer vanished (gloo aborts in its own thread): named only when no
    # other signal explains the failure.
    killed = sorted(((r, f) for r, f in signalled if f.signal_name() != "SIGTERM"),
                    key=lambda item: item[1].signal_name() == "SIGABRT")
    code = next((f.exitcode for _, f in ranks if f.exitcode > 0), None)
    if killed or (signalled and code is None):
        rank, what = (killed or signalled)[0]
        last = out / "last.pt"
        tail = (f"; continue with: rfcalc train {spec_path} --resume {last} --nproc-per-node {nproc}"
                if last.is_file() else "")
        used = f" after {max_restarts} restart{'s' if max_restarts != 1 else ''}" if max_restarts else ""
        return RfcalcError(f"rank {rank} (pid {what.pid}) was killed by {what.signal_name()}{used}; the other ranks "
                           f"were stopped{tail}", ExitCode.FAILED)
    # The workers said what went wrong themselves (rank 0, or the rank it happened to): pass on the exit code.
    code = code if code is not None else int(ExitCode.FAILED)
    return Silent(ExitCode(code) if code in ExitCode._value2member_map_ else ExitCode.FAILED)
