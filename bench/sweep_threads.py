"""Why `rfcalc sweep` gives its trials OMP_WAIT_POLICY=PASSIVE: `rfcalc train` images/s with OpenMP's default
wait policy (idle threads spin) and with PASSIVE (they sleep), same thread count, alternated in one run.

    python bench/sweep_threads.py                       # the sweep tests' 4k-parameter spec, 5 pairs
    python bench/sweep_threads.py --spec arch_specs/c1c2c3c4_cifar10.yaml --pairs 3 --write

On a CPU that other work shares (a sweep's parallel trials, other users), spinning threads fight for the cores;
the ratio is PASSIVE / default per pair, and the verdict is their median. The load average is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_section  # bench/ is the script's own folder
from shared_data import CIFAR

ROOT = Path(__file__).resolve().parents[1]
DATA = CIFAR
TINY = """\
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
train: {optimizer: adamw, lr: 0.01, aug: fast, batch_size: 32}
"""


def images_per_s(spec: Path, out: Path, env: dict[str, str], args: argparse.Namespace) -> float:
    subprocess.run([sys.executable, "-m", "rfcalc", "train", str(spec), "--data", str(args.data), "--out", str(out),
                    "--epochs", "2", "--train-limit", str(args.train_limit), "--test-limit", "200", "--skip-check"],
                   check=True, capture_output=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    return float(summary["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=None, help="default: a 4k-parameter spec")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rfcalc-threads-"))
    spec = args.spec or work / "tiny.yaml"
    if args.spec is None:
        spec.write_text(TINY, encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    loads = [os.getloadavg()[0]]
    rows = []
    for i in range(args.pairs):
        spin = images_per_s(spec, work / f"spin{i}", base, args)
        passive = images_per_s(spec, work / f"passive{i}", {**base, "OMP_WAIT_POLICY": "PASSIVE"}, args)
        rows.append((spin, passive))
        print(f"pair {i + 1}: default {spin:,.0f} img/s, PASSIVE {passive:,.0f} img/s", file=sys.stderr, flush=True)
    loads.append(os.getloadavg()[0])
    ratios = [p / s for s, p in rows]
    name = args.spec.name if args.spec else "a 4k-parameter spec (the sweep tests')"
    text = ("### Trials on a shared CPU: OpenMP's wait policy\n\n"
            f"`python bench/sweep_threads.py{' --spec ' + str(args.spec) if args.spec else ''}` "
            f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, OMP_NUM_THREADS="
            f"{base.get('OMP_NUM_THREADS', 'unset')}, load average {loads[0]:.1f} before and {loads[1]:.1f} after: "
            f"the cores were shared with other work). `rfcalc train` on {name}, 2 epochs on "
            f"{args.train_limit:,} images, mean images/s of the epochs:\n\n"
            "| pair | default (spinning) | OMP_WAIT_POLICY=PASSIVE | ratio |\n| --- | --- | --- | --- |\n"
            + "".join(f"| {i + 1} | {s:,.0f} | {p:,.0f} | {p / s:.2f}x |\n" for i, (s, p) in enumerate(rows))
            + f"\nMedian ratio {statistics.median(ratios):.2f}x.\n\n")
    print(text)
    if args.write:
        write_section("sweep-threads", text)


if __name__ == "__main__":
    main()
