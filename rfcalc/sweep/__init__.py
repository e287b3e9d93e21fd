"""`rfcalc sweep`: search variants of a spec under its rules with Optuna, on one machine or many.

Needs the `sweep` extra (optuna, a PostgreSQL driver) and, to train trials, the `train` extra. Importing this
package imports neither; torch is never imported by the sweep itself (each trial trains in a child process).

Modules, one idea each:

- :mod:`rfcalc.sweep.model`      the sweep file as written (pydantic): space, objective, budget, size
- :mod:`rfcalc.sweep.paths`      paths into a raw spec (``layers.c2_2.dilation``): parse, check, set
- :mod:`rfcalc.sweep.space`      a dimension: how Optuna samples it and where its value goes
- :mod:`rfcalc.sweep.load`       a sweep file -> a checked :class:`~rfcalc.sweep.load.Sweep` (located errors)
- :mod:`rfcalc.sweep.schema`     the sweep file's JSON Schema
- :mod:`rfcalc.sweep.candidate`  values -> a standalone trial spec -> the torch-free verdict of `rfcalc check`
- :mod:`rfcalc.sweep.holdout`    budget.holdout: a fixed held-out split of the training images, written once
- :mod:`rfcalc.sweep.trainproc`  a trial's `rfcalc train` child process, followed through its metrics.jsonl
- :mod:`rfcalc.sweep.outcome`    complete / pruned / rejected / failed / interrupted / ... from Optuna's state
- :mod:`rfcalc.sweep.study`      storage, sampler, pruner, opening or continuing a study, the budget count
- :mod:`rfcalc.sweep.objective`  one trial from start to end (reject, reuse, train, prune, interrupt)
- :mod:`rfcalc.sweep.worker`     the loop of trials, signals, N worker processes
- :mod:`rfcalc.sweep.results`    the study as rows, the Pareto front, the best trial
- :mod:`rfcalc.sweep.render`     the results table: text, markdown, csv, json
- :mod:`rfcalc.sweep.plot`       accuracy vs params with the Pareto front (matplotlib)
- :mod:`rfcalc.sweep.run`        `rfcalc sweep` from start to end, and the best spec
"""
