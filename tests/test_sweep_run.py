"""Real sweeps on tiny budgets: real `rfcalc sweep` and `rfcalc train` processes, the real CIFAR-10 JPEGs of
../shared (1,000 training and 200 test images, linked), SQLite and a real PostgreSQL server.

- rejected candidates are never trained; a pruned trial stops early; a candidate seen before is not trained
  again; the best spec passes `rfcalc check` and rebuilds with the reported parameter count;
- rejection is torch-free (torch made unimportable) and takes milliseconds; a changed sweep file is refused;
- two worker processes on one SQLite file finish exactly N trials, none twice, none lost;
- two `rfcalc sweep` processes share one study on PostgreSQL (started here, as an unprivileged user);
- Ctrl-C leaves the study consistent and the next run resumes the interrupted trial from its last.pt.

Every child trains with one thread (the cores are shared).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import cv2  # noqa: F401
import optuna
import pytest
import torch  # noqa: F401
from conftest import CIFAR_PLACES

pytestmark = pytest.mark.slow  # real `rfcalc sweep` / `rfcalc train` processes and a PostgreSQL server

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
version: 1
name: tiny-run
input: {channels: 3, size: 32}
classes: 10
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
layers:
  - {op: conv, name: c1, out: 8, stride: 2}
  - {op: conv, name: c2, out: 16, dilation: 2, padding: 2, stride: 2}
  - {op: conv, name: c3, out: 16}
  - {op: gap, name: gap}
  - {op: linear, name: fc, out: 10}
constraints:
  params: {lt: 6k}
  require: [dilated_conv]
train: {optimizer: adamw, lr: 0.01, weight_decay: 0.01, label_smoothing: 0, aug: fast,
        fast_aug: {flip: true, translate: 0}, seed: 0}
"""

# c3 of 32 channels goes over 6k parameters; dilation 1 leaves no dilated conv; lr 1e-7 learns nothing.
SPACE = """\
space:
  width: {path: layers.c3.out, choices: [16, 24, 32]}
  dilation: {path: [layers.c2.dilation, layers.c2.padding], choices: [1, 2]}
  lr: {path: train.lr, choices: [0.01, 0.0000001]}
"""
GOOD, OVER, NOT_DILATED, DEAD = ("{width: 16, dilation: 2, lr: 0.01}", "{width: 32, dilation: 2, lr: 0.01}",
                                 "{width: 24, dilation: 1, lr: 0.01}", "{width: 24, dilation: 2, lr: 0.0000001}")
GOOD_24 = "{width: 24, dilation: 2, lr: 0.01}"


def sweep_text(trials: int, epochs: int, enqueue: list[str], extra: str = "") -> str:
    queued = "enqueue:\n" + "".join(f"  - {item}\n" for item in enqueue) if enqueue else ""
    return (f"version: 1\nspec: spec.yaml\n{SPACE}budget: {{epochs: {epochs}, batch_size: 32}}\ntrials: {trials}\n"
            f"seed: 0\n{extra}{queued}")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 training and 20 test images of every class of the real data set, linked (no copy)."""
    source = next((p for p in CIFAR_PLACES if p.is_dir()), None)
    if source is None:
        pytest.fail(f"the real data set is not here ({' or '.join(map(str, CIFAR_PLACES))})")
    root = tmp_path_factory.mktemp("cifar10-1200")
    for split, per_class in (("train", 100), ("test", 20)):
        for class_dir in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            files = sorted(os.listdir(class_dir))
            (root / split / class_dir.name).mkdir(parents=True)
            for name in files[::len(files) // per_class][:per_class]:
                (root / split / class_dir.name / name).symlink_to(class_dir / name)
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One data cache for the module; one thread per trial; 80 columns."""
    out = dict(os.environ)
    out.update(RFCALC_CACHE=str(tmp_path_factory.mktemp("cache")), OMP_NUM_THREADS="1", COLUMNS="80",
               PYTHONUNBUFFERED="1")
    return out


