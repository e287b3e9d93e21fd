"""`rfcalc sweep SWEEP.yaml`: search spec variants under the rules with Optuna; `rfcalc sweep-schema`.

Importing this module imports neither optuna nor torch; the command checks the `sweep` extra (and `train`, to
run trials) and imports :mod:`rfcalc.sweep.run` inside its body.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rfcalc.cli.common import console, guarded, require_extra
from rfcalc.cli.outputs import emit_json, output_folder
from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.table.formats import TableFormat


def register(app: typer.Typer) -> None:
    """Add `sweep` and `sweep-schema` to ``app``."""
    app.command(name="sweep")(guarded(sweep))
    app.command(name="sweep-schema")(guarded(sweep_schema))


def sweep(
    sweep_file: Annotated[Path, typer.Argument(
        metavar="SWEEP", help="The sweep file (YAML): base spec, space, objective, budget.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FOLDER",
        help="Output folder: study.db (default storage), trials/, best.yaml, pareto.png (default: runs/<sweep "
             "name>).")] = None,
    storage: Annotated[str | None, typer.Option(
        "--storage", metavar="URL", help="A database URL that workers on many machines share (PostgreSQL: "
                                         "docs/sweep.md; default: sqlite in --out).")] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", help="Trial processes on this machine.")] = 1,
    workers_per_device: Annotated[int | None, typer.Option(
        "--workers-per-device", metavar="K",
        help="With GPUs: K workers train on each GPU at once (default: --workers spread evenly over the GPUs); "
             "no effect on CPU.")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", metavar="DATA",
        help="Data for every trial (default: the sweep file's data, else the spec's train.data, else CIFAR).")] = None,
    trials: Annotated[int | None, typer.Option(
        "--trials", metavar="N", help="Trials in the study in total (default: the sweep file's).")] = None,
    timeout: Annotated[str | None, typer.Option(
        "--timeout", metavar="DURATION",
        help="Start no trial after this long: 90s, 20m, 2h (default: the sweep file's).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Sampler seed (worker i uses seed + i).")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", metavar="DEVICE", help="Passed to every trial's `rfcalc train` (auto, cpu, cuda, cuda:N).")
    ] = None,
    train_command: Annotated[str | None, typer.Option(
        "--train-command", metavar="COMMAND",
        help="How to start `rfcalc train` for a trial, e.g. \"torchrun --standalone --nproc-per-node 4 -m rfcalc "
             "train\" (default: python -m rfcalc train).")] = None,
    show: Annotated[bool, typer.Option("--show", help="Run no trial: print the study's results so far and write "
                                                      "best.yaml and pareto.png.")] = False,
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Results table format.")] = TableFormat.rich,
) -> None:
    """Search variants of a spec under its rules with Optuna (TPE; NSGA-II for accuracy vs params/MACs).

    Each trial applies the sampled values to the base spec, writes the trial's spec and runs the torch-free check:
    a candidate that breaks the rules is rejected in milliseconds and never trained. The others train as child
    processes (`rfcalc train`), report test accuracy every epoch and are pruned when they fall behind. Re-running
    continues the study. Exit 0 when done, 1 when no trial completed, 2 on bad input, 130 on Ctrl-C (run the
    same command again to continue).
    """
    require_extra("optuna", "train,sweep")  # a sweep trains its trials: one install line for both
    from rfcalc.sweep.model import parse_duration
    from rfcalc.sweep.trainproc import TRAIN_COMMAND

    if workers < 1:
        raise RfcalcError(f"--workers {workers}: must be >= 1")
    if workers_per_device is not None and workers_per_device < 1:
        raise RfcalcError(f"--workers-per-device {workers_per_device}: must be >= 1")
    if trials is not None and trials < 1:
        raise RfcalcError(f"--trials {trials}: must be >= 1")
    try:
        seconds = None if timeout is None else parse_duration(timeout)
    except ValueError as exc:
        raise RfcalcError(f"--timeout {timeout}: {exc}") from None
    if device is not None:
        from rfcalc.trainer.options import check_device

        check_device(device)
    import shlex  # here: every command (a pre-commit `check` too) imports this module

    launcher = tuple(shlex.split(train_command)) if train_command else TRAIN_COMMAND
    if train_command is not None and not launcher:
        raise RfcalcError("--train-command: empty; give the command that starts `rfcalc train`")
    if not show:
        for module in ("numpy", "cv2", "torch"):
            require_extra(module, "train,sweep")
    from rfcalc.sweep.render import people_text, render_text
    from rfcalc.sweep.run import default_plan, run_sweep

    if out is not None:
        output_folder("--out", out)
    plan, _ = default_plan(sweep_file, out=out, storage=storage, data=data, device=device, trials=trials,
                           timeout=seconds, seed=seed, launcher=launcher)
    if show and storage is None and not (Path(plan.out) / "study.db").is_file():
        raise RfcalcError(f"--show: no study in {plan.out} yet (no study.db); run the sweep first, or give its "
                          f"--out / --storage")
    finished = run_sweep(plan, workers, show_only=show, per_device=workers_per_device)
    results = finished.results
    if format is TableFormat.rich:
        screen = console()
        width = screen.width if sys.stdout.isatty() or os.environ.get("COLUMNS") else 80
        sys.stdout.write(people_text(results, width))
    else:
        sys.stdout.write(render_text(results, format))
    written = [p for p in (finished.best_spec, finished.plot, *finished.front_specs) if p is not None]
    if written:
        typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
    typer.echo(f"study '{results.study}' in {results.storage} (optuna-dashboard {results.storage})", err=True)
    code = finished.exit_code
    if code is ExitCode.INTERRUPTED:
        raise RfcalcError("interrupted; the study is saved: run the same command to continue", code)
    if code is ExitCode.FAILED:
        raise RfcalcError("no trial completed: " + ("every candidate so far broke the rules; widen the space or "
                                                    "relax the rules" if results.rows and all(
                                                        r.outcome.value == "rejected" for r in results.rows)
                                                    else "see the trials' notes above"), code)


def sweep_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE.json",
                                                   help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of a sweep file (for editors: `# yaml-language-server: $schema=sweep.schema.json`).

    Exit 0 when it is printed or written, 2 when --output cannot be written.
    """
    from rfcalc.sweep.schema import sweep_json_schema

    emit_json("--output", output, sweep_json_schema())
