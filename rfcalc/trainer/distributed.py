"""DistributedDataParallel: who this process is, the process group, and the few collectives the trainer uses.

- :class:`World` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
  ``TORCHELASTIC_RESTART_COUNT``); without torchrun it is one process, and nothing here touches
  ``torch.distributed`` at all (the single-process path is the one it always was).
- :func:`connect` picks the device (``cuda:LOCAL_RANK`` with NCCL, or the CPU with gloo), joins the process group
  with a timeout, and returns a :class:`Comm`. Control messages (stop flags, sums, the start-up comparison, test
  predictions) go through a gloo group on the CPU also when the gradients go through NCCL, so they never wait on
  the GPU stream.
- :func:`wrap` turns BatchNorm into synchronised BatchNorm (torch's on CUDA, :mod:`rfcalc.trainer.sync_norm`
  elsewhere) and wraps the module in ``DistributedDataParallel``.
- :func:`shard` is the one rule for splitting N items among ranks: contiguous, in rank order, sizes differing by
  at most one, so gathering the shards in rank order gives back the N items, each exactly once.

A collective that fails because another rank is gone raises :class:`LostRank` (a one-line error, exit 1).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from rfcalc.errors import ExitCode, RfcalcError, message_line
from rfcalc.trainer.augment import shard_bounds
from rfcalc.trainer.devices import resolve_device

LAUNCHER_ENV = "RFCALC_LAUNCHER"  # set by `rfcalc train --nproc-per-node` for its workers
DEFAULT_TIMEOUT = 300  # seconds a collective may wait for a live but silent rank
SETUP_TIMEOUT = 3600   # the wait for local rank 0 to decode the data set into the cache

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    restart: int = 0       # how many times torchrun restarted the workers (--max-restarts); agreed by `attend`
    launcher: str = ""     # "rfcalc" (`rfcalc train --nproc-per-node`), "torchrun", or "" for one plain process
    run_id: str = ""       # torchrun's id of the job, the same across its restarts

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes."""
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.size // max(1, self.local_size))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        env = os.environ if environ is None else environ
        if "RANK" not in env and "WORLD_SIZE" not in env:
            return cls()

        def number(name: str, default: int) -> int:
            raw = env.get(name, "")
            if raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise RfcalcError(f"${name}={raw!r}: not a number (torchrun sets it; start rfcalc with torchrun or "
                                  f"rfcalc train --nproc-per-node)") from None
            if value < 0:
                raise RfcalcError(f"${name}={value}: must be >= 0")
            return value

        size = number("WORLD_SIZE", 1)
        rank = number("RANK", 0)
        if size < 1 or rank >= size:
            raise RfcalcError(f"$RANK={rank}, $WORLD_SIZE={size}: the rank must be below the world size")
        local_size = number("LOCAL_WORLD_SIZE", size)
        launcher = "rfcalc" if env.get(LAUNCHER_ENV) else "torchrun"
        return cls(rank=rank, size=size, local_rank=number("LOCAL_RANK", rank), local_size=max(1, local_size),
                   restart=number("TORCHELASTIC_RESTART_COUNT", 0), launcher=launcher,
                   run_id=env.get("TORCHELASTIC_RUN_ID", ""))


class LostRank(RfcalcError):
    """A collective failed: another rank died, was killed, or stopped answering."""

    def __init__(self, world: World, during: str, exc: BaseException) -> None:
        first = message_line(exc)
        first = first.split("] ", 1)[-1].split(". ", 1)[0][:160]  # gloo: "[file.cc:537] What. Advice. ..."
        super().__init__(f"rank {world.rank}: stopped: lost contact with another rank during {during} ({first}); "
                         f"that rank died or stopped answering", ExitCode.FAILED)


class Agreed(RfcalcError):
    """An error every rank raises at the same point, from the same gathered facts: rank 0 alone reports it."""

    everywhere = True


class Silent(RfcalcError):
    """This rank exits with ``exit_code`` and prints nothing (another rank reports the error)."""

    def __init__(self, exit_code: ExitCode) -> None:
        super().__init__("", exit_code)


