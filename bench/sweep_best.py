"""The sweep's best spec vs the bundled default, trained side by side at equal epochs on the same images.

    python bench/sweep_best.py                           # examples/sweep_quick.yaml, then 5 epochs on 10,000 images
    python bench/sweep_best.py --epochs 10 --train-limit 50000 --device cuda
    python bench/sweep_best.py --write                   # also replace the sweep section of bench/RESULTS.md
    python bench/sweep_best.py --reuse --write           # re-render a finished run (--out/timings.json)
    python bench/sweep_best.py --sweep examples/sweep_arch.yaml --workers 4 --device cuda \
        --epochs 40 --train-limit 0 --batch-size 256       # one GPU: the architecture sweep, then full budget

1. `rfcalc sweep` (its study, best.yaml and table go to --out/sweep); the cost of the sweep is recorded: wall
   time, trials trained / pruned / rejected, how long a rejection and a training took.
2. `rfcalc train` on three specs with the same flags (epochs, training images, batch size, aug, seed), each
   evaluated on the whole test split (the sweep selected on --test-limit images of it): the bundled
   arch_specs/c1c2c3c4_cifar10.yaml as it is (its default recipe), the sweep's baseline trial 0 (the bundled
   widths with the sweep's first learning rate) and the sweep's best spec.
3. Each run's last.pt predicts the test split again: McNemar's exact test on the images one spec gets right and
   the other wrong says whether a difference is more than chance; and every candidate of the sweep is listed
   (rejected and pruned ones too, so that nobody repeats them).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import write_section  # bench/ is the script's own folder
from shared_data import CIFAR

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = CIFAR


def run(command: list[str]) -> float:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    env = {**os.environ, "COLUMNS": "100"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the sweep's own trials (bench/sweep_threads.py)
    done = subprocess.run(command, stdout=sys.stderr, env=env)
    if done.returncode:
        raise SystemExit(f"{command[3]} exited with {done.returncode}")
    return time.perf_counter() - started


def train(name: str, spec: Path, args: argparse.Namespace) -> float:
    """`rfcalc train` with the bench's flags; its wall time."""
    out = args.out / name
    limit = ["--train-limit", str(args.train_limit)] if args.train_limit else []
    return run([sys.executable, "-m", "rfcalc", "train", str(spec), "--data", str(args.data), "--out", str(out),
                   "--epochs", str(args.epochs), *limit, "--batch-size", str(args.batch_size), "--aug", args.aug,
                   "--seed", "0", "--device", args.device])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=Path, default=ROOT / "examples" / "sweep_quick.yaml")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-sweep")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-limit", type=int, default=10_000, help="0: the whole training split")
    parser.add_argument("--workers", type=int, default=1, help="the sweep's --workers (several per GPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--aug", default="fast")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--write", action="store_true", help="replace the sweep section of bench/RESULTS.md")
    parser.add_argument("--reuse", action="store_true", help="keep the steps --out/timings.json says are done "
                                                                "(re-render a finished run)")
    args = parser.parse_args()
    args.out, args.sweep = args.out.resolve(), args.sweep.resolve()  # a relative --sweep: relative_to(ROOT) below

    timings_file = args.out / "timings.json"
    timings = json.loads(timings_file.read_text()) if args.reuse and timings_file.is_file() else {}
    timings.setdefault("load_before", os.getloadavg()[0])
    sweep_out = args.out / "sweep"
    if "sweep" not in timings:
        timings["sweep"] = run([sys.executable, "-m", "rfcalc", "sweep", str(args.sweep), "--data", str(args.data),
                                "--out", str(sweep_out), "--device", args.device, "--workers", str(args.workers)])
        _save(timings_file, timings)
    shown = subprocess.run([sys.executable, "-m", "rfcalc", "sweep", str(args.sweep), "--out", str(sweep_out),
                            "--show", "--format", "json"], capture_output=True, text=True, check=True)
    results = json.loads(shown.stdout)
    rows = {row["trial"]: row for row in results["trials"]}
    best = results["best"]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=results["study"], storage=f"sqlite:///{sweep_out / 'study.db'}")
    rejected_ms = [t.user_attrs["check_ms"] for t in study.trials if t.user_attrs.get("outcome") == "rejected"]
    trained = [row for row in rows.values() if row["state"] in ("complete", "pruned") and row["seconds"]
               and "same candidate" not in row["note"]]

    specs = [("c1c2c3c4 as bundled", ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml"),
             ("sweep trial 0 (its first enqueued candidate)", sweep_out / "trials" / "0000" / "spec.yaml"),
             (f"sweep best (trial {best})", sweep_out / "best.yaml")]
    summaries = []
    for i, (_, spec) in enumerate(specs):
        key = f"train-{i}"
        if key not in timings:
            timings[key] = train(key, spec, args)
            _save(timings_file, timings)
        summaries.append(json.loads((args.out / key / "summary.json").read_text(encoding="utf-8")))
    timings["load_after"] = timings.get("load_after", os.getloadavg()[0])
    _save(timings_file, timings)

    import rfcalc
    from rfcalc.sweep.load import load_sweep

    budget = load_sweep(args.sweep).budget
    image_epochs = sum(int(row["epochs"] or 0) for row in trained) * (budget.train_limit or 50_000)
    run_images = args.train_limit or summaries[0]["data"]["train_images"]
    measured = (f"{budget.holdout:,} held-out training images" if budget.holdout else
                f"{_count(budget.test_limit)} test images")
    lines = [f"Sweep: `{_shown(args.sweep)}`, {len(rows)} trials ("
             + ", ".join(f"{n} {state}" for state, n in results["counts"].items() if n)
             + f") in {timings['sweep'] / 60:.1f} min wall. A rejection took {statistics.median(rejected_ms):.1f} ms "
             f"(median of {len(rejected_ms)}); a trained trial {statistics.median(r['seconds'] for r in trained):.1f} s"
             f" (median of {len(trained)}). The sweep trained {image_epochs:,} images in all (epochs x images of "
             f"every trained trial), {image_epochs / (args.epochs * run_images):.0%} of one run below.",
             "",
             f"Then each spec trained alone with the same flags: {args.epochs} epochs on {run_images:,} "
             f"training images, batch {args.batch_size}, aug {args.aug}, seed 0; accuracy on the whole test split "
             f"({summaries[0]['data']['test_images']:,} images). The sweep had selected on "
             f"{measured} after {budget.epochs} epochs on "
             f"{_count(budget.train_limit)} training images.",
             "",
             "| spec | params | RF | lr | best test acc | final test acc | wall |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, ((label, spec), summary) in enumerate(zip(specs, summaries)):
        loaded = rfcalc.load_spec(spec)
        lr = summary["options"]["config"]["lr"]
        lines.append(f"| {label} | {loaded.report.params:,} | {loaded.report.rf[0]} | {lr:.4g} | "
                     f"{summary['best_test_acc']:.2%} | {summary['final_test_acc']:.2%} | "
                     f"{timings[f'train-{i}']:.0f} s |")
    finals = [paired_predictions(args.out / f"train-{i}", spec, summary, args)
              for i, ((_, spec), summary) in enumerate(zip(specs, summaries))]
    lines += ["", "Paired on the same test images (each run's last.pt, the final accuracy; McNemar's exact test on "
                  "the images one spec gets right and the other wrong):", "",
              "| pair | accuracy | only the first right | only the second right | difference | p (two-sided) |",
              "| --- | --- | --- | --- | --- | --- |"]
    tests = {}
    for a, b, name in ((2, 0, "sweep best vs c1c2c3c4 as bundled"), (2, 1, "sweep best vs sweep trial 0"),
                       (1, 0, "sweep trial 0 vs c1c2c3c4 as bundled")):
        only_a, only_b, p = tests[a, b] = mcnemar(finals[a][1], finals[b][1], finals[a][0])
        lines.append(f"| {name} | {finals[a][2]:.2%} vs {finals[b][2]:.2%} | {only_a:,} | {only_b:,} | "
                     f"{finals[a][2] - finals[b][2]:+.2%} | {p:.3g} |")
    lines += ["", f"The sweep's candidates ({budget.epochs} epochs at most; held-out accuracy at the last epoch "
                  "trained; a rejected one was never trained):", "",
              "| trial | outcome | params | MACs | RF | epochs | accuracy | s | values / why |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows.values():
        why = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["values"].items())
        why += f": {row['note']}" if row["note"] else ""
        acc = "" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        took = f"{row['seconds']:.0f}" if row["seconds"] else ""
        lines.append(f"| {row['trial']} | {row['state']} | {row['params']:,} | {(row['macs'] or 0) / 1e6:.1f}M | "
                     f"{(row['rf'] or [''])[0]} | {row['epochs'] or ''} | {acc} | {took} | "
                     f"{why.replace('|', '/')} |")
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[best]["values"].items())
    picked = rows[best]["accuracy"]
    n_test = budget.holdout or budget.test_limit or summaries[0]["data"]["test_images"]
    noise = 100 * (picked * (1 - picked) / n_test) ** 0.5
    delta = 100 * (summaries[2]["best_test_acc"] - summaries[0]["best_test_acc"])
    where = "held-out training" if budget.holdout else "test"

    def said(a: int, b: int, what: str) -> str:
        diff, p = 100 * (finals[a][2] - finals[b][2]), tests[a, b][2]
        if p < 0.05:
            return f"{'beats' if diff > 0 else 'is beaten by'} {what} by {abs(diff):.2f} points (paired p = {p:.2g})"
        return f"cannot be told apart from {what} ({diff:+.2f} points, paired p = {p:.2g})"

    verdict = f"the sweep's best {said(2, 0, 'the bundled spec')}, and {said(2, 1, 'its own baseline, trial 0')}."
    if tests[2, 0][2] < 0.05 <= tests[2, 1][2]:
        close = [r for r in rows.values() if r["state"] == "complete" and r["accuracy"] is not None
                 and 100 * (picked - r["accuracy"]) < 2 * noise * 2 ** 0.5]
        verdict += (" The gain over the bundled spec came with the sweep file's base design (trial 0), not from the "
                    f"search: {len(close)} of the {len(trained)} candidates it trained are within two standard "
                    "errors of a difference of its best's held-out accuracy ("
                    + ", ".join(f"trial {r['trial']} {r['accuracy']:.2%}" for r in close) + ").")
    elif tests[2, 0][2] >= 0.05 or finals[2][2] <= finals[0][2]:
        verdict += (" A proxy that coarse picks among candidates its own noise cannot separate; a sweep whose best "
                    "is worth quoting needs a trial budget closer to the final run's.")
    lines += ["", f"At {args.epochs} epochs the sweep's best is {delta:+.2f} points from the bundled spec. The sweep "
                  f"ranked its candidates by {picked:.2%} on {n_test:,} {where} images (one standard error: "
                  f"{noise:.1f} points) after {budget.epochs} epochs on {_count(budget.train_limit)} images: "
                  + verdict]
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS="
               f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, OMP_WAIT_POLICY="
               f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}, load average {timings['load_before']:.1f} at the "
               f"start and {timings['load_after']:.1f} at the end: the cores were shared with other work")
    text = ("## `rfcalc sweep`: the best spec vs the bundled default\n\n"
            f"`{command(args)}` ({time.strftime('%Y-%m-%d')}, {machine}; device {args.device}).\n\n"
            + "\n".join(lines) + f"\n\nThe best trial's values: {values}.\n\n")
    print(text)
    if args.write:
        write_section("sweep", text)


