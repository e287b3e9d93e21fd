"""What the ``global`` flag costs the calculator (issue 14): load_spec on deep specs, before and after, side by side.

    python bench/global_cost.py --before DIR [--write]

``DIR`` holds the ``rfcalc`` package of a commit before the flag (e.g. ``git archive 00151ce rfcalc | tar -x -C
DIR``). The specs are bench/check_speed.py's (convs with bn and relu, some dilated, two strided, gap, linear; 8
channels, 64x64 input); each version runs in its own fresh process, order alternating, timing load_spec (validate,
expand, calculate) in CPU seconds of the process: the machine's 2 cores are shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

_TIMER = """
import json, sys, time
sys.path.insert(0, {path!r})
sys.path.insert(1, {bench!r})
from check_speed import deep_spec
from rfcalc.analysis.load import load_spec
out = {{}}
for n in {sizes!r}:
    spec = deep_spec(n, channels=8)
    spec["input"]["size"] = 64
    load_spec(spec)
    times = []
    for _ in range({repeats}):
        start = time.process_time()
        load_spec(spec)
        times.append(time.process_time() - start)
    out[n] = times
print(json.dumps(out))
"""


def measure(before: Path, sizes: list[int], rounds: int, repeats: int) -> dict[str, dict[int, list[float]]]:
    runs: dict[str, dict[int, list[float]]] = {"before": {n: [] for n in sizes}, "after": {n: [] for n in sizes}}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    versions = [("before", before), ("after", ROOT)]
    for k in range(rounds):
        for label, path in (versions if k % 2 == 0 else versions[::-1]):
            code = _TIMER.format(path=str(path), bench=str(ROOT / "bench"), sizes=sizes, repeats=repeats)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            for n, times in json.loads(out.stdout.strip().splitlines()[-1]).items():
                runs[label][int(n)] += times
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    sizes = [200, 1_000, 10_000]
    runs = measure(args.before.resolve(), sizes, args.rounds, args.repeats)
    lines = [
        "## What the `global` flag costs the calculator",
        "",
        f"`python bench/global_cost.py --before DIR` ({platform.machine()}, {os.cpu_count()} cores shared with other "
        f"jobs, Python {platform.python_version()}). Before: `rfcalc/` of commit 00151ce (the op registry, no "
        f"`global`); after: this checkout. bench/check_speed.py's deep specs (8 channels, 64x64); load_spec "
        f"(validate, expand, calculate) in CPU seconds, {args.rounds} fresh processes per version (order "
        f"alternating) x {args.repeats} runs, medians.",
        "",
        "| layers | before s | after s | after / before |",
        "|---|---|---|---|",
    ]
    for n in sizes:
        b, a = statistics.median(runs["before"][n]), statistics.median(runs["after"][n])
        lines.append(f"| {n:,} | {b:.3f} | {a:.3f} | {a / b:.2f} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.write:
        from results_file import write_section

        write_section("global-cost", text)


if __name__ == "__main__":
    main()
