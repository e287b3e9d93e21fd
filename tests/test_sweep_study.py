"""The study side without training: what counts towards the budget, surplus trials, queued retries, a study
made from another sweep, the pruners. A real SQLite file; no child process."""
from __future__ import annotations

from pathlib import Path

import pytest

import optuna

from rfcalc.errors import RfcalcError  # noqa: E402
from rfcalc.sweep.load import load_sweep  # noqa: E402
from rfcalc.sweep.outcome import Outcome, counts, outcome_of  # noqa: E402
from rfcalc.sweep.study import counted, is_surplus, make_pruner, open_study  # noqa: E402
from rfcalc.sweep.worker import _queue_again, more_to_do  # noqa: E402
from test_sweep_file import BASE, GOOD  # noqa: E402

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
    two = _sweep(tmp_path, GOOD + "objective: [accuracy, macs]\n")
    assert two.pruner == "none" and isinstance(make_pruner(two), optuna.pruners.NopPruner)