def folder(tmp: Path, name: str, sweep: str) -> Path:
    (tmp / "spec.yaml").write_text(SPEC, encoding="utf-8")
    (tmp / name).write_text(sweep, encoding="utf-8")
    return tmp / name


def sweep(args: list[Any], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rfcalc", "sweep", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def start(args: list[Any], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "rfcalc", "sweep", *map(str, args)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def show(sweep_file: Path, out: Path, *storage: str) -> dict[str, Any]:
    """`rfcalc sweep --show --format json`, in this process (no trial runs)."""
    from typer.testing import CliRunner

    from rfcalc.cli.app import app

    done = CliRunner().invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--show", "--format", "json",
                                    *storage])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def trials(url: str, name: str) -> list[Any]:

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return sorted(optuna.load_study(study_name=name, storage=url).get_trials(), key=lambda t: t.number)


def check(path: Path) -> Any:
    """`rfcalc check`, in this process."""
    from typer.testing import CliRunner

    from rfcalc.cli.app import app

    return CliRunner().invoke(app, ["check", str(path)])


# ---------------------------------------------------------------- one real sweep


def test_rejected_never_train_pruned_stop_early_and_the_best_spec_passes_check(tmp_path: Path, data: Path,
                                                                             env: dict[str, str]) -> None:
    import rfcalc

    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(5, 4, [GOOD, OVER, NOT_DILATED, DEAD, GOOD],
                                                           "pruner: median\nprune_after: 1\n"))
    out = tmp_path / "out"
    done = sweep([sweep_file, "--data", data, "--out", out], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    results = show(sweep_file, out)
    rows = {r["trial"]: r for r in results["trials"]}
    assert {n: r["state"] for n, r in rows.items()} == {0: "complete", 1: "rejected", 2: "rejected", 3: "pruned",
                                                        4: "complete"}
    assert results["counts"]["complete"] == 2 and results["best"] == 0

    # rejected: the trial spec and nothing else; `rfcalc check` on it fails with the same reason
    for n, rule in ((1, "params 6,418 < 6,000 ✗ (remove at least 419)"),
                    (2, "require dilated_conv ✗ (no layer has it)")):
        trial_dir = out / "trials" / f"{n:04d}"
        assert sorted(p.name for p in trial_dir.iterdir()) == ["spec.yaml"]
        checked = check(trial_dir / "spec.yaml")
        assert checked.exit_code == 1 and f"  {rule}\n" in checked.stdout
        assert rows[n]["note"] == rule and rows[n]["accuracy"] is None
        assert f"trial {n}: rejected in " in done.stdout
    attrs = {t.number: t.user_attrs for t in trials(f"sqlite:///{out / 'study.db'}", "sweep")}
    assert attrs[1]["check_ms"] < 1000 and attrs[2]["check_ms"] < 1000  # milliseconds, with a wide margin

    # pruned: stopped after its first epoch was seen, long before its fourth (SIGTERM: the trainer stops after its
    # batch, so a summary, if it got that far, says interrupted)
    pruned = out / "trials" / "0003"
    epochs = len((pruned / "metrics.jsonl").read_text().splitlines())
    assert 1 <= epochs < 4
    if (pruned / "summary.json").exists():
        summary = json.loads((pruned / "summary.json").read_text())
        assert (summary["status"], summary["epochs_done"]) == ("interrupted", epochs)
    assert rows[3]["note"].startswith("stopped after epoch 1/4 by the median pruner")

    # a candidate seen before is not trained again
    assert sorted(p.name for p in (out / "trials" / "0004").iterdir()) == ["spec.yaml"]
    assert rows[4]["accuracy"] == rows[0]["accuracy"] and rows[4]["note"].startswith("same candidate as trial 0")

    # the complete trial: both epochs, and the accuracy its summary reports
    summary = json.loads((out / "trials" / "0000" / "summary.json").read_text())
    assert summary["epochs_done"] == 4 and summary["best_test_acc"] == rows[0]["accuracy"] > 0.12

    # the best spec: standalone, passes check, rebuilds with the reported parameter count
    best = out / "best.yaml"
    checked = check(best)
    assert checked.exit_code == 0, checked.stdout
    spec = rfcalc.load_spec(best)
    model = rfcalc.build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.report.params == rows[0]["params"]
    assert spec.data["layers"][2]["out"] == 16 and spec.data["train"]["lr"] == 0.01
    # its train: section is the whole recipe trial 0 trained with (its summary's options): `rfcalc train best.yaml`
    # with no flag trains it the same way (issue 25 #10: not at the trainer's default batch size)
    from rfcalc.trainer.config import TrainConfig

    used = summary["options"]["config"]
    own = TrainConfig.model_validate(spec.data["train"]).model_dump(mode="json")
    assert {k: v for k, v in own.items() if k != "data"} == {k: v for k, v in used.items() if k != "data"}
    assert own["batch_size"] == 32 and own["epochs"] == 4
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rejection_is_torch_free_and_a_changed_sweep_is_refused(tmp_path: Path, data: Path,
                                                                env: dict[str, str]) -> None:
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch imported by the sweep itself')\n")
    poisoned = {**env, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}
    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(3, 1, []).replace(
        "choices: [16, 24, 32]", "choices: [32]").replace("choices: [1, 2]", "choices: [1]"))
    done = sweep([sweep_file, "--data", data, "--out", tmp_path / "out"], poisoned)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == ("no trial completed: every candidate so far broke the rules; "
                                                    "widen the space or relax the rules")
    assert done.stdout.count(": rejected in ") == 3 and "torch imported" not in done.stdout + done.stderr

    sweep_file.write_text(sweep_file.read_text().replace("choices: [32]", "choices: [24, 32]"))
    again = sweep([sweep_file, "--data", data, "--out", tmp_path / "out"], env)
    assert again.returncode == 2
    assert again.stderr.strip().startswith("study 'sweep' in sqlite:///") and "was made from another sweep" in \
        again.stderr


