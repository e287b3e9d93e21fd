"""`register(app)`: adds `train`, `evaluate` and `lr-find` to the rfcalc command line.

Importing this module imports neither torch, numpy nor albumentations (`rfcalc table` stays fast); each
command checks the `train` extra and imports the trainer inside its body.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rfcalc.cli.common import console, guarded, require_extra
from rfcalc.cli.outputs import output_folder
from rfcalc.errors import RfcalcError

SPEC = Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML).")]
DATA = Annotated[str | None, typer.Option(
    "--data", metavar="DATA",
    help="Image folder (train/<class>/*, test/<class>/*), CIFAR python folder or .tar.gz, or cifar10 / cifar100 "
         "(downloaded into $RFCALC_CACHE). Decoded once into $RFCALC_CACHE (default ~/.cache/rfcalc). "
         "Default: the spec's train.data, else CIFAR.")]
DEVICE = Annotated[str | None, typer.Option("--device", metavar="DEVICE",
                                               help="auto, cpu, cuda, cuda:N or mps (default: auto)")]
BATCH = Annotated[int | None, typer.Option("--batch-size", metavar="N",
                                              help="Images per batch (default: spec, else 256).")]
OUT = Annotated[str | None, typer.Option("--out", metavar="FOLDER",
                                            help="Output folder (default: runs/<spec name>).")]
TRAIN_LIMIT = Annotated[int | None, typer.Option(
    "--train-limit", metavar="N", help="Train on N images: a fixed random subset, the same for every --seed (the "
                                       "first run still decodes the whole data set into the cache).")]
TEST_LIMIT = Annotated[int | None, typer.Option("--test-limit", metavar="N",
                                                   help="Evaluate on N test images: a fixed random subset.")]
AUG = Annotated[str | None, typer.Option(
    "--aug", metavar="albumentations|fast",
    help="albumentations (per-image, in worker processes) or fast (batched on the device) (default: spec, else "
         "albumentations).")]


def _need_extras(aug: str | None = None) -> None:
    for module in ("torch", "numpy", "matplotlib", "cv2"):
        require_extra(module, "train")
    if aug != "fast":
        require_extra("albumentations", "train")


def _one_process(command: str) -> None:
    """`evaluate` and `lr-find` run in one process: under torchrun every rank would do the same work."""
    from rfcalc.trainer.distributed import World

    world = World.from_env()
    if world.distributed:
        raise RfcalcError(f"rank {world.rank}: rfcalc {command} runs in one process; start it without torchrun "
                          f"(only `rfcalc train` runs on many)")


def train(
    spec: SPEC,
    data: DATA = None,
    epochs: Annotated[int | None, typer.Option("--epochs", metavar="N",
                                                  help="Epochs (default: spec, else 20).")] = None,
    batch_size: BATCH = None,
    lr: Annotated[float | None, typer.Option("--lr", metavar="LR",
                                                help="Peak learning rate (default: spec, else 0.2).")] = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", metavar="sgd|adamw",
        help="sgd (with Nesterov momentum) or adamw (default: spec, else sgd).")] = None,
    device: DEVICE = None,
    out: OUT = None,
    train_limit: TRAIN_LIMIT = None,
    test_limit: TEST_LIMIT = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N",
                                                help="Random seed (default: spec, else 0).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="FILE.pt",
                                                   help="Continue a run from its last.pt.")] = None,
    skip_check: Annotated[bool, typer.Option("--skip-check", help="Train even when `rfcalc check` fails.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the run already in --out (without it, a new run refuses such a folder).")
    ] = False,
    aug: AUG = None,
    workers: Annotated[int | None, typer.Option("--workers", metavar="N", help="DataLoader workers (albumentations) "
                                                                     "(default: spec, else 2).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    cuda_graph: Annotated[bool, typer.Option(
        "--cuda-graph/--no-cuda-graph", help="On a CUDA GPU: replay the whole training step as one CUDA graph "
                                             "(default), or take eager steps.")] = True,
    nproc_per_node: Annotated[int | None, typer.Option(
        "--nproc-per-node", metavar="N",
        help="Train with PyTorch's distributed data parallel (DDP) on N processes of this machine (one per GPU; "
             "gloo on the CPU), "
             "launched like torchrun. --batch-size is per process.")] = None,
    max_restarts: Annotated[int, typer.Option(
        "--max-restarts", metavar="N",
        help="With --nproc-per-node: restart all processes up to N times after a failure; they resume from "
             "last.pt.")] = 0,
    sync_bn: Annotated[bool | None, typer.Option(
        "--sync-bn/--no-sync-bn", help="Under DDP: BatchNorm statistics over the global batch (default) or per "
                                       "process.")] = None,
    dist_timeout: Annotated[int | None, typer.Option(
        "--dist-timeout", metavar="SECONDS",
        help="Under DDP: seconds a rank waits for a silent peer before it stops (default: 300).")] = None,
) -> None:
    """Train the spec's module: check, table, progress, and the run's files in --out.

    Writes metrics.jsonl, summary.json, last.pt / best.pt, curves.png, misclassified.png and confusion.png.

    Many processes: --nproc-per-node N here, or torchrun --nproc-per-node N -m rfcalc train ... (also across
    machines); rank 0 prints and writes.

    Exit 0 when done, 1 when the check fails or the loss becomes NaN, 2 on bad input, 130 on Ctrl-C or SIGTERM
    (last.pt is saved; the message gives the --resume command).
    """
    if out is not None:
        output_folder("--out", Path(out))
    _need_extras(aug)
    from rfcalc.trainer.distributed import Silent
    from rfcalc.trainer.run import train as run_train

    if dist_timeout is not None and dist_timeout < 1:
        raise RfcalcError(f"--dist-timeout {dist_timeout}: must be >= 1 (seconds)")
    flags = {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "aug": aug,
             "workers": workers, "optimizer": optimizer}
    try:
        if nproc_per_node is not None:
            argv = worker_argv(spec, {**flags, "device": device, "out": out, "train_limit": train_limit,
                                      "test_limit": test_limit, "resume": resume, "sync_bn": sync_bn,
                                      "dist_timeout": dist_timeout},
                               skip_check=skip_check, compile=compile, overwrite=overwrite)
            _launch(spec, argv, nproc_per_node, max_restarts, flags=flags, device=device, out=out, resume=resume,
                    train_limit=train_limit, test_limit=test_limit, skip_check=skip_check, overwrite=overwrite)
            return
        if max_restarts:
            raise RfcalcError("--max-restarts needs --nproc-per-node (under torchrun, use torchrun's own "
                              "--max-restarts)")
        run_train(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=test_limit,
                  resume=resume, skip_check=skip_check, compile=compile, console=console(),
                  err=console(stderr=True), sync_bn=sync_bn, dist_timeout=dist_timeout, overwrite=overwrite,
                  cuda_graph=cuda_graph)
    except Silent as exc:  # another rank (or the workers) said what went wrong
        raise typer.Exit(int(exc.exit_code)) from None


# The flags a worker of `--nproc-per-node` gets again, in the order of the command line.
WORKER_FLAGS = {"data": "--data", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr",
                "device": "--device", "out": "--out", "train_limit": "--train-limit", "test_limit": "--test-limit",
                "seed": "--seed", "resume": "--resume", "aug": "--aug", "workers": "--workers",
                "dist_timeout": "--dist-timeout", "optimizer": "--optimizer"}


def worker_argv(spec: Path, values: dict[str, object], *, skip_check: bool, compile: bool,
                overwrite: bool = False) -> list[str]:
    """``train SPEC --flag value ...``: the command line every worker of ``--nproc-per-node`` runs."""
    argv = ["train", str(spec)]
    for key, flag in WORKER_FLAGS.items():
        if values.get(key) is not None:
            argv += [flag, str(values[key])]
    if values.get("sync_bn") is not None:
        argv.append("--sync-bn" if values["sync_bn"] else "--no-sync-bn")
    argv += ["--skip-check"] * skip_check + ["--compile"] * compile + ["--overwrite"] * overwrite
    return argv


def _launch(spec: Path, argv: list[str], nproc: int, max_restarts: int, *, flags: dict[str, Any],
            device: str | None, out: str | None, resume: Path | None, train_limit: int | None,
            test_limit: int | None, skip_check: bool, overwrite: bool = False) -> None:
    """Check what can be checked once (spec, flags, devices), then start the workers."""
    import rfcalc
    from rfcalc.trainer.launch import check_launch, launch
    from rfcalc.trainer.options import check_device, check_limit, resolve
    from rfcalc.trainer.run import check_out_free

    check_launch(nproc, max_restarts, device)
    loaded = rfcalc.load_spec(spec)
    check_device(device or "auto")
    check_limit("--train-limit", train_limit)
    check_limit("--test-limit", test_limit)
    if resume is not None:
        folder = Path(out) if out else Path(resume).parent
    else:
        folder = Path(resolve(loaded, flags=flags, device=device, out=out, train_limit=train_limit,
                              test_limit=test_limit, skip_check=skip_check).out)
        check_out_free(str(folder), given=out is not None, overwrite=overwrite, remove=False)  # before any worker
    launch(argv, nproc=nproc, max_restarts=max_restarts, out=folder, spec_path=spec)


def evaluate(
    spec: SPEC,
    weights: Annotated[Path, typer.Option("--weights", metavar="FILE.pt",
                                          help="A checkpoint (best.pt, last.pt) or a state_dict.")],
    data: DATA = None,
    tta: Annotated[bool, typer.Option("--tta", help="Average with the mirror image (flip TTA).")] = False,
    device: DEVICE = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", metavar="N", help="Images per batch (default: 64 on the CPU, 1000 elsewhere).")] = None,
    test_limit: TEST_LIMIT = None,
) -> None:
    """Accuracy and per-class accuracy of a checkpoint on the test split.

    Exit 0 when done, 2 on bad input (the spec, --weights, --data, a flag), 130 on Ctrl-C.
    """
    _need_extras("fast")
    _one_process("evaluate")
    import rfcalc
    from rfcalc.model.weights import read_checkpoint
    from rfcalc.trainer.checkpoint_eval import evaluate_checkpoint
    from rfcalc.trainer.options import check_device, check_limit
    from rfcalc.trainer.run import check_fits, notices

    check_device(device or "auto")
    check_limit("--test-limit", test_limit)
    check_limit("--batch-size", batch_size)
    # before the data: a checkpoint of another spec is refused at once, naming the spec it belongs to
    check_fits(rfcalc.load_spec(spec), read_checkpoint(weights), weights, notices(console(stderr=True)),
               command="evaluate")
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
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="Random seed.")] = None,
) -> None:
    """The LR range test: writes lr_find.png and prints the steepest-descent and min-loss/10 learning rates.

    Exit 0 when done, 2 on bad input (the spec, --data, --out, a flag), 130 on Ctrl-C.
    """
    if out is not None:
        output_folder("--out", Path(out))
    _need_extras(aug)
    _one_process("lr-find")
    from rfcalc.trainer.lr_find import find_lr

    flags = {"data": data, "batch_size": batch_size, "aug": aug, "seed": seed}
    find_lr(spec, flags=flags, device=device, out=out, train_limit=train_limit, start=start_lr, end=end_lr,
            steps=steps, console=console(), err=console(stderr=True))


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to ``app``."""
    app.command(name="train")(guarded(train))
    app.command(name="evaluate")(guarded(evaluate))
    app.command(name="lr-find")(guarded(lr_find))
