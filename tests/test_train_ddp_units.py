"""The pieces of distributed training that need no second process: sharding, per-sample augmentation identity,
the BatchNorm replacement, torchrun's environment, who reports which error, the launcher's command line and
failure line; and, in one process, the typed run state, the plain progress lines and the near-chance note."""
from __future__ import annotations

import copy
import io
import json
import signal
from pathlib import Path

import albumentations  # noqa: F401
import matplotlib  # noqa: F401
import numpy as np
import pytest
import torch
from rich.console import Console
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
from train_helpers import (
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    run,
    signal_after_step,
    spec_text,
    write_pickle_folder,
)

from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.trainer.augment import batch_indices, batches_per_epoch
from rfcalc.trainer.config import FastAug
from rfcalc.trainer.distributed import Agreed, Comm, LostRank, Silent, World, for_rank, launch_command, shard
from rfcalc.trainer.fast_aug import augment, batch_generator
from rfcalc.trainer.launch import failure
from rfcalc.trainer.progress import EpochBar, chance_note
from rfcalc.trainer.state import Best, EpochRow, Partial
from rfcalc.trainer.sync_norm import SyncBatchNorm, convert

# ---------------------------------------------------------------- sharding


@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 7])
def test_shards_cover_every_item_exactly_once_in_rank_order(ranks: int) -> None:
    for n in range(0, 40):
        parts = [list(shard(n, World(rank=r, size=ranks))) for r in range(ranks)]
        assert sum(parts, []) == list(range(n))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_ranks_split_the_global_batch_the_single_process_sees() -> None:
    n, seed = 83, 5
    for epoch in (0, 3):
        single = list(batch_indices(n, 8, seed, epoch))
        ranks = [list(batch_indices(n, 4, seed, epoch, rank=r, ranks=2)) for r in range(2)]
        assert batches_per_epoch(n, 4, 2) == len(single) == 10
        for b, indices in single:
            (b0, part0), (b1, part1) = ranks[0][b], ranks[1][b]
            assert b0 == b1 == b and len(part0) == len(part1) == 4
            assert np.concatenate([part0, part1]).tolist() == indices.tolist()
    resumed = list(batch_indices(n, 4, seed, 1, start=6, rank=1, ranks=2))
    assert [b for b, _ in resumed] == [6, 7, 8, 9]


def test_fast_aug_gives_each_image_its_single_process_augmentation() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 255, (8, 12, 12, 3), dtype=np.uint8))
    cfg = FastAug(flip=True, translate=3, cutout=4, cutout_p=0.5)
    fill = torch.tensor([10, 20, 30], dtype=torch.uint8)
    whole = augment(x, cfg, batch_generator(torch.device("cpu"), 7, 1, 2), fill)
    halves = [augment(x[lo:lo + 4], cfg, batch_generator(torch.device("cpu"), 7, 1, 2), fill, offset=lo, total=8)
              for lo in (0, 4)]
    assert torch.equal(torch.cat(halves), whole)
    own_stream = augment(x[4:], cfg, batch_generator(torch.device("cpu"), 7, 1, 2), fill)
    assert not torch.equal(own_stream, whole[4:])  # without offset/total the second half would differ


# ---------------------------------------------------------------- BatchNorm


def test_sync_batchnorm_is_batchnorm_in_one_process_and_keeps_the_state_dict() -> None:
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 5), torch.nn.BatchNorm1d(5))
    synced = convert(copy.deepcopy(plain))
    assert [type(m) for m in synced if isinstance(m, SyncBatchNorm)] == [SyncBatchNorm, SyncBatchNorm]
    assert synced.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(6, 3, 8, 8)
    a, b = plain(x), synced(x)
    a.square().sum().backward()
    b.square().sum().backward()
    assert torch.equal(a, b)
    for (name, p), q in zip(plain.named_parameters(), synced.parameters()):
        assert torch.equal(p.grad, q.grad), name
    assert all(torch.equal(v, synced.state_dict()[k]) for k, v in plain.state_dict().items())


# ---------------------------------------------------------------- torchrun's environment and who says what


def test_world_from_torchruns_environment() -> None:
    assert World.from_env({}) == World()
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "TORCHELASTIC_RESTART_COUNT": "1"}
    world = World.from_env(env)
    assert (world.rank, world.size, world.local_rank, world.local_size, world.nodes, world.restart) == (3, 4, 1, 2,
                                                                                                     2, 1)
    assert world.launcher == "torchrun" and world.distributed and not world.main
    assert World.from_env({**env, "RFCALC_LAUNCHER": "1"}).launcher == "rfcalc"
    with pytest.raises(RfcalcError, match=r"^\$WORLD_SIZE='two': not a number"):
        World.from_env({"RANK": "0", "WORLD_SIZE": "two"})
    with pytest.raises(RfcalcError, match=r"^\$RANK=4, \$WORLD_SIZE=4: the rank must be below the world size$"):
        World.from_env({"RANK": "4", "WORLD_SIZE": "4"})


