"""DDP on a CPU: 2 ranks x 1 thread (gloo) against 1 process x 2 threads, the same global batch, images/s
(and 1 process x 1 thread, to tell the gain of a second rank from that of a second thread).

    python bench/ddp_cpu.py                     # 3,000 images of ../shared/datasets/cifar10-jpeg, 2 epochs, 3 repeats
    python bench/ddp_cpu.py --write             # also replace the ddp-cpu section of bench/RESULTS.md

Both configurations are ``rfcalc train`` in fresh processes with ``--aug fast`` (no DataLoader workers competing
for the cores), the same spec, subset, seed and global batch; they alternate within each repeat, and the figure
of a run is the images/s of its last epoch's training loop. The verdict is the median of the paired ratios (each
DDP run over the single-process run of the same repeat), since a shared machine's speed drifts from minute to
minute.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from ddp_scaling import DEFAULT_DATA, DEFAULT_SPEC, ROOT, measure, run, train_command
from results_file import write_section  # bench/ is the scripts' own folder

CONFIGS = {  # name: (description, ranks, OMP threads per process); "one" is the reference of the paired ratios
    "one": ("1 process x 2 threads", 1, 2),
    "ddp": ("2 ranks x 1 thread (gloo, rfcalc train --nproc-per-node 2)", 2, 1),
    "one-thread": ("1 process x 1 thread (what each rank has)", 1, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--global-batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the ddp-cpu section of bench/RESULTS.md")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, (_, ranks, threads) in CONFIGS.items():
                out = Path(tmp) / f"{name}-{repeat}"
                run(train_command(args.spec, args.data, out, ranks=ranks, device="cpu",
                                  global_batch=args.global_batch, epochs=args.epochs, images=args.images,
                                  extra=["--test-limit", "1000"]), env={"OMP_NUM_THREADS": str(threads)})
                results[name].append(measure(out))
                print(f"repeat {repeat + 1}: {name}: {results[name][-1]['images_per_s']:,.0f} img/s "
                      f"({results[name][-1]['device']})", file=sys.stderr, flush=True)
    text = report(args, results, load)
    sys.stdout.write(text)
    if args.write:
        write_section("ddp-cpu", text)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], load: float) -> str:
    import torch

    single = [r["images_per_s"] for r in results["one"]]
    spec = args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec
    lines = ["## DDP on the CPU: 2 ranks x 1 thread vs 1 process x 2 threads", "",
             f"`python bench/ddp_cpu.py --images {args.images} --global-batch {args.global_batch} --epochs "
             f"{args.epochs} --repeats {args.repeats}` on **cpu ({os.cpu_count()} cores)**, torch "
             f"{torch.__version__}; `{spec}`, `--aug fast`, the same {args.images:,}-image subset and global batch "
             f"{args.global_batch}; images/s of the last epoch's training loop; load average {load:.1f} when it "
             f"began.", "",
             "| run | images/s (median) | every run | paired ratio, each repeat | paired ratio (median) |",
             "|---|---:|---|---|---:|"]
    for name, (description, _, _) in CONFIGS.items():
        values = [r["images_per_s"] for r in results[name]]
        paired = [a / b for a, b in zip(values, single)]
        verdict = f"**{statistics.median(paired):.2f}x**" if name != "one" else "-"
        lines.append(f"| {description} | {statistics.median(values):,.0f} | {', '.join(f'{v:,.0f}' for v in values)}"
                     f" | {', '.join(f'{p:.2f}x' for p in paired)} | {verdict} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
