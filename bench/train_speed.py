"""Training speed: `rfcalc train` against the reports' own notebook loop, same model, same data, same run.

    python bench/train_speed.py                      # CPU: 5,000 images, 2 epochs, 3 alternating repeats
    python bench/train_speed.py --device cuda --images 50000 --epochs 3
    python bench/train_speed.py --write              # also replace the train-speed section of bench/RESULTS.md

Model: ``arch_specs/two_branch_dilated.yaml`` (seed 000's network, built by ``rfcalc.build_model``).
Data: the same fixed subset of ``../shared/datasets/cifar10-jpeg`` for every run (rfcalc's uint8 cache).

- **the reports' way** (seeds 000/001): images in in-memory arrays, per-sample albumentations (HorizontalFlip,
  ShiftScaleRotate, CoarseDropout, ToGray, Normalize, ToTensorV2) in a Dataset, a DataLoader with 2 workers and
  batch 128, SGD + OneCycleLR stepped per batch, ``loss.item()`` and the running accuracy every batch;
- **rfcalc train**, the same transforms from the spec's ``train:`` section (``--aug albumentations``), batch 128;
  then ``--aug fast`` (batched flip / translate / cutout on the device), batch 128; then rfcalc's defaults.

Every run is a fresh process; configurations alternate within each repeat (the machine is shared), and the
figure of a run is its images/s in the training loop (evaluation excluded) of its last epoch (the first pays
for worker start-up). Reported: the median over repeats and its ratio to the reports' way, and the paired
ratios (each run over the reports' run of the same repeat, which shared the machine's load of those minutes)
with their median: the verdict, since a shared machine's speed drifts by tens of percent from minute to minute.
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
from typing import Any

import yaml
from results_file import write_section  # bench/ is the script's own folder
from shared_data import CIFAR

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = CIFAR
REPORT_AUGS = [
    {"HorizontalFlip": {"p": 0.5}},
    {"ShiftScaleRotate": {"shift_limit": 0.1, "scale_limit": 0.1, "rotate_limit": 15, "p": 0.5}},
    {"CoarseDropout": {"num_holes_range": [1, 1], "hole_height_range": [16, 16], "hole_width_range": [16, 16],
                       "fill": "mean", "p": 0.5}},
    {"ToGray": {"p": 0.1}},
]


# ---------------------------------------------------------------- the reports' way (runs in its own process)


def reports_way(args: argparse.Namespace) -> dict[str, Any]:
    import albumentations as A
    import numpy as np
    import torch
    from albumentations.pytorch import ToTensorV2
    from torch.nn import functional as F

    import rfcalc
    from rfcalc.trainer.data import load_data, subset

    images = subset(load_data(str(args.data)), args.images, 1000)
    mean, std = images.mean, images.std
    steps = [A.HorizontalFlip(p=0.5),
             A.ShiftScaleRotate(shift_limit=0.1, scale_limit=0.1, rotate_limit=15, p=0.5),
             A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                             fill=tuple(255 * m for m in mean), p=0.5),
             A.ToGray(p=0.1), A.Normalize(mean=mean, std=std), ToTensorV2()]
    train_tf, test_tf = A.Compose(steps), A.Compose([A.Normalize(mean=mean, std=std), ToTensorV2()])

    class Cifar(torch.utils.data.Dataset):
        def __init__(self, x: np.ndarray, y: np.ndarray, tf: Any) -> None:
            self.x, self.y, self.tf = x, y, tf

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[Any, int]:
            return self.tf(image=self.x[i])["image"], int(self.y[i])

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(1)
    train = torch.utils.data.DataLoader(Cifar(images.train_x, images.train_y, train_tf), batch_size=128,
                                        shuffle=True, num_workers=2, pin_memory=cuda)
    test = torch.utils.data.DataLoader(Cifar(images.test_x, images.test_y, test_tf), batch_size=128, num_workers=2,
                                       pin_memory=cuda)
    model = rfcalc.build_model(rfcalc.load_spec(args.spec)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, epochs=args.epochs,
                                                    steps_per_epoch=len(train))
    per_epoch, accuracy = [], 0.0
    for _ in range(args.epochs):
        model.train()
        correct = processed = 0
        started = time.perf_counter()
        for data, target in train:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            y_pred = model(data)
            loss = F.cross_entropy(y_pred, target)
            loss.backward()
            optimizer.step()
            scheduler.step()
            pred = y_pred.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
            processed += len(data)
            _ = f"Loss={loss.item()} LR={scheduler.get_last_lr()[0]:0.5f} Accuracy={100 * correct / processed:0.2f}"
        if cuda:
            torch.cuda.synchronize()
        per_epoch.append(processed / (time.perf_counter() - started))
        model.eval()
        hits = 0
        with torch.no_grad():
            for data, target in test:
                hits += (model(data.to(device)).argmax(1) == target.to(device)).sum().item()
        accuracy = hits / len(images.test_y)
    return {"images_per_s": per_epoch, "test_acc": accuracy}


# ---------------------------------------------------------------- one measured run each


def bench_spec(spec: Path, folder: Path) -> Path:
    """The spec with a `train:` section holding the reports' transforms (same module: layers untouched)."""
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["train"] = {"augmentations": REPORT_AUGS, "workers": 2}
    path = folder / spec.name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_reports(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--reports-way", "--spec", str(args.spec), "--data", str(args.data),
               "--images", str(args.images), "--epochs", str(args.epochs), "--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the reports' way failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_rfcalc(args: argparse.Namespace, spec: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "rfcalc", "train", str(spec), "--skip-check", "--data", str(args.data),
               "--train-limit", str(args.images), "--test-limit", "1000", "--epochs", str(args.epochs), "--out",
               str(out), "--device", args.device, *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "150"})
    if done.returncode:
        raise SystemExit(f"rfcalc train failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"images_per_s": [r["images_per_s"] for r in rows], "test_acc": rows[-1]["test_acc"]}


CONFIGS: dict[str, tuple[str, list[str]]] = {
    "reports": ("the reports' way: per-sample albumentations in 2 workers, batch 128", []),
    "albumentations": ("rfcalc train --aug albumentations --batch-size 128 (same transforms, 2 workers)",
                       ["--aug", "albumentations", "--batch-size", "128"]),
    "fast": ("rfcalc train --aug fast --batch-size 128", ["--aug", "fast", "--batch-size", "128"]),
    "defaults": ("rfcalc train (its defaults: --aug albumentations, batch 256)", []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "arch_specs" / "two_branch_dilated.yaml")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=5000, help="training images (a fixed subset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--write", action="store_true", help="replace the train-speed section of bench/RESULTS.md")
    parser.add_argument("--reports-way", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reports_way:
        print(json.dumps(reports_way(args)))
        return
    names = [n for n in args.configs.split(",") if n]
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        spec = bench_spec(args.spec, Path(tmp))
        for repeat in range(args.repeats):
            for name in names:
                if name == "reports":
                    result = run_reports(args)
                else:
                    result = run_rfcalc(args, spec, Path(tmp) / f"{name}-{repeat}", CONFIGS[name][1])
                results[name].append(result)
                print(f"repeat {repeat + 1}: {name}: " + ", ".join(f"{v:,.0f}" for v in result["images_per_s"])
                      + f" img/s per epoch, test acc {result['test_acc']:.2%}", file=sys.stderr, flush=True)
    text = report(args, results)
    sys.stdout.write(text)
    if args.write:
        write_section("train-speed", text)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]]) -> str:
    import torch

    def last(runs: list[dict[str, Any]]) -> list[float]:
        return [r["images_per_s"][-1] for r in runs]

    base = statistics.median(last(results["reports"])) if "reports" in results else None
    device = args.device if args.device != "cpu" else f"cpu ({os.cpu_count()} cores, shared with other jobs)"
    if args.device.startswith("cuda"):
        device = torch.cuda.get_device_name(0)
    lines = [
        "## Training speed: rfcalc train vs the reports' own loop",
        "",
        f"`python bench/train_speed.py --device {args.device} --images {args.images} --epochs {args.epochs} "
        f"--repeats {args.repeats}` on **{device}** (torch {torch.__version__}). Model "
        f"`{args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec}` (built by "
        f"`rfcalc.build_model`), the same {args.images:,}-image subset of `../shared/datasets/cifar10-jpeg`; "
        f"images/s of the training loop in the last epoch of each run (evaluation excluded), median of "
        f"{args.repeats} alternating runs.",
        "",
        "| run | images/s (median) | every run | ratio of medians | paired ratio, each repeat "
        "| paired ratio (median) |",
        "|---|---:|---|---:|---|---:|",
    ]
    for name, runs in results.items():
        values = last(runs)
        median = statistics.median(values)
        ratio = f"{median / base:.2f}x" if base else "-"
        paired = paired_ratios(results, name)
        each = ", ".join(f"{r:.2f}x" for r in paired) if paired else "-"
        middle = f"**{statistics.median(paired):.2f}x**" if paired and name != "reports" else "-"
        lines.append(f"| {CONFIGS[name][0]} | {median:,.0f} | {', '.join(f'{v:,.0f}' for v in values)} | {ratio} "
                     f"| {each} | {middle} |")
    lines += ["", "A repeat runs every configuration once, one after the other; the paired ratio of a run is its "
              "images/s over the reports' run of the same repeat (the two shared the machine's load of those "
              "minutes), and the verdict is the median of those ratios."]
    return "\n".join(lines) + "\n"


def paired_ratios(results: dict[str, list[dict[str, Any]]], name: str) -> list[float]:
    """Each run of ``name`` over the reports' run of the same repeat (empty without the reports' way)."""
    if "reports" not in results:
        return []
    mine = [r["images_per_s"][-1] for r in results[name]]
    theirs = [r["images_per_s"][-1] for r in results["reports"]]
    return [a / b for a, b in zip(mine, theirs)]


if __name__ == "__main__":
    main()