def command(args: argparse.Namespace) -> str:
    """The bench's command line, as it ran (whatever --reuse/--write re-rendered it)."""
    return (f"python bench/sweep_best.py --sweep {_shown(args.sweep)} --data {args.data} --workers {args.workers} "
            f"--epochs {args.epochs} --train-limit {args.train_limit} --batch-size {args.batch_size} --aug {args.aug} "
            f"--device {args.device}")


def paired_predictions(run: Path, spec: Path, summary: dict, args: argparse.Namespace) -> tuple[int, list[bool], float]:
    """Which test images the run's last.pt gets right (as `rfcalc evaluate`, with the run's TTA), and its accuracy."""
    import torch

    import rfcalc
    from rfcalc.model.weights import load_weights, read_checkpoint
    from rfcalc.trainer.batches import Normalizer
    from rfcalc.trainer.data import fitting_data
    from rfcalc.trainer.engine import Engine, evaluate_split
    from rfcalc.trainer.options import merge_config

    loaded = rfcalc.load_spec(spec)
    ckpt = read_checkpoint(run / "last.pt")
    images = fitting_data(loaded, str(args.data), lambda *_: None, train_limit=1, test_limit=None)
    model = rfcalc.build_model(loaded)
    load_weights(model, ckpt, source=run / "last.pt", spec_name=loaded.name)
    engine = Engine(model, merge_config(loaded.train, {}), torch.device("cpu"), total_steps=1)
    normalize = Normalizer(tuple(ckpt.get("mean") or images.mean), tuple(ckpt.get("std") or images.std),
                           torch.device("cpu"))
    x, y = torch.from_numpy(images.test_x), torch.from_numpy(images.test_y)
    result = evaluate_split(engine, x, y, normalize, len(images.classes), bool(summary["options"]["config"]["tta"]),
                            model=engine.model)
    if abs(result.accuracy - summary["final_test_acc"]) > 1e-9:
        print(f"note: {run / 'last.pt'} scores {result.accuracy:.2%} here, {summary['final_test_acc']:.2%} in its "
              f"summary.json", file=sys.stderr)
    return len(y), (result.predictions == y).tolist(), result.accuracy


def mcnemar(a: list[bool], b: list[bool], _n: int) -> tuple[int, int, float]:
    """Images only ``a`` gets right, only ``b`` gets right, and McNemar's exact two-sided p (binomial, 1/2)."""
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1))
    return only_a, only_b, min(1.0, 2 * tail / 2 ** n) if n else 1.0


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _count(value: int | None) -> str:
    return "all the" if value is None else f"{value:,}"


def _save(path: Path, timings: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
