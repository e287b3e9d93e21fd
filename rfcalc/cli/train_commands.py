"""`register(app)`: adds `train`, `evaluate` and `lr-find` to the rfcalc command line.

Importing this module imports neither torch, numpy nor albumentations (`rfcalc table` stays fast); each
command checks the `train` extra and imports the trainer inside its body.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rfcalc.cli.common import console, guarded, require_extra
from rfcalc.cli.outputs import output_folder

SPEC = Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML).")]
DATA = Annotated[Optional[str], typer.Option(
    "--data", metavar="DATA",
    help="Image folder (train/<class>/*, test/<class>/*), CIFAR python folder or .tar.gz, or cifar10 / cifar100 "
         "(downloaded into $RFCALC_CACHE). Decoded once into $RFCALC_CACHE (default ~/.cache/rfcalc). "
         "Default: the spec's train.data, else CIFAR.")]
DEVICE = Annotated[Optional[str], typer.Option("--device", metavar="DEVICE",
                                               help="auto, cpu, cuda, cuda:N or mps (default: auto)")]
BATCH = Annotated[Optional[int], typer.Option("--batch-size", metavar="N",
                                              help="Images per batch (default: spec, else 256).")]
OUT = Annotated[Optional[str], typer.Option("--out", metavar="FOLDER",
                                            help="Output folder (default: runs/<spec name>).")]
TRAIN_LIMIT = Annotated[Optional[int], typer.Option(
    "--train-limit", metavar="N", help="Train on N images: a fixed random subset, the same for every --seed (the "
                                       "first run still decodes the whole data set into the cache).")]
TEST_LIMIT = Annotated[Optional[int], typer.Option("--test-limit", metavar="N",
                                                   help="Evaluate on N test images: a fixed random subset.")]
AUG = Annotated[Optional[str], typer.Option(
    "--aug", metavar="albumentations|fast",
    help="albumentations (per-image, in worker processes) or fast (batched on the device) (default: spec, else "
         "albumentations).")]


def _need_extras(aug: str | None = None) -> None:
    for module in ("torch", "numpy", "matplotlib", "cv2"):
        require_extra(module, "train")
    if aug != "fast":
        require_extra("albumentations", "train")


def train(
    spec: SPEC,
    data: DATA = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", metavar="N",
                                                  help="Epochs (default: spec, else 20).")] = None,
    batch_size: BATCH = None,
    lr: Annotated[Optional[float], typer.Option("--lr", metavar="LR",
                                                help="Peak learning rate (default: spec, else 0.2).")] = None,
    device: DEVICE = None,
    out: OUT = None,
    train_limit: TRAIN_LIMIT = None,
    test_limit: TEST_LIMIT = None,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="N",
                                                help="Random seed (default: spec, else 0).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", metavar="FILE.pt",
                                                   help="Continue a run from its last.pt.")] = None,
    skip_check: Annotated[bool, typer.Option("--skip-check", help="Train even when `rfcalc check` fails.")] = False,
    aug: AUG = None,
    workers: Annotated[Optional[int], typer.Option("--workers", metavar="N", help="DataLoader workers (albumentations) "
                                                                     "(default: spec, else 2).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
) -> None:
    """Train the spec's module: check, table, progress, and the run's files in --out.

    Writes metrics.jsonl, summary.json, last.pt / best.pt, curves.png, misclassified.png and confusion.png.

    Exit 0 when done, 1 when the check fails or the loss becomes NaN, 2 on bad input, 130 on Ctrl-C
    (last.pt is saved; the message gives the --resume command).
    """
    if out is not None:
        output_folder("--out", Path(out))
    _need_extras(aug)
    from rfcalc.trainer.run import train as run_train

    flags = {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "aug": aug,
             "workers": workers}
    run_train(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=test_limit,
              resume=resume, skip_check=skip_check, compile=compile, console=console(), err=console(stderr=True))


def evaluate(
    spec: SPEC,
    weights: Annotated[Path, typer.Option("--weights", metavar="FILE.pt",
                                          help="A checkpoint (best.pt, last.pt) or a state_dict.")],
    data: DATA = None,
    tta: Annotated[bool, typer.Option("--tta", help="Average with the mirror image (flip TTA).")] = False,
    device: DEVICE = None,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", help="Images per batch.")] = 1000,
    test_limit: TEST_LIMIT = None,
) -> None:
    """Accuracy and per-class accuracy of a checkpoint on the test split.

    Exit 0 when done, 2 on bad input (the spec, --weights, --data, a flag), 130 on Ctrl-C.
    """
    _need_extras("fast")
    from rfcalc.trainer.checkpoint_eval import evaluate_checkpoint
    from rfcalc.trainer.options import check_device, check_limit

    check_device(device or "auto")
    check_limit("--test-limit", test_limit)
    check_limit("--batch-size", batch_size)
    evaluate_checkpoint(spec, weights, data=data, tta=tta, device=device or "auto", batch_size=batch_size,
                        test_limit=test_limit, console=console(), err=console(stderr=True))


def lr_find(
    spec: SPEC,
    data: DATA = None,
    batch_size: BATCH = None,
    device: DEVICE = None,
    out: OUT = None,
    train_limit: TRAIN_LIMIT = None,
    aug: AUG = None,
    start_lr: Annotated[float, typer.Option("--start-lr", metavar="LR", help="First learning rate.")] = 1e-5,
    end_lr: Annotated[float, typer.Option("--end-lr", metavar="LR", help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", metavar="N", help="Batches (one lr each).")] = 100,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="N", help="Random seed.")] = None,
) -> None:
    """The LR range test: writes lr_find.png and prints the steepest-descent and min-loss/10 learning rates.

    Exit 0 when done, 2 on bad input (the spec, --data, --out, a flag), 130 on Ctrl-C.
    """
    if out is not None:
        output_folder("--out", Path(out))
    _need_extras(aug)
    from rfcalc.trainer.lr_find import find_lr

    flags = {"data": data, "batch_size": batch_size, "aug": aug, "seed": seed}
    find_lr(spec, flags=flags, device=device, out=out, train_limit=train_limit, start=start_lr, end=end_lr,
            steps=steps, console=console(), err=console(stderr=True))


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to ``app``."""
    app.command(name="train")(guarded(train))
    app.command(name="evaluate")(guarded(evaluate))
    app.command(name="lr-find")(guarded(lr_find))
