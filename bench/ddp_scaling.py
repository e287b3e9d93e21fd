"""DistributedDataParallel scaling: images/s and time to 85% test accuracy on 1, 2, ..., N GPUs (or CPU ranks).

    python bench/ddp_scaling.py --device cuda --ranks 1,2,4,8 --epochs 12 --write   # a GPU machine
    python bench/ddp_scaling.py --device cpu --ranks 1,2 --images 2000 --epochs 1   # CPU: that it runs

Every run is ``rfcalc train`` in a fresh process: one process for 1 rank, ``--nproc-per-node N`` otherwise, the
same spec, data, seed and **global** batch (``--global-batch``, split evenly: each rank trains on global / N
images per step). By the DDP oracle (tests/test_train_ddp.py) N ranks then take the same optimizer steps as one
process, so the accuracy curves agree and time to 85% measures throughput alone; the learning rate is the spec's
(no scaling is needed when the global batch does not change). ``--aug fast`` keeps the data on each device.

Reported per rank count: images/s of the training loop in the last epoch (evaluation excluded; all ranks
together), the speed-up over one rank and the scaling efficiency (speed-up / N), the seconds from the start
to the first epoch at 85% test accuracy (training and evaluation; "-" when not reached) and the final accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from results_file import write_section  # bench/ is the script's own folder
from shared_data import CIFAR

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = CIFAR
DEFAULT_SPEC = ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml"


def train_command(spec: Path, data: Path, out: Path, *, ranks: int, device: str, global_batch: int, epochs: int,
                  images: int | None, extra: list[str]) -> list[str]:
    """The ``rfcalc train`` command of one run with ``ranks`` ranks sharing ``global_batch``."""
    if global_batch % ranks:
        raise SystemExit(f"--global-batch {global_batch} does not split evenly over {ranks} ranks")
    command = [sys.executable, "-m", "rfcalc", "train", str(spec), "--skip-check", "--data", str(data), "--epochs",
               str(epochs), "--batch-size", str(global_batch // ranks), "--device", device, "--out", str(out),
               "--aug", "fast", *extra]
    if images:
        command += ["--train-limit", str(images)]
    if ranks > 1:
        command += ["--nproc-per-node", str(ranks)]
    return command


def measure(out: Path) -> dict[str, Any]:
    """A finished run's figures, read back from its summary.json and metrics.jsonl."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    reached = (summary.get("reached") or {}).get("85%")
    return {"images_per_s": rows[-1]["images_per_s"], "per_epoch": [r["images_per_s"] for r in rows],
            "to_85": reached["seconds"] if reached else None, "epoch_85": reached["epoch"] if reached else None,
            "final_acc": summary["final_test_acc"], "device": summary["device"],
            "ranks": (summary.get("distributed") or {}).get("world_size", 1)}


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "150", **(env or {})})
    if done.returncode:
        raise SystemExit(f"failed ({' '.join(command)}):\n{done.stderr[-3000:]}")


def table(results: dict[int, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per rank count, speed-up and efficiency against the smallest count measured."""
    base_ranks = min(results)
    base = results[base_ranks]["images_per_s"]
    lines = ["| ranks | images/s (last epoch) | speed-up | efficiency | s to 85% (epoch) | final test acc |",
             "|---:|---:|---:|---:|---|---:|"]
    for ranks, r in sorted(results.items()):
        speedup = r["images_per_s"] / base
        to_85 = f"{r['to_85']:,.1f} ({r['epoch_85']})" if r["to_85"] is not None else "-"
        lines.append(f"| {ranks} | {r['images_per_s']:,.0f} | {speedup:.2f}x | {speedup / (ranks / base_ranks):.0%} "
                     f"| {to_85} | {r['final_acc']:.2%} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--device", default="cuda", help="cuda (one GPU per rank) or cpu (gloo)")
    parser.add_argument("--ranks", default="1,2,4,8", help="comma-separated rank counts")
    parser.add_argument("--global-batch", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--images", type=int, default=None, help="training images (a fixed subset; default all)")
    parser.add_argument("--write", action="store_true", help="replace the ddp-scaling section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.ranks.split(",") if n]
    if args.device.startswith("cuda"):
        import torch

        available = torch.cuda.device_count()
        if max(counts) > available:
            raise SystemExit(f"--ranks {args.ranks}: this machine has {available} CUDA device(s)")
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in counts:
            out = Path(tmp) / f"ranks-{ranks}"
            run(train_command(args.spec, args.data, out, ranks=ranks, device=args.device,
                              global_batch=args.global_batch, epochs=args.epochs, images=args.images, extra=[]))
            results[ranks] = measure(out)
            r = results[ranks]
            print(f"{ranks} rank(s): {r['images_per_s']:,.0f} img/s, 85% "
                  f"{'at ' + format(r['to_85'], '.1f') + ' s' if r['to_85'] else 'not reached'}, final "
                  f"{r['final_acc']:.2%}", file=sys.stderr, flush=True)
    text = report(args, results)
    sys.stdout.write(text)
    if args.write:
        write_section("ddp-scaling", text)


def report(args: argparse.Namespace, results: dict[int, dict[str, Any]]) -> str:
    import torch

    device = results[min(results)]["device"]
    if args.device.startswith("cuda"):
        device = f"{torch.cuda.get_device_name(0)} x {max(results)}"
    spec = args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec
    lines = ["## DistributedDataParallel scaling", "",
             f"`python bench/ddp_scaling.py --device {args.device} --ranks {args.ranks} --global-batch "
             f"{args.global_batch} --epochs {args.epochs}{f' --images {args.images}' if args.images else ''}` on "
             f"**{device}** (torch {torch.__version__}); `{spec}`, `--aug fast`, the same global batch for every "
             f"rank count (so the same optimizer steps), images/s of the last epoch's training loop.", "",
             *table(results), ""]
    if not args.device.startswith("cuda"):
        lines += ["A CPU run: it shows that the script works end to end (1 process, then `--nproc-per-node`, gloo); "
                  "CPU ranks share the machine's cores, so this is not GPU scaling. To measure that, on a machine "
                  "with N GPUs: `python bench/ddp_scaling.py --device cuda --ranks 1,2,...,N --write`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
