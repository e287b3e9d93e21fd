"""Accuracy on CIFAR-10: `rfcalc train` on bundled specs, with the epoch and time at which 85% and 90% were reached.

    python bench/train_accuracy.py                                   # c1c2c3c4_cifar10.yaml, its defaults (20 epochs)
    python bench/train_accuracy.py --epochs 40 --device cuda --aug fast
    python bench/train_accuracy.py --specs all --epochs 20           # every bundled spec that fits CIFAR-10
    python bench/train_accuracy.py --specs c1c2c3c4_cifar10.yaml --epochs 2 --write   # a short CPU run, recorded
    python bench/train_accuracy.py --epoch-table runs/c1            # per-epoch Markdown table of a finished run

Each spec runs as its own `rfcalc train ... --skip-check` process (a spec that fails its constraints is
still measured); the table comes from each run's summary.json. ``--write`` replaces the train-accuracy
section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from results_file import write_section  # bench/ is the script's own folder
from shared_data import CIFAR

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = CIFAR


def fits(spec_path: Path) -> bool:
    """A spec that CIFAR-10 can train: input 3x32x32 and ten outputs."""
    import rfcalc

    try:
        spec = rfcalc.load_spec(spec_path)
    except rfcalc.SpecError:
        return False
    return tuple(spec.input_shape) == (3, 32, 32) and tuple(spec.report.output.out_shape) == (10,)


def train(spec: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = args.out / spec.stem
    command = [sys.executable, "-m", "rfcalc", "train", str(spec), "--skip-check", "--data", str(args.data), "--out",
               str(out), "--device", args.device]
    for flag, value in (("--epochs", args.epochs), ("--train-limit", args.train_limit),
                        ("--test-limit", args.test_limit), ("--aug", args.aug), ("--batch-size", args.batch_size),
                        ("--lr", args.lr)):
        if value is not None:
            command += [flag, str(value)]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    # the run's own output (table, epoch lines) goes to stderr; stdout is this script's Markdown
    done = subprocess.run(command, check=False, stdout=sys.stderr, env={**os.environ, "COLUMNS": "150"})
    if done.returncode:
        raise SystemExit(f"{spec.name}: rfcalc train exited with {done.returncode}")
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _reached(item: dict[str, Any] | None) -> str:
    if item is None:
        return "-"
    return f"epoch {item['epoch']}, {item['seconds']:,.0f} s ({item['train_seconds']:,.0f} s training)"


def report(args: argparse.Namespace, summaries: list[dict[str, Any]]) -> str:
    first = summaries[0]
    device = first["device"] + ("" if "cuda" in first["device"] else ", 2 cores shared with other jobs")
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                     if k in ("epochs", "train_limit", "test_limit", "aug", "batch_size", "lr", "device") and v)
    lines = [
        "## Accuracy on CIFAR-10 (`../shared/datasets/cifar10-jpeg`)",
        "",
        f"`python bench/train_accuracy.py --specs {args.specs} {flags}` on **{device}** "
        f"(torch {first['versions']['torch']}); the spec's `train:` section or rfcalc's defaults otherwise "
        f"(SGD Nesterov, OneCycle, label smoothing 0.1, flip TTA).",
        "",
        "| spec | params | RF | epochs | train / test images | images/s | s per epoch | final test acc | best (epoch) "
        "| 85% reached | 90% reached |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|---|---|",
    ]
    for s in summaries:
        options, data = s["options"]["config"], s["data"]
        per_epoch = s["seconds"] / max(1, s["epochs_done"])
        lines.append(
            f"| {Path(s['spec']['file']).name} | {s['spec']['params']:,} | {s['spec']['rf'][0]} | {s['epochs_done']}"
            f"/{options['epochs']} | {data['train_images']:,} / {data['test_images']:,} | {s['images_per_s']:,.0f} | "
            f"{per_epoch:,.0f} | {s['final_test_acc']:.2%} | {s['best_test_acc']:.2%} ({s['best_epoch']}) | "
            f"{_reached(s['reached']['85%'])} | {_reached(s['reached']['90%'])} |")
    return "\n".join(lines) + "\n"


def epoch_table(run: Path) -> str:
    """The per-epoch Markdown table of a run folder (its metrics.jsonl), and the line that sums it up."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line]
    lines = ["| epoch | lr (last step) | train loss | train acc | test loss | test acc (flip TTA) | images/s | seconds "
             "| elapsed |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['epoch']} | {r['lr']:.4f} | {r['train_loss']:.3f} | {r['train_acc']:.2%} | "
                     f"{r['test_loss']:.3f} | {r['test_acc']:.2%} | {r['images_per_s']:,.0f} | {r['seconds']:,.0f} | "
                     f"{r['elapsed']:,.0f} |")
    if not rows:
        return "no epoch finished\n"
    best = max(rows, key=lambda r: r["test_acc"])
    lines += ["", f"{len(rows)} epochs; best test accuracy {best['test_acc']:.2%} (epoch {best['epoch']}), final "
              f"{rows[-1]['test_acc']:.2%}; " + "; ".join(_first_reached(rows, goal) for goal in (0.85, 0.90)) + "."]
    return "\n".join(lines) + "\n"


def _first_reached(rows: list[dict[str, Any]], goal: float) -> str:
    hit = next((r for r in rows if r["test_acc"] >= goal), None)
    if hit is None:
        return f"{goal:.0%} not reached"
    return f"{goal:.0%} first reached at epoch {hit['epoch']} ({hit['elapsed']:,.0f} s elapsed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default="c1c2c3c4_cifar10.yaml",
                        help="comma-separated file names in arch_specs/, or 'all' (every spec that fits CIFAR-10)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-accuracy")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--aug")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--write", action="store_true", help="replace the train-accuracy section of bench/RESULTS.md")
    parser.add_argument("--epoch-table", type=Path, metavar="RUN_DIR",
                        help="only print the per-epoch table of a finished run's metrics.jsonl")
    args = parser.parse_args()
    if args.epoch_table:
        sys.stdout.write(epoch_table(args.epoch_table))
        return
    names = sorted(p.name for p in (ROOT / "arch_specs").glob("*.yaml")) if args.specs == "all" else \
        [n.strip() for n in args.specs.split(",") if n.strip()]
    specs = [ROOT / "arch_specs" / n for n in names]
    specs = [p for p in specs if fits(p)]
    summaries = [train(spec, args) for spec in specs]
    text = report(args, summaries)
    sys.stdout.write(text)
    if args.write:
        write_section("train-accuracy", text)


if __name__ == "__main__":
    main()
