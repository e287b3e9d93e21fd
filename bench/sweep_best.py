"""The sweep's best spec vs the bundled default, trained side by side at equal epochs on the same images.

    python bench/sweep_best.py                           # examples/sweep_quick.yaml, then 5 epochs on 10,000 images
    python bench/sweep_best.py --epochs 10 --train-limit 50000 --device cuda
    python bench/sweep_best.py --write                   # also replace the sweep section of bench/RESULTS.md

1. `rfcalc sweep` (its study, best.yaml and table go to --out/sweep); the cost of the sweep is recorded: wall
   time, trials trained / pruned / rejected, how long a rejection and a training took.
2. `rfcalc train` on three specs with the same flags (epochs, training images, batch size, aug, seed), each
   evaluated on the whole test split (the sweep selected on --test-limit images of it): the bundled
   arch_specs/c1c2c3c4_cifar10.yaml as it is (its default recipe), the sweep's baseline trial 0 (the bundled
   widths with the sweep's first learning rate) and the sweep's best spec.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from results_file import write_section  # bench/ is the script's own folder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = next((p for p in (ROOT.parent / "shared" / "datasets" / "cifar10-jpeg",
                                 ROOT.parent.parent / "shared" / "datasets" / "cifar10-jpeg") if p.is_dir()),
                    ROOT.parent / "shared" / "datasets" / "cifar10-jpeg")


def run(command: list[str]) -> float:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    env = {**os.environ, "COLUMNS": "100"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the sweep's own trials (bench/sweep_threads.py)
    done = subprocess.run(command, stdout=sys.stderr, env=env)
    if done.returncode:
        raise SystemExit(f"{command[3]} exited with {done.returncode}")
    return time.perf_counter() - started


def train(name: str, spec: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = args.out / name
    seconds = run([sys.executable, "-m", "rfcalc", "train", str(spec), "--data", str(args.data), "--out", str(out),
                   "--epochs", str(args.epochs), "--train-limit", str(args.train_limit), "--batch-size",
                   str(args.batch_size), "--aug", args.aug, "--seed", "0", "--device", args.device])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary["wall"] = seconds
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=Path, default=ROOT / "examples" / "sweep_quick.yaml")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-sweep")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-limit", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--aug", default="fast")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--write", action="store_true", help="replace the sweep section of bench/RESULTS.md")
    args = parser.parse_args()
    args.out = args.out.resolve()

    load_before = os.getloadavg()[0]
    sweep_out = args.out / "sweep"
    sweep_wall = run([sys.executable, "-m", "rfcalc", "sweep", str(args.sweep), "--data", str(args.data), "--out",
                      str(sweep_out), "--device", args.device])
    shown = subprocess.run([sys.executable, "-m", "rfcalc", "sweep", str(args.sweep), "--out", str(sweep_out),
                            "--show", "--format", "json"], capture_output=True, text=True, check=True)
    results = json.loads(shown.stdout)
    rows = {row["trial"]: row for row in results["trials"]}
    best = results["best"]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=results["study"], storage=f"sqlite:///{sweep_out / 'study.db'}")
    rejected_ms = [t.user_attrs["check_ms"] for t in study.trials if t.user_attrs.get("outcome") == "rejected"]
    trained_s = [row["seconds"] for row in rows.values() if row["state"] in ("complete", "pruned")
                 and row["seconds"] and "same candidate" not in row["note"]]

    specs = [("c1c2c3c4 as bundled", ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml"),
             ("sweep trial 0 (bundled widths)", sweep_out / "trials" / "0000" / "spec.yaml"),
             (f"sweep best (trial {best})", sweep_out / "best.yaml")]
    trained = [(label, spec, train(f"train-{i}", spec, args)) for i, (label, spec) in enumerate(specs)]

    import rfcalc
    from rfcalc.sweep.load import load_sweep

    budget = load_sweep(args.sweep).budget
    tests = f"{trained[0][2]['data']['test_images']:,} images"
    lines = [f"Sweep: `{args.sweep.relative_to(ROOT)}` ({sum(1 for r in rows.values())} trials: "
             + ", ".join(f"{n} {state}" for state, n in results["counts"].items() if n)
             + f") in {sweep_wall / 60:.1f} min wall; a rejection took {statistics.median(rejected_ms):.1f} ms "
             f"(median of {len(rejected_ms)}), a trained trial {statistics.median(trained_s):.1f} s (median of "
             f"{len(trained_s)}).\n" if rejected_ms and trained_s else "",
             "",
             f"Then each spec trained alone with the same flags: {args.epochs} epochs on {args.train_limit:,} "
             f"training images, batch {args.batch_size}, aug {args.aug}, seed 0; accuracy on the whole test split "
             f"({tests}; the sweep selected on {budget.test_limit or 'all the'} test images and trained its "
             f"trials {budget.epochs} epochs on {budget.train_limit or 'all the'} training images).",
             "",
             "| spec | params | RF | lr | best test acc | final test acc | wall |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, spec, summary in trained:
        loaded = rfcalc.load_spec(spec)
        lr = summary["options"]["config"]["lr"]
        lines.append(f"| {label} | {loaded.report.params:,} | {loaded.report.rf[0]} | {lr:.4g} | "
                     f"{summary['best_test_acc']:.2%} | {summary['final_test_acc']:.2%} | {summary['wall']:.0f} s |")
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[best]["values"].items())
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS="
               f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, OMP_WAIT_POLICY="
               f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}, load average {load_before:.1f} at the start and "
               f"{os.getloadavg()[0]:.1f} at the end: the cores were shared with other work")
    text = ("## `rfcalc sweep`: the best spec vs the bundled default\n\n"
            f"`python bench/sweep_best.py` ({time.strftime('%Y-%m-%d')}, {machine}; device {args.device}).\n\n"
            + "\n".join(lines) + f"\n\nThe best trial's values: {values}.\n\n")
    print(text)
    if args.write:
        write_section("sweep", text)


if __name__ == "__main__":
    main()