def test_each_error_is_reported_once_by_the_right_rank() -> None:
    one = RfcalcError("bad flag")
    main, other, node_b = World(0, 4, 0, 2), World(1, 4, 1, 2), World(2, 4, 0, 2)
    assert for_rank(one, World(), connected=True) is one
    # before the process group: local rank 0 of every node speaks, the others are silent
    assert for_rank(one, main, connected=False) is one
    assert isinstance(for_rank(one, other, connected=False), Silent)
    assert str(for_rank(one, node_b, connected=False)) == "rank 2: bad flag"
    # after it: errors every rank shares are rank 0's; errors of one rank are said by that rank
    shared = Agreed("the ranks loaded different specs", ExitCode.BAD_INPUT)
    assert for_rank(shared, main, connected=True) is shared
    silent = for_rank(shared, other, connected=True)
    assert isinstance(silent, Silent) and silent.exit_code == ExitCode.BAD_INPUT
    own = for_rank(RfcalcError("CUDA ran out of memory", ExitCode.FAILED), other, connected=True)
    assert str(own) == "rank 1: CUDA ran out of memory" and own.exit_code == ExitCode.FAILED
    # every survivor of a dead rank loses contact: rank 0 says so, once
    lost = LostRank(other, "a step", RuntimeError("[pair.cc:537] Read error [127.0.0.1]:1455: Connection reset by "
                                                  "peer. This is typically caused by ..."))
    assert str(lost) == ("rank 1: stopped: lost contact with another rank during a step (Read error "
                         "[127.0.0.1]:1455: Connection reset by peer); that rank died or stopped answering")
    assert isinstance(for_rank(lost, other, connected=True), Silent)
    assert for_rank(LostRank(main, "a step", RuntimeError("x")), main, connected=True).exit_code == ExitCode.FAILED


def test_a_failure_of_the_first_loader_on_a_node_stops_every_rank_with_its_message() -> None:
    def missing() -> None:
        raise RfcalcError("--data /nope: no such file or folder")

    with pytest.raises(Agreed, match=r"^--data /nope: no such file or folder$"):
        Comm(World(), torch.device("cpu")).first_on_each_node(missing, "loading the data")


def test_the_resume_command_matches_the_launch() -> None:
    args = "train s.yaml --resume runs/s/last.pt"
    assert launch_command(World(), args) == "rfcalc train s.yaml --resume runs/s/last.pt"
    assert launch_command(World(0, 2, 0, 2, launcher="rfcalc"), args) == f"rfcalc {args} --nproc-per-node 2"
    assert launch_command(World(0, 4, 0, 4, launcher="torchrun"), args) == \
        f"torchrun --nproc-per-node 4 -m rfcalc {args}"
    assert launch_command(World(0, 4, 0, 2, launcher="torchrun"), args) == \
        f"torchrun <the same options, on every node> -m rfcalc {args}"


# ---------------------------------------------------------------- the launcher


def test_worker_command_line_parses_back_to_the_same_flags(tmp_path: Path) -> None:
    import typer

    from rfcalc.cli.train_commands import train, worker_argv

    values = {"data": "d", "epochs": 3, "batch_size": 16, "lr": 0.0125, "device": "cpu", "out": str(tmp_path),
              "train_limit": 100, "test_limit": 37, "seed": 4, "resume": None, "aug": "fast", "workers": 0,
              "dist_timeout": 30, "sync_bn": False, "optimizer": "adamw"}
    argv = worker_argv(Path("s.yaml"), values, skip_check=True, compile=False, overwrite=True)
    app = typer.Typer()
    app.command()(train)
    params = typer.main.get_command(app).make_context("train", argv[1:]).params
    assert {k: params[k] for k in values} == {**values, "resume": None}
    assert params["skip_check"] is True and params["compile"] is False and params["nproc_per_node"] is None
    assert params["overwrite"] is True


