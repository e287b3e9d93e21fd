"""The evaluation's batch size on the CPU: seconds per 10,000 test images with flip TTA, per batch size.

    python bench/eval_batch.py                         # rn32 (arch_specs/resnet_sep_cifar10.yaml), 4,000 images
    python bench/eval_batch.py --spec arch_specs/c1c2c3c4_cifar10.yaml --sizes 1000,500,250,125 --repeats 7

Why: on the 2-core CPU an epoch of resnet_sep_cifar10.yaml took about 140 s of which 105 s were training: the
evaluation (10,000 images, twice with TTA) took most of the rest, at about half the training's FLOP rate.
What it times: ``rfcalc.trainer.engine.evaluate_split`` (what every epoch and ``rfcalc evaluate`` call) on the
same random uint8 images (timing does not depend on the pixels), the batch sizes interleaved within each repeat,
one warm-up pass per size first. Reported: the median seconds per 10,000 images per size, and the median of the
paired ratios to the first size (each repeat's sizes ran one after another, under the same load).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", default=str(ROOT / "arch_specs/resnet_sep_cifar10.yaml"))
    p.add_argument("--sizes", default="1000,500,250,128,64", help="batch sizes; the first is the reference")
    p.add_argument("--images", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-tta", action="store_true")
    args = p.parse_args()

    import torch

    import rfcalc
    from rfcalc.spec.train import TrainConfig
    from rfcalc.trainer.batches import Normalizer
    from rfcalc.trainer.engine import Engine, evaluate_split, setup_backend

    device = torch.device("cpu")
    setup_backend(device, 0)
    spec = rfcalc.load_spec(Path(args.spec))
    engine = Engine(rfcalc.build_model(spec), TrainConfig(), device, total_steps=1)
    channels, height, width = spec.input_shape
    classes = spec.classes or 10
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.images, height, width, channels), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, classes, (args.images,), generator=gen)
    normalize = Normalizer((0.5,) * channels, (0.25,) * channels, device)
    sizes = [int(s) for s in args.sizes.split(",")]
    tta = not args.no_tta

    def timed(batch: int) -> float:
        started = time.perf_counter()
        evaluate_split(engine, x, y, normalize, classes, tta, batch_size=batch)
        return (time.perf_counter() - started) * 10_000 / args.images

    for batch in sizes:  # warm-up: allocator and oneDNN's kernels for each shape
        timed(batch)
    runs: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(args.repeats):
        for batch in sizes:
            runs[batch].append(timed(batch))
    ref = sizes[0]
    print(f"# {Path(args.spec).name}, {args.images:,} images, tta={tta}, {args.repeats} repeats; "
          f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print("| eval batch | s per 10,000 images (median) | paired ratio to batch " f"{ref} (median) | all runs, s |")
    print("|---|---|---|---|")
    for batch in sizes:
        ratios = [a / b for a, b in zip(runs[batch], runs[ref])]
        print(f"| {batch} | {statistics.median(runs[batch]):.1f} | {statistics.median(ratios):.2f} | "
              f"{' '.join(f'{t:.1f}' for t in runs[batch])} |")


if __name__ == "__main__":
    main()