def test_trials_train_through_torchrun_on_two_ranks(tmp_path: Path, data: Path, env: dict[str, str]) -> None:
    """--train-command starts each trial under torchrun: the trial trains on 2 ranks (gloo here) and the sweep
    follows its metrics like any other trial's."""
    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(1, 1, [GOOD]))
    launcher = f"{sys.executable} -m torch.distributed.run --standalone --nproc-per-node 2 -m rfcalc train"
    done = sweep([sweep_file, "--data", data, "--out", tmp_path / "out", "--train-command", launcher], env)
    assert done.returncode == 0, done.stdout + done.stderr
    log = (tmp_path / "out" / "trials" / "0000" / "train.log").read_text()
    assert "2 ranks on 1 node" in log
    rows = show(sweep_file, tmp_path / "out")["trials"]
    assert [(r["state"], r["epochs"]) for r in rows] == [("complete", 1)]
    summary = json.loads((tmp_path / "out" / "trials" / "0000" / "summary.json").read_text())
    assert summary["distributed"]["world_size"] == 2 and summary["best_test_acc"] == rows[0]["accuracy"]


# ---------------------------------------------------------------- workers sharing a study


def _finished_lines(text: str) -> dict[int, list[str]]:
    """trial number -> the lines that end it (complete / rejected / pruned / failed), over every worker."""
    ends = (": complete:", ": rejected in ", ": pruned:", ": failed:", ": same candidate as trial")
    found: dict[int, list[str]] = {}
    for line in text.splitlines():
        body = line.split(": ", 1)[1] if line.startswith("w") and ": trial " in line else line
        if body.startswith("trial ") and any(end in body for end in ends):
            found.setdefault(int(body.split()[1].rstrip(":")), []).append(line)
    return found