def test_a_killed_worker_becomes_one_line(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"")
    killed = failure({1: ProcessFailure(1, 4321, -9, ""), 0: ProcessFailure(0, 4320, 1, "")}, nproc=2,
                     max_restarts=0, out=tmp_path, spec_path=Path("s.yaml"))
    assert str(killed) == (f"rank 1 (pid 4321) was killed by SIGKILL; the other ranks were stopped; continue with: "
                           f"rfcalc train s.yaml --resume {tmp_path / 'last.pt'} --nproc-per-node 2")
    assert killed.exit_code == ExitCode.FAILED and not isinstance(killed, Silent)
    # every rank stopped by itself (here Ctrl-C, rank 1 then SIGTERM'd by the agent): they said it; pass the code
    stopped = failure({1: ProcessFailure(1, 2, 130, ""), 0: ProcessFailure(0, 1, -15, "")}, nproc=2,
                      max_restarts=3, out=tmp_path / "none", spec_path=Path("s.yaml"))
    assert isinstance(stopped, Silent) and stopped.exit_code == ExitCode.INTERRUPTED
    assert str(failure({0: ProcessFailure(0, 7, -15, "")}, nproc=1, max_restarts=2, out=tmp_path / "none",
                       spec_path=Path("s.yaml"))) == ("rank 0 (pid 7) was killed by SIGTERM after 2 restarts; the "
                                                      "other ranks were stopped")
    # rank 1 SIGKILLed; rank 0 aborted by gloo when its peer vanished: the kill is the cause, whatever the order
    aborted = failure({0: ProcessFailure(0, 10, -6, ""), 1: ProcessFailure(1, 11, -9, "")}, nproc=2,
                      max_restarts=0, out=tmp_path / "none", spec_path=Path("s.yaml"))
    assert str(aborted) == "rank 1 (pid 11) was killed by SIGKILL; the other ranks were stopped"
    alone = failure({0: ProcessFailure(0, 10, -6, "")}, nproc=2, max_restarts=0, out=tmp_path / "none",
                    spec_path=Path("s.yaml"))
    assert str(alone) == "rank 0 (pid 10) was killed by SIGABRT; the other ranks were stopped"


# ---------------------------------------------------------------- what a person sees


def test_plain_progress_lines_every_tenth_of_an_epoch_off_a_terminal() -> None:
    out = io.StringIO()
    bar = EpochBar(Console(file=out, width=200), epochs=3)
    assert bar.plain
    bar.start(1, 20, 0)
    for done in range(1, 21):
        bar.update(done, 2.0, 0.25, 0.1, 1000.0)
    lines = out.getvalue().splitlines()
    assert [line.split("  loss")[0] for line in lines] == [f"epoch 2/3 {p:3d}% ({2 * p // 10}/20 batches)"
                                                           for p in range(10, 100, 10)]
    assert "acc 25.00%  lr 0.1  1,000 img/s" in lines[0] and "s to go" in lines[0]
    resumed = io.StringIO()
    bar = EpochBar(Console(file=resumed, width=200), epochs=3)
    bar.start(0, 5, 2)
    for done in range(3, 6):
        bar.update(done, 2.0, 0.25, 0.1, 1000.0)
    assert [line.split(" (")[0] for line in resumed.getvalue().splitlines()] == ["epoch 1/3  60%", "epoch 1/3  80%"]


def test_near_chance_note() -> None:
    assert chance_note(0.35, 10, 19) is None
    assert chance_note(0.108, 10, 19) == (
        "note: test accuracy 10.8% is near chance (10.0% for 10 classes) after only 19 optimizer steps; that is "
        "normal this early: a small CNN usually needs a few hundred steps to leave chance (more epochs, or more "
        "images than --train-limit)")
    assert chance_note(0.012, 100, 5000).startswith("note: test accuracy 1.2% is near chance (1.0% for 100 "
                                                    "classes) after 5,000 optimizer steps: the model is not learning")


def test_typed_state_reads_and_writes_the_old_dicts() -> None:
    row = {"epoch": 2, "lr": 0.1, "train_loss": 1.5, "train_acc": 0.4, "test_loss": 1.4, "test_acc": 0.45,
           "images_per_s": 900.0, "seconds": 3.0, "elapsed": 6.0, "train_elapsed": 5.5}
    assert EpochRow.from_dict(row).to_dict() == row
    assert Best.from_dict({"test_acc": -1.0, "epoch": 0}) == Best()
    assert Partial.from_dict({"loss": 3.0, "correct": 2.0, "seen": 16.0, "seconds": 0.5}).to_dict() == \
        {"loss": 3.0, "correct": 2.0, "seen": 16.0, "seconds": 0.5}


