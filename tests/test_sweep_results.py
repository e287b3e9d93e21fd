"""Results of a sweep as data and as text: the Pareto front against brute force and against Optuna's own,
the best trial, and the rendered table in every format against golden files (rich within 80 columns).

Regenerate the golden files after an intended change with::

    RFCALC_UPDATE_GOLDEN=1 pytest tests/test_sweep_results.py
"""
from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import pytest

from rfcalc.render.report import TableFormat
from rfcalc.sweep.outcome import Outcome
from rfcalc.sweep.render import people_text, render_text, summary_lines, text_table
from rfcalc.sweep.results import Results, TrialRow, pareto_front

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("RFCALC_UPDATE_GOLDEN") == "1"


def _dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return q[0] >= p[0] and q[1] <= p[1] and q != p


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    points = [(rng.choice([0.1, 0.2, 0.3, 0.4]), float(rng.choice([100, 200, 300]))) if rng.random() > 0.1 else None
              for _ in range(rng.randint(1, 12))]
    expected = [p is not None and not any(q is not None and _dominated(p, q) for q in points) for p in points]
    assert pareto_front(points) == expected


def test_pareto_front_matches_optunas_best_trials_of_a_two_objective_study() -> None:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = random.Random(3)
    study = optuna.create_study(directions=["maximize", "minimize"])
    points = []
    for _ in range(40):
        point = (round(rng.uniform(0.1, 0.6), 2), float(rng.randrange(10_000, 200_000, 5_000)))
        points.append(point)
        study.add_trial(optuna.trial.create_trial(values=list(point), params={}, distributions={}))
    ours = {i for i, on in enumerate(pareto_front(points)) if on}
    assert ours == {t.number for t in study.best_trials}
    assert 1 < len(ours) < len(points)


def results() -> Results:
    """One trial of every outcome, with values that exercise every column."""
    values = {"width": 32, "dilation": 2, "lr": 0.0512345}
    rows = (
        TrialRow(0, Outcome.complete, 0.4125, 3, 189_098, 28_991_552, (103, 103), 126.6, values, front=True),
        TrialRow(1, Outcome.rejected, None, None, 269_514, 39_600_000, (99, 99), None, {**values, "dilation": 1},
                 "params 269,514 < 200,000 ✗ (remove at least 69,515); require dilated_conv ✗ (no layer has it)"),
        TrialRow(2, Outcome.pruned, 0.1800, 1, 167_314, 23_500_000, (103, 103), 27.8, {**values, "width": 24},
                 "stopped after epoch 1/3 by the median pruner (18.00%)"),
        TrialRow(3, Outcome.complete, 0.4125, 3, 126_074, 12_400_000, (103, 95), 17.7, {**values, "width": 16},
                 front=True),
        TrialRow(4, Outcome.failed, None, None, 150_000, 20_000_000, (103, 103), 3.2, {**values, "lr": 3.0},
                 "`rfcalc train` exited 1: the loss became NaN in epoch 1"),
        TrialRow(5, Outcome.interrupted, 0.2, 1, 150_000, 20_000_000, (103, 103), 40.0, values,
                 "interrupted (Ctrl-C) after 1 epoch(s); last.pt kept to resume"),
        TrialRow(6, Outcome.rejected, None, None, None, None, None, None, {**values, "width": 8},
                 "invalid spec: layers[4] (conv 'c3_1'): norm_groups 8 does not divide 4 channels"),
        TrialRow(7, Outcome.waiting, None, None, None, None, None, None, values, "queued again after trial 5"),
    )
    return Results("c1c2c3c4-quick", "sqlite:////runs/c1c2c3c4-quick/study.db", ("accuracy",), 8, rows,
                   ("width", "dilation", "lr"), hidden=1)


def test_best_is_the_most_accurate_complete_trial_then_the_smallest() -> None:
    best = results().best
    assert best is not None and best.number == 3  # ties with trial 0 on accuracy, fewer params
    assert Results("s", "", ("accuracy",), 1, (TrialRow(0, Outcome.pruned, 0.9),), ()).best is None


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_text_table_fits_80_columns_and_matches_golden() -> None:
    text = text_table(results(), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    for number in ("189,098", "269,514", "41.25%", "18.00%", "29.0M", "2m07s", "103x95", "require dilated_conv"):
        assert number in text  # nothing is hidden or cut to make it fit
    whole = people_text(results(), 80)
    assert max(len(line) for line in whole.splitlines()) <= 80
    _check_golden("sweep_results.txt", whole)


@pytest.mark.parametrize(("fmt", "suffix"), [(TableFormat.markdown, "md"), (TableFormat.csv, "csv"),
                                             (TableFormat.json, "json")])
def test_text_formats_match_golden(fmt: TableFormat, suffix: str) -> None:
    _check_golden(f"sweep_results.{suffix}", render_text(results(), fmt))


def test_summary_counts_every_outcome_once() -> None:
    lines = summary_lines(results())
    assert lines[0] == ("c1c2c3c4-quick: 6 of 8 trials done (2 complete, 1 pruned, 2 rejected, 1 failed); "
                        "1 queued; not counted: 1 interrupted (each queued again as a new trial)")
    assert lines[1] == ("best: trial 3, 41.25% after 3 epoch(s), 126,074 params, RF 103x95: width=16, dilation=2, "
                        "lr=0.05123")
    counts = results().to_dict()["counts"]
    assert sum(counts.values()) == len(results().rows)
    assert list(itertools.chain(results().to_dict()["pareto"])) == [0, 3]


@pytest.mark.parametrize("outcomes", [
    # issue 25 #11: 14 trials counted and one interrupted read "14 of 14 trials done (..., 1 interrupted)"
    [Outcome.complete] * 5 + [Outcome.pruned] * 3 + [Outcome.rejected] * 6 + [Outcome.interrupted],
    [Outcome.complete, Outcome.lost, Outcome.running, Outcome.waiting, Outcome.failed, Outcome.interrupted],
    [Outcome.interrupted, Outcome.waiting],
])
def test_the_summary_counts_add_up_to_the_trials_done(outcomes: list[Outcome]) -> None:
    import re

    rows = tuple(TrialRow(i, o, 0.5 if o is Outcome.complete else None) for i, o in enumerate(outcomes))
    line = summary_lines(Results("s", "", ("accuracy",), 14, rows, ()))[0]
    match = re.match(r"s: (\d+) of 14 trials done(?: \(([^)]*)\))?", line)
    assert match, line
    listed = [int(part.split()[0]) for part in (match.group(2) or "").split(", ") if part]
    done = sum(1 for o in outcomes if o in (Outcome.complete, Outcome.pruned, Outcome.rejected, Outcome.failed))
    assert int(match.group(1)) == sum(listed) == done
    mentioned = sum(int(n) for n in re.findall(r"(\d+) (?:complete|pruned|rejected|failed|running|queued|interrupted"
                                              r"|lost)", line))
    assert mentioned == len(outcomes)  # every trial is said once, in its place
