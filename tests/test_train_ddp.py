"""`rfcalc train` under DistributedDataParallel, with real torchrun processes (gloo on the CPU, one thread each),
tiny specs and tiny data.

The oracle: 2 ranks x batch B end with the weights of 1 process x batch 2B (a GroupNorm spec with random fast
augmentation and EMA; a BatchNorm spec with synchronised BatchNorm on the albumentations path, and without it as
the control that shows the comparison can fail). Then: sharded evaluation counts each test image once; rank 0
alone prints and writes; a SIGTERM on one rank stops all ranks with a resumable last.pt and resuming ends where
the uninterrupted run ends, bit for bit; a killed rank ends the run with one line; --max-restarts resumes by
itself; two "nodes" rendezvous on localhost; ranks with different specs stop at start-up.

Faults are injected by ``tests/ddp_faults/sitecustomize.py`` (on the workers' PYTHONPATH, driven by
``RFCALC_TEST_FAULT``). Every process has a timeout: a hang fails the test, it never stalls the suite.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import albumentations  # noqa: F401
import matplotlib  # noqa: F401
import pytest
import torch
from rich.console import Console
from train_helpers import (
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    run,
    spec_text,
    write_pickle_folder,
)

from rfcalc.trainer.checkpoint_eval import evaluate_checkpoint

pytestmark = pytest.mark.slow  # real torchrun processes

FAULTS = Path(__file__).resolve().parent / "ddp_faults"
TIMEOUT = 240  # seconds for any one launch (they take a few seconds)
GN_SPEC = spec_text(norm="gn, norm_groups: 4", train="batch_size: 4\naug: fast\nfast_aug: {flip: true, translate: 2, "
                                                     "cutout: 4}\nema: 0.9\nworkers: 0")
BN_SPEC = spec_text(train="batch_size: 4\naug: albumentations\naugmentations: [{HorizontalFlip: {p: 1.0}}]\n"
                          "workers: 0")
FLAGS = ["--epochs", "2", "--test-limit", "37"]  # 37 test images: shards of 18 and 19


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun's workers run in sessions of their own: killing the launcher on a
    timeout would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def finish(procs: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Wait for every process; on a timeout kill them and all their descendants, then fail."""
    done = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for proc in procs:
            for pid in [*_descendants(proc.pid), proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        raise
    return done


def environment(env: dict[str, str], fault: str | None = None) -> dict[str, str]:
    full = {**os.environ, **env, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")]))}
    full.pop("RFCALC_TEST_FAULT", None)
    full.pop("COLUMNS", None)  # the ranks write to pipes, as to a log: one line per message
    if fault:
        full["RFCALC_TEST_FAULT"] = fault
    return full


def start(command: list[object], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def launch(command: list[object], env: dict[str, str], fault: str | None = None) -> subprocess.CompletedProcess:
    return finish([start(command, environment(env, fault))])[0]


def torchrun(*args: object, nproc: int = 2) -> list[object]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", nproc, "-m", "rfcalc", *args]


def rfcalc(*args: object) -> list[object]:
    return [sys.executable, "-m", "rfcalc", *args]


def weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {**ckpt["model"], **{f"live.{k}": v for k, v in ckpt["resume"]["live_model"].items()}}


def mismatched(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Tensors that are not allclose (float32 sums in another order differ by ~1e-7 after these steps)."""
    assert a.keys() == b.keys()
    return [k for k in a if not torch.allclose(a[k].double(), b[k].double(), rtol=1e-4, atol=1e-5)]


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


TIMING = ("images_per_s", "seconds", "elapsed", "train_elapsed")


def untimed(out: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows(out)]


@contextmanager
def rendezvous() -> Iterator[str]:
    """The c10d rendezvous store of two torchrun "nodes", on a port the OS chose, held by this test while they run
    (a port found free, closed and handed on could be taken in between); the nodes join it as clients
    (``--rdzv-conf is_host=false``)."""
    store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, multi_tenant=True)
    try:
        yield f"127.0.0.1:{store.port}"
    finally:
        del store


@dataclass
class Reference:
    """The uninterrupted 2-rank GroupNorm run, launched once with torchrun for the tests of this module."""

    root: Path
    data: Path
    spec: Path
    env: dict[str, str]
    out: Path
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def gn(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("ddp")
    data = write_pickle_folder(root / "data")
    spec = root / "gn.yaml"
    spec.write_text(GN_SPEC, encoding="utf-8")
    env = {"RFCALC_CACHE": str(root / "cache")}
    out = root / "two"
    proc = launch(torchrun("train", spec, "--data", data, *FLAGS, "--out", out), env)
    return Reference(root, data, spec, env, out, proc)


def test_two_ranks_end_where_one_process_at_twice_the_batch_ends_groupnorm(gn: Reference, tmp_path: Path) -> None:
    assert gn.proc.returncode == 0, gn.proc.stderr
    assert "2 ranks on 1 node, each cpu (1 thread), 80 train / 37 test images, 2 epochs x 10 batches of 8 " \
           "(2 ranks x 4)" in gn.proc.stderr
    one = run(["train", gn.spec, "--data", gn.data, *FLAGS, "--batch-size", "8", "--out", tmp_path / "one"])
    assert one.exit_code == 0, one.output
    assert mismatched(weights(gn.out / "last.pt"), weights(tmp_path / "one" / "last.pt")) == []
    ddp, single = rows(gn.out), rows(tmp_path / "one")
    assert [(r["epoch"], r["lr"], r["test_acc"], r["train_acc"]) for r in ddp] == \
           [(r["epoch"], r["lr"], r["test_acc"], r["train_acc"]) for r in single]
    for key in ("train_loss", "test_loss"):
        assert [r[key] for r in ddp] == pytest.approx([r[key] for r in single], rel=1e-5)
    # rank 0 alone prints and writes
    assert len(re.findall(r"^epoch [12]/2  lr ", gn.proc.stdout, re.M)) == 2
    assert gn.proc.stdout.count("wrote ") == 1 and gn.proc.stderr.count("training tiny-test") == 1
    assert sorted(p.name for p in gn.out.iterdir()) == ["best.pt", "confusion.png", "curves.png", "last.pt",
                                                        "metrics.jsonl", "misclassified.png", "summary.json"]
    summary = json.loads((gn.out / "summary.json").read_text())
    assert summary["distributed"] == {"world_size": 2, "nodes": 1, "ranks_per_node": 2, "backend": "gloo",
                                      "batch_per_rank": 4, "global_batch": 8, "sync_bn": False,
                                      "launcher": "torchrun", "restarts": 0}
    assert summary["steps"] == {"optimizer_steps": 20, "schedule_steps": 20, "schedule_total_steps": 20}


def test_sharded_evaluation_counts_each_test_image_once(gn: Reference) -> None:
    summary = json.loads((gn.out / "summary.json").read_text())
    assert summary["data"]["test_images"] == 37
    quiet = Console(quiet=True)
    alone = evaluate_checkpoint(gn.spec, gn.out / "last.pt", data=str(gn.data), tta=True, device="cpu",
                                batch_size=1000, test_limit=37, console=quiet, err=quiet)
    assert alone["accuracy"] == summary["final_test_acc"]  # k of 37, each image counted once
    assert {k: round(v, 6) for k, v in alone["per_class"].items()} == summary["per_class_test_acc"]
    assert alone["loss"] == pytest.approx(rows(gn.out)[-1]["test_loss"], rel=1e-6)


def test_two_ranks_with_sync_batchnorm_end_where_one_process_ends(tmp_path: Path) -> None:
    data = write_pickle_folder(tmp_path / "data")
    spec = tmp_path / "bn.yaml"
    spec.write_text(BN_SPEC, encoding="utf-8")
    env = {"RFCALC_CACHE": os.environ["RFCALC_CACHE"]}
    synced = launch(rfcalc("train", spec, "--data", data, *FLAGS, "--out", tmp_path / "sync", "--nproc-per-node", 2),
                    env)
    assert synced.returncode == 0, synced.stderr
    assert "(2 ranks x 4, 2 BatchNorm synchronised)" in synced.stderr
    one = run(["train", spec, "--data", data, *FLAGS, "--batch-size", "8", "--out", tmp_path / "one"])
    assert one.exit_code == 0, one.output
    reference = weights(tmp_path / "one" / "last.pt")
    assert mismatched(weights(tmp_path / "sync" / "last.pt"), reference) == []
    assert json.loads((tmp_path / "sync" / "summary.json").read_text())["distributed"]["launcher"] == "rfcalc"
    # the control: per-rank BatchNorm statistics do not give the single process's weights
    per_rank = launch(rfcalc("train", spec, "--data", data, *FLAGS, "--out", tmp_path / "local", "--no-sync-bn",
                             "--nproc-per-node", 2), env)
    assert per_rank.returncode == 0, per_rank.stderr
    assert "BatchNorm per rank" in per_rank.stderr
    assert "c1.bn.running_var" in mismatched(weights(tmp_path / "local" / "last.pt"), reference)


def test_sigterm_on_one_rank_stops_all_and_resume_equals_the_uninterrupted_run(gn: Reference,
                                                                                tmp_path: Path) -> None:
    out = tmp_path / "run"
    stopped = launch(torchrun("train", gn.spec, "--data", gn.data, *FLAGS, "--out", out), gn.env,
                     fault="1:2:SIGTERM")
    assert stopped.returncode != 0
    said = [line for line in stopped.stderr.splitlines() if "interrupted" in line]
    command = f"torchrun --nproc-per-node 2 -m rfcalc train {gn.spec} --resume {out / 'last.pt'}"
    # the ranks agree on the flags of a step during the next one: all stop after batch 4
    assert said == [f"interrupted in epoch 1 after batch 4/10; saved {out / 'last.pt'}; continue with: {command}"]
    assert "rank 1:" not in stopped.stderr
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["batch"], ckpt["resume"]["world_size"]) == (0, 4, 2)
    assert len(ckpt["resume"]["rng"]["ranks"]) == 2
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    resumed = launch(torchrun(*command.split()[5:]), gn.env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch 1, batch 5" in resumed.stderr
    assert identical(weights(out / "last.pt"), weights(gn.out / "last.pt"))
    assert untimed(out) == untimed(gn.out)


def test_a_killed_rank_ends_the_run_with_one_line_in_bounded_time(gn: Reference, tmp_path: Path) -> None:
    # a collective's timeout of an hour: a run that ended only by waiting for it would outlive `finish`'s TIMEOUT
    proc = launch(rfcalc("train", gn.spec, "--data", gn.data, *FLAGS, "--out", tmp_path / "run",
                         "--nproc-per-node", 2, "--dist-timeout", 3600), gn.env, fault="1:1:SIGKILL")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert re.fullmatch(r"rank 1 \(pid \d+\) was killed by SIGKILL; the other ranks were stopped", lines[-1])
    # rank 0 meets the closed connection in the gradient all-reduce or in the step's flags
    assert any(re.match(r"rank 0: stopped: lost contact with another rank during (training|a step) \(.+\); that "
                        r"rank died or stopped answering$", line) for line in lines), lines
    assert "Traceback" not in proc.stderr + proc.stdout


def test_max_restarts_resumes_from_the_last_checkpoint(gn: Reference, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = launch(rfcalc("train", gn.spec, "--data", gn.data, *FLAGS, "--out", out, "--nproc-per-node", 2,
                         "--max-restarts", 1), gn.env, fault="1:11:SIGKILL:0")  # epoch 2, batch 2; first attempt only
    assert proc.returncode == 0, proc.stderr
    assert f"notice: restart 1 (torchrun --max-restarts): resuming from {out / 'last.pt'}" in proc.stderr
    assert "resuming at epoch 2, batch 1" in proc.stderr
    assert identical(weights(out / "last.pt"), weights(gn.out / "last.pt"))
    assert untimed(out) == untimed(gn.out)
    assert json.loads((out / "summary.json").read_text())["distributed"]["restarts"] == 1


def _two_nodes(specs: tuple[Path, Path], gn: Reference, out: Path, *, max_restarts: int = 0,
               flags: list[str] | None = None, fault: str | None = None) -> list[subprocess.CompletedProcess]:
    with rendezvous() as endpoint:
        return finish([start([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
                              "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-conf",
                              "is_host=false", "--rdzv-id", out.name, "--max-restarts", max_restarts, "-m", "rfcalc",
                              "train", spec, "--data", gn.data, *FLAGS, *(flags or []), "--out", out],
                             environment(gn.env, fault))
                        for spec in specs])


def test_two_nodes_rendezvous_on_localhost(gn: Reference, tmp_path: Path) -> None:
    out = tmp_path / "nodes"
    nodes = _two_nodes((gn.spec, gn.spec), gn, out)
    assert [node.returncode for node in nodes] == [0, 0], [node.stderr for node in nodes]
    assert sorted(node.stdout.count("wrote ") for node in nodes) == [0, 1]  # one of them is rank 0
    assert identical(weights(out / "last.pt"), weights(gn.out / "last.pt"))
    distributed = json.loads((out / "summary.json").read_text())["distributed"]
    assert (distributed["nodes"], distributed["ranks_per_node"], distributed["world_size"]) == (2, 1, 2)


def test_two_nodes_with_max_restarts_resume_after_a_killed_rank(gn: Reference, tmp_path: Path) -> None:
    """Each node's torchrun agent counts restarts on its own: rank 1 is killed (its node restarts after a failure,
    restart 1) while rank 0 stays alive and silent, as in a connection to the dead peer (its node restarts it after
    the change of membership, which torchrun does not count: restart 0). The ranks of the new attempt still meet
    under one key and agree that it is a restart, and the job resumes from last.pt to the uninterrupted run's
    weights (issue 22: they waited under two keys, and the job hung)."""
    out = tmp_path / "nodes"
    nodes = _two_nodes((gn.spec, gn.spec), gn, out, max_restarts=1, flags=["--dist-timeout", "60"],
                       fault="1:11:SIGKILL:0,0:11:hang:0")  # epoch 2, batch 2 (the resumed attempt has 10 steps)
    assert [node.returncode for node in nodes] == [0, 0], [node.stderr[-3000:] for node in nodes]
    said = "".join(node.stderr for node in nodes)
    assert f"resuming from {out / 'last.pt'}" in said and "resuming at epoch 2, batch 1" in said, said
    assert identical(weights(out / "last.pt"), weights(gn.out / "last.pt"))
    assert untimed(out) == untimed(gn.out)


def test_ranks_with_different_specs_stop_at_start_up(gn: Reference, tmp_path: Path) -> None:
    other = tmp_path / "wider.yaml"
    other.write_text(GN_SPEC.replace("out: 16", "out: 24"), encoding="utf-8")
    nodes = _two_nodes((gn.spec, other), gn, tmp_path / "mixed")
    assert all(node.returncode != 0 for node in nodes)
    said = [line for node in nodes for line in node.stderr.splitlines() if "loaded different" in line]
    assert len(said) == 1
    assert re.fullmatch(r"the ranks loaded different specs: rank 0 \(.+\) has .+\.yaml \(digest \w{12}\), rank 1 "
                        r"\(.+\) has .+\.yaml \(digest \w{12}\); give every node the same spec file", said[0])
    assert not (tmp_path / "mixed").exists()


def test_the_scaling_bench_reads_real_runs(gn: Reference, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import ddp_scaling
    finally:
        sys.path.pop(0)
    one = ddp_scaling.train_command(gn.spec, gn.data, tmp_path, ranks=1, device="cpu", global_batch=8, epochs=2,
                                    images=80, extra=[])
    two = ddp_scaling.train_command(gn.spec, gn.data, tmp_path, ranks=2, device="cpu", global_batch=8, epochs=2,
                                    images=80, extra=[])
    assert one[one.index("--batch-size") + 1] == "8" and "--nproc-per-node" not in one
    assert two[two.index("--batch-size") + 1] == "4" and two[-2:] == ["--nproc-per-node", "2"]
    measured = ddp_scaling.measure(gn.out)
    assert measured["ranks"] == 2 and measured["images_per_s"] == rows(gn.out)[-1]["images_per_s"]
    lines = ddp_scaling.table({1: {**measured, "images_per_s": measured["images_per_s"] / 2}, 2: measured})
    assert lines[2].startswith("| 1 |") and "| 2.00x | 100% |" in lines[3]