@pytest.mark.slow
def test_one_process_run_prints_progress_lines_and_the_near_chance_note(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS")  # output to a log (not a terminal): one line per message
    data = write_pickle_folder(tmp_path / "pickles")
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(train="batch_size: 8\naug: fast"), encoding="utf-8")
    result = run(["train", spec, "--data", data, "--epochs", "1", "--lr", "1e-5", "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("epoch 1/1 ")]
    assert [line.split(" batches")[0] for line in progress] == [f"epoch 1/1 {p:3d}% ({p // 10}/10"
                                                                for p in range(10, 100, 10)]
    accuracy = json.loads((tmp_path / "run" / "summary.json").read_text())["final_test_acc"]
    assert result.stderr.splitlines()[-1] == chance_note(accuracy, 10, 10)
    assert "near chance (10.0% for 10 classes) after only 10 optimizer steps" in result.stderr


@pytest.mark.slow
def test_a_checkpoint_without_the_new_fields_still_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_pickle_folder(tmp_path / "pickles")
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(train="batch_size: 16\naug: fast"), encoding="utf-8")

    with signal_after_step(1, signal.SIGTERM):  # torchrun's SIGTERM during the second batch
        assert run(["train", spec, "--data", data, "--epochs", "2", "--out", tmp_path / "a"]).exit_code == 130
    path = tmp_path / "a" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["batch"] == 2 and ckpt["resume"]["world_size"] == 1 and "ranks" not in ckpt["resume"]["rng"]
    del ckpt["resume"]["world_size"], ckpt["resume"]["options"]["sync_bn"]  # as written before DDP
    torch.save(ckpt, path)
    with monkeypatch.context() as env:  # as rank 0 of 2: refused before any process group
        env.setenv("RANK", "0")
        env.setenv("WORLD_SIZE", "2")
        refused = run(["train", spec, "--resume", path])
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1] == (f"--resume {path}: that run trained on 1 rank(s) (global batch 16), "
                                               f"this one has 2; resume it with one process, or start a new run")
    result = run(["train", spec, "--resume", path])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("command", ["evaluate", "lr-find"])
def test_evaluate_and_lr_find_refuse_to_run_on_every_rank(command: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from train_helpers import one_line_error

    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["evaluate", spec, "--weights", tmp_path / "none.pt"] if command == "evaluate" else ["lr-find", spec]
    result = run(args)
    assert result.exit_code == 2
    assert one_line_error(result) == (f"rank 1: rfcalc {command} runs in one process; start it without torchrun "
                                      f"(only `rfcalc train` runs on many)")


def test_launch_and_device_errors_are_one_line_before_anything_starts(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from train_helpers import one_line_error

    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    cases = [(["--nproc-per-node", "0"], "--nproc-per-node 0: must be >= 1"),
             (["--nproc-per-node", "2", "--max-restarts", "-1"], "--max-restarts -1: must be >= 0"),
             (["--max-restarts", "2"], "--max-restarts needs --nproc-per-node (under torchrun, use torchrun's own "
                                       "--max-restarts)"),
             (["--nproc-per-node", "2", "--device", "mps"], "--device mps: torch.distributed has no MPS backend; "
                                                            "train on MPS in one process, or use --device cpu (gloo)"),
             (["--dist-timeout", "0"], "--dist-timeout 0: must be >= 1 (seconds)")]
    if not torch.cuda.is_available():
        cases.append((["--nproc-per-node", "2", "--device", "cuda"],
                      f"--device cuda: CUDA is not available here (torch {torch.__version__}); use --device cpu "
                      f"(gloo)"))
    for flags, message in cases:
        result = run(["train", spec, *flags])
        assert result.exit_code == 2 and one_line_error(result) == message, (flags, result.output)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = run(["train", spec, "--nproc-per-node", "2"])
    assert one_line_error(result) == "--nproc-per-node: this process is already a rank of torchrun; leave the flag out"


def test_a_restart_resumes_only_a_checkpoint_of_its_own_job(tmp_path: Path) -> None:
    from rfcalc.model.weights import FORMAT
    from rfcalc.trainer.config import TrainConfig
    from rfcalc.trainer.options import RunOptions
    from rfcalc.trainer.run import restart_checkpoint

    options = RunOptions(config=TrainConfig(), out=str(tmp_path))
    restarted = World(0, 2, 0, 2, restart=1, launcher="torchrun", run_id="job-7")
    assert restart_checkpoint(restarted, options) is None  # no last.pt yet
    torch.save({"format": FORMAT, "model": {}, "resume": {"run_id": "job-6"}}, tmp_path / "last.pt")
    assert restart_checkpoint(restarted, options) is None  # yesterday's run in the same folder
    torch.save({"format": FORMAT, "model": {}, "resume": {"run_id": "job-7"}}, tmp_path / "last.pt")
    ckpt, path = restart_checkpoint(restarted, options)
    assert path == tmp_path / "last.pt" and ckpt["resume"]["run_id"] == "job-7"
    assert restart_checkpoint(World(0, 2, 0, 2, restart=0, run_id="job-7"), options) is None  # first attempt
