"""The study side without training: what counts towards the budget, surplus trials, queued retries, a study
made from another sweep, the pruners. A real SQLite file; no child process."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from test_sweep_file import BASE, GOOD

from rfcalc.errors import RfcalcError
from rfcalc.sweep.load import load_sweep
from rfcalc.sweep.outcome import Outcome, counts, outcome_of
from rfcalc.sweep.study import counted, is_surplus, make_pruner, open_study
from rfcalc.sweep.worker import _queue_again, more_to_do

TrialState = optuna.trial.TrialState
DIST = {"width": optuna.distributions.IntDistribution(8, 48, step=8)}


def _sweep(tmp_path: Path, text: str = GOOD):
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(text, encoding="utf-8")
    return load_sweep(tmp_path / "sweep.yaml")


def _add(study, state, outcome: str | None = None, width: int = 8, **attrs) -> None:
    user = {**attrs, **({"outcome": outcome} if outcome else {})}
    values = [0.5] if state == TrialState.COMPLETE else None
    study.add_trial(optuna.trial.create_trial(state=state, params={"width": width}, distributions=DIST, values=values,
                                              user_attrs=user))


def test_outcomes_and_what_counts_towards_the_budget(tmp_path: Path) -> None:
    study = open_study(_sweep(tmp_path, GOOD.replace("trials: 6", "trials: 5")), f"sqlite:///{tmp_path / 's.db'}")
    cases = [(TrialState.COMPLETE, "complete", Outcome.complete, True),
             (TrialState.PRUNED, "pruned", Outcome.pruned, True),
             (TrialState.PRUNED, "rejected", Outcome.rejected, True),
             (TrialState.FAIL, "failed", Outcome.failed, True),
             (TrialState.FAIL, "interrupted", Outcome.interrupted, False),
             (TrialState.FAIL, "surplus", Outcome.surplus, False),
             (TrialState.FAIL, None, Outcome.lost, False),
             (TrialState.WAITING, None, Outcome.waiting, True)]
    for state, said, _, _ in cases:
        _add(study, state, said)
    trials = study.get_trials()
    assert [outcome_of(t) for t in trials] == [c[2] for c in cases]
    assert [counts(t) for t in trials] == [c[3] for c in cases]
    assert counted(study) == 5
    # the budget is 5 and five count, but a queued candidate is still run (it replaces an interrupted one)
    assert more_to_do(study, 5)
    assert not is_surplus(study, 7, 5)  # below the waiting trial 7: four count
    assert is_surplus(study, 8, 5)      # below a trial 8: five count already


def test_an_interrupted_trial_is_queued_again_with_its_values_once(tmp_path: Path) -> None:
    study = open_study(_sweep(tmp_path), f"sqlite:///{tmp_path / 's.db'}")
    _add(study, TrialState.FAIL, "interrupted", width=24)
    _add(study, TrialState.COMPLETE, "complete", width=32)
    _queue_again(study, 0)
    _queue_again(study, 1)   # complete: nothing to queue
    _queue_again(study, None)
    trials = study.get_trials()
    assert [(t.number, t.state.name, t.params) for t in trials] == [
        (0, "FAIL", {"width": 24}), (1, "COMPLETE", {"width": 32}), (2, "WAITING", {"width": 24})]
    assert trials[2].system_attrs["retry_history"] == [0] and trials[2].user_attrs == {}
    with pytest.warns(UserWarning, match="Heartbeat"):  # the sweep asks through Study.optimize; a test asks here
        retry = study.ask()  # the queued candidate is the next one asked for
    assert retry.number == 2 and retry.suggest_int("width", 8, 48, step=8) == 24


def test_reopening_continues_the_study_and_queues_enqueue_once(tmp_path: Path) -> None:
    text = GOOD + "enqueue:\n  - {width: 16, dilation: 2}\n"
    sweep = _sweep(tmp_path, text)
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_study(sweep, url)
    study = open_study(_sweep(tmp_path, text.replace("trials: 6", "trials: 9")), url)  # a bigger budget: the same
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == {} and study.directions[0].name == "MAXIMIZE"
    with pytest.raises(RfcalcError, match="was made from another sweep"):
        open_study(_sweep(tmp_path, text.replace("int: [8, 48]", "int: [8, 64]")), url)


def test_pruners(tmp_path: Path) -> None:
    assert isinstance(make_pruner(_sweep(tmp_path)), optuna.pruners.MedianPruner)
    hyperband = make_pruner(_sweep(tmp_path, GOOD + "pruner: hyperband\n"))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner) and hyperband._max_resource == 2
    halving = make_pruner(_sweep(tmp_path, GOOD + "pruner: successive_halving\nmin_epochs: 2\nreduction_factor: 4\n"))
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner)
    assert (halving._min_resource, halving._reduction_factor) == (2, 4)
    hyperband = make_pruner(_sweep(tmp_path, GOOD.replace("epochs: 2", "epochs: 9") + "pruner: hyperband\n"
                                                                                    "reduction_factor: 2\n"))
    assert (hyperband._min_resource, hyperband._max_resource, hyperband._reduction_factor) == (1, 9, 2)
    two = _sweep(tmp_path, GOOD + "objective: [accuracy, macs]\n")
    assert two.pruner == "none" and isinstance(make_pruner(two), optuna.pruners.NopPruner)


@pytest.mark.parametrize(("workers", "device", "gpus", "per_device", "expected"), [
    (4, None, 1, None, ["cuda:0"] * 4),                      # one GPU: four small trials on it at once
    (4, "auto", 2, None, ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]),
    (4, "cuda", 4, None, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
    (3, None, 2, 2, ["cuda:0", "cuda:0", "cuda:1"]),
    (2, None, 0, None, [None, None]),                        # CPU: as before (threads split, no device)
    (2, "cpu", 0, 2, ["cpu", "cpu"]),
    (2, "cuda:1", 2, None, ["cuda:1", "cuda:1"]),            # an explicit device is kept
    (1, None, 1, None, [None]),                              # one worker: the trainer's own choice
])
def test_each_worker_gets_a_device(workers, device, gpus, per_device, expected) -> None:
    from rfcalc.sweep.run import worker_devices

    assert worker_devices(workers, device, gpus, per_device) == expected


def test_more_workers_than_the_gpus_hold_is_one_line() -> None:
    from rfcalc.sweep.run import worker_devices

    with pytest.raises(RfcalcError, match=r"^--workers 5 with --workers-per-device 2 needs 3 GPUs; this machine has "
                                          r"2 \(give --workers-per-device 3 or fewer --workers\)$"):
        worker_devices(5, None, 2, 2)


def test_the_holdout_split_is_fixed_disjoint_and_read_back_by_the_trainer(tmp_path: Path, monkeypatch) -> None:
    """The held-out folder reads back (the trainer's own reader) as the training images minus N, and those N as
    the test split, each image once; it is written once for the same data and size."""
    import numpy as np

    from rfcalc.sweep.holdout import write_holdout
    from rfcalc.trainer.data import ImageSet, load_data

    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    images = ImageSet("toy", ["a", "b", "c"], x, y, x[:5], y[:5], (0.5,) * 3, (0.2,) * 3, "/data/toy")
    folder = write_holdout(images, 12, tmp_path / "holdout", lambda s: None)
    again = load_data(str(folder))
    assert (len(again.train_y), len(again.test_y), again.classes) == (48, 12, ["a", "b", "c"])
    rows = {x[i].tobytes(): int(y[i]) for i in range(60)}
    seen = [(im.tobytes(), int(label)) for part in ((again.train_x, again.train_y), (again.test_x, again.test_y))
            for im, label in zip(*part)]
    assert sorted(seen) == sorted(rows.items())  # a partition of the training split, labels kept
    stamp = (folder / "test").stat().st_mtime_ns
    assert write_holdout(images, 12, tmp_path / "holdout", lambda s: None) == folder
    assert (folder / "test").stat().st_mtime_ns == stamp  # reused, not written again
    with pytest.raises(RfcalcError, match="budget.holdout 60: the training split of /data/toy has 60 images"):
        write_holdout(images, 60, tmp_path / "h2", lambda s: None)


def test_workers_asking_at_once_never_get_the_same_queued_trial(tmp_path: Path) -> None:
    """SQLite: two workers both claimed the enqueued trial 0 and trained it into one folder (deferred
    transactions); every transaction now begins IMMEDIATE, so each queued candidate goes to exactly one worker."""
    import threading
    import warnings

    sweep = _sweep(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = open_study(sweep, url)
    for width in [8, 16, 24, 32, 40, 48] * 4:
        first.enqueue_trial({"width": width})
    workers, asks = 6, 4
    studies = [open_study(sweep, url, worker=i) for i in range(workers)]
    start = threading.Barrier(workers)
    got: list[int] = []

    def ask(study) -> None:
        start.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats: the sweep asks through Study.optimize
            for _ in range(asks):
                got.append(study.ask().number)

    threads = [threading.Thread(target=ask, args=(study,)) for study in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(workers * asks))   # 24 queued, 24 asks: each claimed once
    assert all(t.state == TrialState.RUNNING for t in first.get_trials())