def test_two_worker_processes_on_sqlite_finish_n_trials_none_twice_none_lost(tmp_path: Path, data: Path,
                                                                            env: dict[str, str]) -> None:
    """Three of the four (width, dilation) pairs break the rules and the fourth is trained once, then reused:
    nearly every trial takes milliseconds, so the two workers race on the storage for every one of them. Two
    objectives (NSGA-II): accuracy and parameters."""
    text = sweep_text(12, 1, []).replace("[16, 24, 32]", "[16, 32]").replace("[0.01, 0.0000001]", "[0.01]")
    sweep_file = folder(tmp_path, "sweep.yaml", text.replace("seed: 0\n", "seed: 0\nobjective: [accuracy, params]\n"
                                                                            "population: 4\n"))
    out = tmp_path / "out"
    done = sweep([sweep_file, "--data", data, "--out", out, "--workers", "2"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    study = trials(f"sqlite:///{out / 'study.db'}", "sweep")
    kept = [t for t in study if t.user_attrs.get("outcome") != "surplus"]
    assert [t.number for t in kept] == list(range(12))  # N trials, numbered without a gap
    assert {t.state.name for t in kept} <= {"COMPLETE", "PRUNED"}
    assert all(t.state.name == "FAIL" for t in study if t not in kept)  # a worker that asked as the budget filled
    ended = _finished_lines(done.stdout)
    assert sorted(ended) == list(range(12)) and all(len(lines) == 1 for lines in ended.values()), ended
    assert {line[:4] for lines in ended.values() for line in lines} == {"w0: ", "w1: "}
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"{n:04d}" for n in range(12)]
    trained = [t.number for t in kept if (out / "trials" / f"{t.number:04d}" / "metrics.jsonl").is_file()]
    assert 1 <= len(trained) <= 2  # (16, 2) is trained once, or by both workers at the same instant
    complete = [t for t in kept if t.state.name == "COMPLETE"]
    assert complete and all(t.params == {"width": 16, "dilation": 2, "lr": 0.01} for t in complete)
    assert all(t.values == [t.user_attrs["accuracy"], 3922.0] for t in complete)  # accuracy, params
    assert sorted(p.name for p in (out / "pareto").iterdir()) == [f"trial_{t.number:04d}.yaml" for t in complete]
    assert check(out / "best.yaml").exit_code == 0


def _a_port() -> int:
    """A port that was free a moment ago. PostgreSQL cannot take port 0 and say which it got, so the fixture tries
    again with another when the server could not bind it (another process took it in between)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Any:
    """A real PostgreSQL server on localhost in a temporary folder, run as an unprivileged user (it refuses root)."""
    initdbs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    found = shutil.which("initdb")
    bindir = initdbs[-1].parent if initdbs else Path(found).parent if found else None
    if bindir is None:
        pytest.fail("PostgreSQL's initdb is not installed (Debian: apt-get install -y postgresql; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="rfcalc-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no 'postgres' user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    initdb = [str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
    done = subprocess.run(as_user + initdb, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: initdb exited {done.returncode}: {done.stderr or done.stdout}")
    for _ in range(5):
        port = _a_port()
        (root / "server.log").unlink(missing_ok=True)
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]
        done = subprocess.run(as_user + pg_ctl, capture_output=True, text=True)
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        if done.returncode == 0 or "could not bind" not in log:
            break
    if done.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: pg_ctl exited {done.returncode}: {done.stderr or done.stdout} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"  # as people write it; the sweep picks psycopg 3
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_sweep_processes_share_one_study_on_postgresql(tmp_path: Path, data: Path, env: dict[str, str],
                                                           postgres: str) -> None:
    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(4, 3, [GOOD, GOOD_24, OVER, NOT_DILATED]))
    args = [sweep_file, "--data", data, "--storage", postgres]
    first = start(args + ["--out", tmp_path / "a"], env, tmp_path / "a.log")
    deadline = time.monotonic() + 120
    while "sweep sweep: " not in (tmp_path / "a.log").read_text() and first.poll() is None:
        assert time.monotonic() < deadline, (tmp_path / "a.log").read_text()
        time.sleep(0.2)
    second = start(args + ["--out", tmp_path / "b"], env, tmp_path / "b.log")
    assert first.wait(600) == 0 and second.wait(600) == 0, (tmp_path / "a.log").read_text() + \
        (tmp_path / "b.log").read_text()
    a, b = (_finished_lines((tmp_path / f"{x}.log").read_text()) for x in "ab")
    assert a and b and not set(a) & set(b), (a, b)  # both worked; no trial ran twice
    assert sorted(set(a) | set(b)) == [0, 1, 2, 3]
    study = trials(postgres.replace("postgresql://", "postgresql+psycopg://"), "sweep")
    assert [t.number for t in study] == [0, 1, 2, 3]
    assert sorted(t.state.name for t in study) == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    for n in range(4):
        here = tmp_path / ("a" if n in a else "b") / "trials" / f"{n:04d}"
        assert (here / "spec.yaml").is_file() and study[n].user_attrs["folder"] == str(here)
    results = show(sweep_file, tmp_path / "b", "--storage", postgres)  # any machine sees every trial
    assert [r["trial"] for r in results["trials"]] == [0, 1, 2, 3] and results["best"] in (0, 1)
    assert check(tmp_path / "b" / "best.yaml").exit_code == 0


# ---------------------------------------------------------------- Ctrl-C and resume


def test_ctrl_c_keeps_the_study_consistent_and_the_next_run_resumes_the_trial(tmp_path: Path, data: Path,
                                                                           env: dict[str, str]) -> None:
    # 12 epochs of 63 batches: long enough that Ctrl-C lands mid-run on an idle machine too
    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(1, 12, [GOOD]).replace("batch_size: 32", "batch_size: 16"))
    out = tmp_path / "out"
    args = [sweep_file, "--data", data, "--out", out]
    proc = start(args, env, tmp_path / "first.log")
    metrics = out / "trials" / "0000" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(300) == 130
    log = (tmp_path / "first.log").read_text()
    assert "trial 0: interrupted (Ctrl-C) after " in log and "Traceback" not in log
    assert log.strip().splitlines()[-1] == "interrupted; the study is saved: run the same command to continue"
    kept = len(metrics.read_text().splitlines())
    assert 1 <= kept < 12 and (out / "trials" / "0000" / "last.pt").is_file()
    study = trials(f"sqlite:///{out / 'study.db'}", "sweep")
    assert [(t.number, t.state.name, t.user_attrs.get("outcome")) for t in study] == [
        (0, "FAIL", "interrupted"), (1, "WAITING", None)]

    done = sweep(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trial 1: training " in done.stdout and "resuming trial 0 from " in done.stdout
    resumed = out / "trials" / "0001"
    assert f"--resume {out / 'trials' / '0000' / 'last.pt'}" in (resumed / "train.log").read_text()
    first_rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[:kept] == first_rows  # the same epochs, continued
    study = trials(f"sqlite:///{out / 'study.db'}", "sweep")
    assert [(t.number, t.state.name) for t in study] == [(0, "FAIL"), (1, "COMPLETE")]
    assert study[1].user_attrs["resumed_from"] == 0 and study[1].params == study[0].params
    results = show(sweep_file, out)
    assert results["counts"]["complete"] == 1 and results["counts"]["interrupted"] == 1 and results["best"] == 1


def test_readme_sweep_file_is_valid() -> None:
    """The sweep file shown in docs/sweep.md loads (its paths lead somewhere in the bundled spec)."""
    from rfcalc.sweep.load import load_sweep

    sweep = load_sweep(ROOT / "examples" / "sweep_quick.yaml")
    assert sweep.base_name == "c1c2c3c4-cifar10" and sweep.trials >= 8
    assert textwrap.dedent(sweep.base["constraints"]["params"]["lt"]) == "200k"


def test_ctrl_c_after_the_last_epoch_completes_the_trial_and_nothing_is_trained_again(tmp_path: Path, data: Path,
                                                                                     env: dict[str, str]) -> None:
    """issue 25 #11: Ctrl-C once the last epoch is in metrics.jsonl (the trainer writing its figures, or done): the
    trial is complete, not queued again to train from epoch 1. A study from before the fix (an attempt that had all
    its epochs, interrupted and queued again) takes that attempt's result instead of training it again."""
    import optuna

    from rfcalc.sweep.load import load_sweep
    from rfcalc.sweep.study import open_study
    from rfcalc.sweep.worker import _queue_again

    sweep_file = folder(tmp_path, "sweep.yaml", sweep_text(1, 1, [GOOD]))
    out = tmp_path / "out"
    args = [sweep_file, "--data", data, "--out", out]
    proc = start(args, env, tmp_path / "first.log")
    metrics = out / "trials" / "0000" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(300)
    log = (tmp_path / "first.log").read_text()
    assert code in (0, 130) and "Traceback" not in log, log  # 0: the sweep had ended before the signal
    study = trials(f"sqlite:///{out / 'study.db'}", "sweep")
    assert [(t.number, t.state.name) for t in study] == [(0, "COMPLETE")], log
    best = max(json.loads(line)["test_acc"] for line in metrics.read_text().splitlines())
    assert study[0].value == best
    again = sweep(args, env)
    assert again.returncode == 0 and "training" not in again.stdout, again.stdout + again.stderr
    assert [t.state.name for t in trials(f"sqlite:///{out / 'study.db'}", "sweep")] == ["COMPLETE"]

    # the state an earlier version left: the attempt interrupted after its last epoch and queued again
    old = tmp_path / "old"
    url = f"sqlite:///{old / 'study.db'}"
    (old / "trials" / "0000").mkdir(parents=True)
    shutil.copy(metrics, old / "trials" / "0000" / "metrics.jsonl")
    (old / "trials" / "0000" / "last.pt").write_bytes(b"")  # present, as then; the retry must not need it
    old_file = tmp_path / "old.yaml"
    old_file.write_text(sweep_text(1, 1, []), encoding="utf-8")
    made = open_study(load_sweep(old_file), url)
    params = {"width": 16, "dilation": 2, "lr": 0.01}
    distributions = {k: optuna.distributions.CategoricalDistribution(c) for k, c in (
        ("width", [16, 24, 32]), ("dilation", [1, 2]), ("lr", [0.01, 0.0000001]))}
    made.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params=params,
                                             distributions=distributions,
                                             user_attrs={"outcome": "interrupted", "folder": str(old / "trials/0000")}))
    _queue_again(made, 0)
    resumed = sweep([old_file, "--data", data, "--out", old], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "trial 1: complete: best test accuracy" in resumed.stdout and "training" not in resumed.stdout
    assert not (old / "trials" / "0001" / "train.log").exists()
    study = trials(url, "old")
    assert [t.state.name for t in study] == ["FAIL", "COMPLETE"]
    assert study[1].value == best and study[1].user_attrs["resumed_from"] == 0


# ---------------------------------------------------------------- designs, not fast learners

ARCH_SPEC = """\
version: 1
name: tiny-arch
input: {channels: 3, size: 32}
classes: 10
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
blocks:
  plain:
    params: {out: null}
    layers: [{op: conv, name: a, out: $out}]
  res:
    params: {out: null}
    layers:
      - {op: residual, name: r, act: relu, body: [{op: conv, name: a, out: $out, act: none}]}
layers:
  - {op: conv, name: c1, out: 8, stride: 2}
  - {op: conv, name: c2, out: 16, dilation: 2, padding: 2, stride: 2}
  - {use: res, name: s3, out: 16}
  - {op: gap, name: gap}
  - {op: linear, name: fc, out: 10}
constraints:
  params: {lt: 6k}
  require: [dilated_conv]
train: {optimizer: adamw, lr: 0.01, weight_decay: 0.01, label_smoothing: 0, aug: fast,
        fast_aug: {flip: true, translate: 0}, seed: 0}
"""


@pytest.mark.slow
def test_an_architecture_sweep_on_a_held_out_split_with_successive_halving(tmp_path: Path, data: Path,
                                                                         env: dict[str, str]) -> None:
    """issue 24 #3: the block kind (residual or plain) and the depth of a stage are dimensions; trials train on
    the training split minus 200 held-out images and are measured on those 200 (never on the test split); the
    successive-halving pruner stops the candidate that learns nothing after its first epoch; a stage too deep
    for the rules is rejected without training."""
    import rfcalc

    (tmp_path / "spec.yaml").write_text(ARCH_SPEC, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(
        "version: 1\nspec: spec.yaml\nspace:\n  kind: {path: layers.s3.use, choices: [res, plain]}\n"
        "  depth: {path: layers.s3.repeat, int: [1, 2]}\n  lr: {path: train.lr, choices: [0.01, 0.0000001]}\n"
        "budget: {epochs: 2, batch_size: 32, holdout: 200}\ntrials: 4\npruner: successive_halving\n"
        "min_epochs: 1\nreduction_factor: 2\nseed: 0\nenqueue:\n"
        "  - {kind: res, depth: 1, lr: 0.01}\n  - {kind: res, depth: 1, lr: 0.0000001}\n"
        "  - {kind: plain, depth: 2, lr: 0.01}\n  - {kind: plain, depth: 1, lr: 0.01}\n", encoding="utf-8")
    out = tmp_path / "out"
    done = sweep([tmp_path / "sweep.yaml", "--data", data, "--out", out], env)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {r["trial"]: r for r in show(tmp_path / "sweep.yaml", out)["trials"]}
    # successive halving with reduction factor 2: a trial goes on past epoch 1 only when its accuracy then is at
    # least the best of the (half of the) trials that reached epoch 1 before it
    first = {t.number: t.intermediate_values.get(1) for t in trials(f"sqlite:///{out / 'study.db'}", "sweep")}
    assert first[1] < first[0]
    promoted = first[3] >= max(first[0], first[1])
    assert [rows[n]["state"] for n in range(4)] == ["complete", "pruned", "rejected",
                                                    "complete" if promoted else "pruned"]
    assert rows[1]["note"].startswith("stopped after epoch 1/2 by the successive_halving pruner")
    assert rows[2]["note"].startswith("params 6,")

    # the held-out split: 1,000 training images = 800 to train on + 200 to measure on; the test split unused
    for n in ((0, 3) if promoted else (0,)):
        summary = json.loads((out / "trials" / f"{n:04d}" / "summary.json").read_text())
        assert (summary["data"]["train_images"], summary["data"]["test_images"]) == (800, 200)
        assert summary["data"]["source"] == str(out / "holdout")
        assert summary["best_test_acc"] == rows[n]["accuracy"]
    assert "holding out 200 of the 1,000 training images" in done.stdout
    assert "trial 0: epoch 1/2: held-out accuracy " in done.stdout and " test accuracy" not in done.stdout

    # the architecture changed as the dimension said: a residual stage in trial 0, a plain one in trial 3
    names = [{r.name for r in rfcalc.load_spec(out / "trials" / f"{n:04d}" / "spec.yaml").report.rows}
             for n in (0, 3)]
    assert "s3.r" in names[0] and "s3.a" not in names[0] and "s3.a" in names[1] and "s3.r" not in names[1]
    best = (out / "best.yaml").read_text()
    assert "measured on 200 held-out training images" in best.replace("\n# ", " ")