def is_comm_failure(exc: BaseException) -> bool:
    """A failure of the transport (peer closed, reset, timed out), not of this rank's own computation."""
    if isinstance(exc, getattr(torch.distributed, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(word in text for word in (
        "gloo", "Gloo", "NCCL", "ProcessGroup", "Connection reset", "Connection closed", "connection closed",
        "Broken pipe", "Timed out", "timed out", "Socket Timeout"))


def choose_device(world: World, request: str) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` (one GPU per rank) or the CPU; one-line errors otherwise."""
    if request == "mps":
        raise RfcalcError("--device mps: torch.distributed has no MPS backend; train on MPS in one process, or "
                          "use --device cpu (gloo)")
    cuda = torch.cuda.is_available()
    if request.startswith("cuda") or (request == "auto" and cuda):
        if not cuda:
            raise RfcalcError(f"--device {request}: CUDA is not available here (torch {torch.__version__}); "
                              f"use --device cpu (gloo)")
        if ":" in request:
            raise RfcalcError(f"--device {request}: under torchrun each rank uses cuda:LOCAL_RANK; write --device "
                              f"cuda (choose GPUs with CUDA_VISIBLE_DEVICES)")
        count = torch.cuda.device_count()  # pragma: no cover - no GPU in CI
        if world.local_size > count:  # pragma: no cover - no GPU in CI
            raise RfcalcError(f"{world.local_size} ranks on this node but only {count} CUDA device(s); use "
                              f"--nproc-per-node {count} (one rank per GPU)")
        if not torch.distributed.is_nccl_available():  # pragma: no cover - no GPU in CI
            raise RfcalcError(f"NCCL is not available in this torch build ({torch.__version__}); install a CUDA "
                              f"build of torch with NCCL, or use --device cpu (gloo)")
        return torch.device("cuda", world.local_rank)  # pragma: no cover - no GPU in CI
    return torch.device("cpu")


def shard(n: int, world: World) -> range:
    """This rank's contiguous share of ``n`` items (sizes differ by at most one; all shards cover 0..n once)."""
    return range(*shard_bounds(n, world.rank, world.size))


class Comm:
    """The collectives of one run. With one process every method is the identity and nothing is initialised."""

    def __init__(self, world: World, device: torch.device, control: Any = None) -> None:
        self.world, self.device, self.control = world, device, control
        self._pending: tuple[Any, torch.Tensor] | None = None  # an all-reduce of flags in flight

    # ---------------------------------------------------------------- the few collectives

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true when it is true on any rank (every rank gets the same answer at the same step)."""
        if not self.world.distributed:
            return tuple(flags)
        self.post(*flags)
        agreed = self.drain()
        assert agreed is not None
        return agreed

    def exchange(self, *flags: bool) -> tuple[bool, ...] | None:
        """Post this step's flags and return those agreed at the step before (None at the first), so the CPU
        all-reduce overlaps a step instead of stalling it; every rank gets the same answer at the same step.
        One process: this step's flags, at once."""
        if not self.world.distributed:
            return tuple(flags)
        agreed = self.drain()
        self.post(*flags)
        return agreed

    def post(self, *flags: bool) -> None:
        self.drain()
        values = torch.tensor([int(f) for f in flags], dtype=torch.int32)
        with self._guard("a step"):
            work = torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX, group=self.control,
                                                async_op=True)
        self._pending = (work, values)

    def drain(self) -> tuple[bool, ...] | None:
        """Wait for the flags in flight (if any) and return them agreed."""
        if self._pending is None:
            return None
        work, values = self._pending
        self._pending = None
        with self._guard("a step"):
            work.wait()
        return tuple(bool(v) for v in values.tolist())

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the ranks, in float64."""
        if not self.world.distributed:
            return [float(v) for v in values]
        self.drain()
        total = torch.tensor(list(values), dtype=torch.float64)
        with self._guard("a sum"):
            torch.distributed.all_reduce(total, group=self.control)
        return total.tolist()

    def gather(self, obj: T, during: str = "start-up") -> list[T]:
        """One picklable object from every rank, in rank order."""
        if not self.world.distributed:
            return [obj]
        self.drain()
        out: list[Any] = [None] * self.world.size
        with self._guard(during):
            torch.distributed.all_gather_object(out, obj, group=self.control)
        return out

    def gather_shards(self, part: torch.Tensor, total: int) -> torch.Tensor:
        """Concatenate every rank's :func:`shard` of a 1-D CPU tensor of ``total`` items (padded, then trimmed)."""
        if not self.world.distributed:
            return part
        self.drain()
        width = -(-total // self.world.size)
        padded = torch.zeros(width, dtype=part.dtype)
        padded[:len(part)] = part
        out = [torch.empty_like(padded) for _ in range(self.world.size)]
        with self._guard("evaluation"):
            torch.distributed.all_gather(out, padded, group=self.control)
        sizes = [len(shard(total, World(rank=r, size=self.world.size))) for r in range(self.world.size)]
        return torch.cat([chunk[:size] for chunk, size in zip(out, sizes)])

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) everywhere: the model evaluated is the one saved."""
        if not self.world.distributed:
            return
        self.drain()
        with self._guard("evaluation"), torch.no_grad():
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def barrier(self, timeout: float, during: str) -> None:
        if not self.world.distributed:
            return
        self.drain()
        with self._guard(during):
            torch.distributed.monitored_barrier(group=self.control, timeout=datetime.timedelta(seconds=timeout),
                                                wait_all_ranks=True)

    def settle(self) -> None:
        """Wait for every rank before exiting with an error they share: torchrun stops the whole group as soon as
        one rank exits non-zero, and rank 0 may still be writing."""
        try:
            self.barrier(DEFAULT_TIMEOUT, "stopping")
        except LostRank:
            pass

    def first_on_each_node(self, work: Callable[[], T], during: str) -> T:
        """``work()`` on local rank 0 first (e.g. decoding data into the node's cache), then on the others. A
        failure of it on any node stops every rank with that node's message (rank 0 says it)."""
        result, problem = None, None
        if self.world.local_rank == 0:
            try:
                result = work()
            except RfcalcError as exc:
                problem = (str(exc), int(exc.exit_code))
        self.barrier(SETUP_TIMEOUT, during)
        problems = self.gather(problem, during)
        failed = next(((r, p) for r, p in enumerate(problems) if p is not None), None)
        if failed is not None:
            rank, (message, code) = failed
            raise Agreed(message if rank == 0 else f"rank {rank}: {message}", ExitCode(code))
        return result if self.world.local_rank == 0 else work()  # type: ignore[return-value]

    @contextmanager
    def _guard(self, during: str) -> Iterator[None]:
        try:
            yield
        except RuntimeError as exc:
            if is_comm_failure(exc):
                raise LostRank(self.world, during, exc) from None
            raise

    @contextmanager
    def guard(self, during: str) -> Iterator[None]:
        """Transport failures inside (e.g. the gradient all-reduce of ``backward``) become :class:`LostRank`."""
        if not self.world.distributed:
            yield
            return
        with self._guard(during):
            yield

    def close(self) -> None:
        if self.world.distributed and torch.distributed.is_initialized():
            try:
                torch.distributed.destroy_process_group()
            except Exception:  # tearing down after a failure: nothing more to report
                pass


def connect(world: World, device_request: str, timeout: float = DEFAULT_TIMEOUT, store: Any = None) -> Comm:
    """Join the process group of ``world`` (nothing to join for one process) and return its :class:`Comm`.
    ``store``: this attempt's, from :func:`attend` (made here when not given)."""
    if not world.distributed:
        return Comm(world, resolve_device(device_request))
    device = choose_device(world, device_request)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":  # pragma: no cover - no GPU in CI
        torch.cuda.set_device(device)
    wait = datetime.timedelta(seconds=timeout)
    try:
        torch.distributed.init_process_group(backend=backend, timeout=wait, rank=world.rank, world_size=world.size,
                                             store=store if store is not None else attend(world, timeout)[1])
    except (RuntimeError, ValueError) as exc:
        first = message_line(exc)[:200]
        raise RfcalcError(f"rank {world.rank}: could not join the process group ({backend}): {first}",
                          ExitCode.FAILED) from None
    control = torch.distributed.new_group(backend="gloo", timeout=wait) if backend != "gloo" else None
    return Comm(world, device, control)


def attend(world: World, timeout: float = DEFAULT_TIMEOUT, required: bool = True) -> tuple[World, Any]:
    """Under torchrun: the key-value store of this attempt, and ``world`` with the restart count that every rank of
    the attempt agrees on. One process (or, unless ``required``, no store named): ``(world, None)``.

    The store is torchrun's (``MASTER_ADDR``/``MASTER_PORT``: its agent hosts it and keeps it across restarts, or
    rank 0 hosts it), under a prefix of this attempt's own, so that restarted ranks never read the addresses an
    earlier attempt's ranks left there (torch 2.13's ``env://`` uses no such prefix with the shared store, and a
    restarted rank could dial a dead peer). The attempt cannot be named by ``TORCHELASTIC_RESTART_COUNT``: each
    node's agent counts its own restarts, and the agent of a node whose ranks did not fail restarts them after a
    change of membership without counting it, so two nodes disagree (issue 22: the ranks then waited under two
    prefixes until the timeout). Instead rank 0 draws a fresh number from the store and hands it to every rank that
    asks under a fresh nonce (:func:`_attempt`)."""
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if not world.distributed or (missing and not required):
        return world, None
    from torch.distributed import PrefixStore, TCPStore

    if missing:
        raise RfcalcError(f"rank {world.rank}: ${' and $'.join(missing)} not set; start the ranks with torchrun or "
                          f"rfcalc train --nproc-per-node")
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    wait = datetime.timedelta(seconds=timeout)
    try:
        store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world.size,
                         is_master=not agent and world.rank == 0, timeout=wait, multi_tenant=not agent)
        base = f"rfcalc/{world.run_id or 'run'}"
        number, restarts = _attempt(store, base, world, timeout)
    except (RuntimeError, ValueError) as exc:  # the store's errors (DistStoreError is a RuntimeError)
        raise RfcalcError(f"rank {world.rank}: could not reach the other ranks through torchrun's store "
                          f"({os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}): {message_line(exc)[:200]}",
                          ExitCode.FAILED) from None
    return dataclasses.replace(world, restart=restarts), PrefixStore(f"{base}/attempt_{number}", store)


def _attempt(store: Any, base: str, world: World, timeout: float) -> tuple[int, int]:
    """``(number, restarts)``, the same on every rank of this attempt: a number no earlier attempt used in this
    store, and the most restarts any rank's agent counted (or the attempts before this one, if more).

    Rank 0 draws the number (``store.add``). Every other rank appends a fresh nonce to one list and waits for
    rank 0's answer under its nonce; rank 0 answers every nonce on the list (those an earlier attempt's ranks left
    there as well: nobody waits for them), then waits for each rank to confirm under the new number, the only keys
    that are certainly this attempt's, and publishes the restart count there."""
    hellos, deadline = f"{base}/hellos", time.monotonic() + timeout
    if world.rank:
        nonce = uuid.uuid4().hex
        store.append(hellos, f"{nonce};")
        store.wait([f"{base}/welcome/{nonce}"], datetime.timedelta(seconds=timeout))
        number = int(store.get(f"{base}/welcome/{nonce}"))
        store.set(f"{base}/handshake_{number}/joined/{world.rank}", str(world.restart))
        store.wait([f"{base}/handshake_{number}/restarts"], datetime.timedelta(seconds=timeout))
        return number, int(store.get(f"{base}/handshake_{number}/restarts"))
    number = int(store.add(f"{base}/attempts", 1))
    joined = [f"{base}/handshake_{number}/joined/{rank}" for rank in range(1, world.size)]
    store.append(hellos, "")
    answered: set[str] = set()
    while not store.check(joined):
        for nonce in set(store.get(hellos).decode().split(";")) - answered - {""}:
            store.set(f"{base}/welcome/{nonce}", str(number))
            answered.add(nonce)
        if time.monotonic() > deadline:
            late = [key.rpartition("/")[2] for key in joined if not store.check([key])]
            raise RfcalcError(f"rank 0: rank(s) {', '.join(late)} did not join within {timeout:g} s "
                              f"(--dist-timeout)", ExitCode.FAILED)
        time.sleep(0.02)
    restarts = max([number - 1, world.restart, *(int(store.get(key)) for key in joined)])
    store.set(f"{base}/handshake_{number}/restarts", str(restarts))
    return number, restarts


def sync_norms(model: nn.Module, device: torch.device) -> tuple[nn.Module, int]:
    """BatchNorm -> synchronised BatchNorm (statistics over the global batch); returns the model and the count."""
    from torch.nn.modules.batchnorm import _BatchNorm

    count = sum(isinstance(m, _BatchNorm) for m in model.modules())
    if not count:
        return model, 0
    if device.type == "cuda":  # pragma: no cover - no GPU in CI
        # torch declares convert_sync_batchnorm without types; it returns the module it is given, converted
        converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        return converted, count
    from rfcalc.trainer.sync_norm import convert

    return convert(model), count


def wrap(model: nn.Module, comm: Comm) -> nn.Module:
    """``DistributedDataParallel`` around an already placed model (the identity for one process)."""
    if not comm.world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [comm.device.index] if comm.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)


# ---------------------------------------------------------------- who says what


def for_rank(exc: Exception, world: World, *, connected: bool) -> Exception:
    """The error as this rank reports it, so that each problem is said once and says where.

    Before the process group is up, every rank meets the same input: local rank 0 of each node speaks (nodes
    may differ). After it, errors all ranks raise together (``everywhere``) and the lost contact every survivor
    of a dead rank meets are rank 0's to say; errors of one rank (out of memory, a crash) are said by that rank,
    prefixed with its number.
    """
    if not world.distributed:
        return exc
    code = exc.exit_code if isinstance(exc, RfcalcError) else ExitCode.BAD_INPUT
    shared = getattr(exc, "everywhere", False) or isinstance(exc, LostRank)  # every survivor loses contact
    speaks = world.local_rank == 0 if not connected else (world.main or not shared)
    if not speaks:
        return Silent(code)
    if world.rank and isinstance(exc, RfcalcError) and not str(exc).startswith(f"rank {world.rank}:"):
        return RfcalcError(f"rank {world.rank}: {exc}", code)
    return exc


def report(exc: Exception, world: World, *, connected: bool) -> Exception:
    """Under DDP, print this rank's line now (see :func:`for_rank`) and return :class:`Silent`: torchrun's agent
    stops the other ranks with SIGTERM as soon as one exits, so the line cannot wait for the command line's
    handler. One process: ``exc`` unchanged, for the command line to print."""
    if not world.distributed:
        return exc
    said = for_rank(exc, world, connected=connected)
    if isinstance(said, Silent):
        return said
    lines = [str(p) for p in getattr(said, "problems", [])] or [str(said)]
    sys.stderr.write("".join(line + "\n" for line in lines))
    sys.stderr.flush()
    return Silent(said.exit_code if isinstance(said, RfcalcError) else ExitCode.BAD_INPUT)


def launch_command(world: World, args: str) -> str:
    """The command that runs ``rfcalc {args}`` the way this run was launched (for the resume hint)."""
    if world.launcher == "rfcalc":
        return f"rfcalc {args} --nproc-per-node {world.local_size}"
    if world.launcher == "torchrun" and world.nodes > 1:
        return f"torchrun <the same options, on every node> -m rfcalc {args}"
    if world.launcher == "torchrun":
        return f"torchrun --nproc-per-node {world.local_size} -m rfcalc {args}"
    return f"rfcalc {args}"
