"""`rfcalc train` from start to end: spec, check, options (or a checkpoint to resume), data, the run.

Also the pieces the other commands share: loading data that fits a spec, and the one-line notices.
"""
from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

import rfcalc
from rfcalc.errors import ExitCode, RfcalcError, SpecError
from rfcalc.lines import print_parts
from rfcalc.trainer.data import ImageSet, check_data, fitting_data
from rfcalc.trainer.distributed import DEFAULT_TIMEOUT, Agreed, Comm, World, attend, connect, launch_command, report
from rfcalc.trainer.options import RunOptions, check_device, check_limit, resolve

# Flags that a resumed run may change: they do not change what is computed.
RESUME_FREE = ("device", "out", "data", "workers", "compile", "cuda_graph")
# The files a run writes into --out; a folder holding any of them holds a run that a new one would overwrite.
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "summary.json", "curves.png", "misclassified.png",
             "confusion.png")


def check_out_free(out: str, *, given: bool, overwrite: bool, remove: bool) -> None:
    """A new run never mixes its files with an earlier run's: refused when ``out`` holds one, unless
    ``overwrite`` (then ``remove`` deletes the earlier run's files, so that none of them is left behind)."""
    folder = Path(out)
    found = [name for name in RUN_FILES if (folder / name).is_file()]
    if not found:
        return
    if not overwrite:
        where = f"--out {out}" if given else f"{out} (the default --out)"
        resume = f"; continue it with --resume {folder / 'last.pt'}" if "last.pt" in found else ""
        raise RfcalcError(f"{where} holds an earlier run ({', '.join(found)}){resume}; start a new one with another "
                          f"--out, or replace it with --overwrite")
    if remove:
        for name in found:
            (folder / name).unlink(missing_ok=True)


def notices(err: Console) -> Any:
    """``say(message)``: a notice on stderr, wrapped between words on a terminal (one line in a log)."""
    return lambda message: print_parts(err, message.split(" "), sep=" ", markup=False)


def check_or_stop(spec: Any, err: Console) -> None:
    """`rfcalc check` on the spec; a failing rule stops the run with the check's report (exit 1)."""
    result = rfcalc.check(spec)
    if result.ok:
        if result.rules:
            parts = [rule.message for rule in result.rules]
            print_parts(err, [f"check: {parts[0]}", *parts[1:]], markup=False)
        return
    err.print(f"{result.file} ({result.name}): FAIL", highlight=False, markup=False)
    for rule in result.rules:
        err.print(f"  {rule.message}", highlight=False, markup=False)
    raise RfcalcError("the spec fails its constraints (above); fix the spec, or train anyway with --skip-check",
                      ExitCode.FAILED)


def check_augmentations(spec: Any, options: RunOptions, say: Any) -> None:
    """Build the albumentations pipeline once before any data is read: a bad transform fails at once, located."""
    if options.config.aug != "albumentations":
        return
    from rfcalc.trainer.augment import AugmentationError, build_pipeline

    c, h, w = spec.input_shape
    try:
        build_pipeline(options.config.steps(), (0.5,) * c, (h, w, c), say)
    except AugmentationError as exc:
        raise RfcalcError(_located(spec, exc), exc.exit_code) from None


def _located(spec: Any, exc: Any) -> str:
    """``file:line:col: message`` when the transform comes from the spec file."""
    if spec.train is None or "augmentations" not in spec.train.model_fields_set or not Path(spec.file).is_file():
        return str(exc)
    from rfcalc.spec.source import parse_yaml, read_spec_text

    _, source = parse_yaml(read_spec_text(Path(spec.file)), spec.file)
    item = spec.data["train"]["augmentations"][exc.index]
    key: tuple[Any, ...] = ("train", "augmentations", exc.index)
    if isinstance(item, dict) and "name" not in item:
        key += (next(iter(item)),)
    if exc.key:
        key += (exc.key,)
    line, column = source.locate(key, at_key=exc.key is not None)
    return f"{spec.file}:{line}:{column}: {exc}"


def resume_options(ckpt: dict[str, Any], path: Path, given: dict[str, Any]) -> RunOptions:
    """The checkpoint's options; flags that would change the run are refused, the others replace them."""
    if "resume" not in ckpt:
        raise RfcalcError(f"--resume {path}: this checkpoint has no training state (best.pt holds weights only); "
                          f"resume from last.pt")
    options = RunOptions.from_dict(ckpt["resume"]["options"])
    config, fields = options.config.model_dump(), options.to_dict()
    for key, value in given.items():
        if value is None or key in RESUME_FREE:
            continue
        saved = config.get(key, fields.get(key))
        if value != saved:
            flag = "--" + key.replace("_", "-")
            raise RfcalcError(f"{flag} {value}: the run in {path} used {saved}; a resumed run keeps its options "
                              f"(leave {flag} out, or start a new run)")
    config_update = {k: given[k] for k in ("data", "workers") if given.get(k) is not None}
    update: dict[str, Any] = {k: given[k] for k in ("device", "compile", "cuda_graph") if given.get(k) is not None}
    update["out"] = given.get("out") or str(path.parent)
    update["config"] = options.config.model_copy(update=config_update)
    return RunOptions(**{**options.__dict__, **update})


def restart_checkpoint(world: World, options: RunOptions) -> tuple[dict[str, Any], Path] | None:
    """After torchrun restarted the workers (``--max-restarts``): the ``last.pt`` this job wrote, if it wrote one
    (a ``last.pt`` left in ``--out`` by another run is not resumed)."""
    from rfcalc.model.weights import read_checkpoint

    path = Path(options.out) / "last.pt"
    if world.restart == 0 or not world.run_id or not path.is_file():
        return None
    ckpt = read_checkpoint(path)
    return (ckpt, path) if ckpt.get("resume", {}).get("run_id") == world.run_id else None


def startup_facts(spec: Any, options: RunOptions, ckpt: dict[str, Any] | None) -> dict[str, Any]:
    """What every rank must agree on before training: spec, options that change the computation, resume point."""
    config = options.config.model_dump(mode="json", exclude={"data", "workers"})
    fields = {k: v for k, v in options.to_dict().items() if k not in ("config", "device", "out")}
    digest = hashlib.sha256(json.dumps([config, fields], sort_keys=True).encode()).hexdigest()[:12]
    resume = None if ckpt is None else f"epoch {ckpt['epoch']}, batch {ckpt['batch']}"
    return {"spec": spec.digest, "file": str(spec.file), "options": digest, "resume": resume,
            "host": socket.gethostname()}


def compare_ranks(comm: Comm, facts: dict[str, Any]) -> None:
    """Every rank's facts must be rank 0's: else one line naming the first rank that differs (exit 2)."""
    everyone = comm.gather(facts)
    for key, what, fix in (
            ("spec", "specs", "give every node the same spec file"),
            ("options", "training options", "give every rank the same flags"),
            ("resume", "resume points", "put --out on a filesystem every node shares, or copy last.pt to every "
                                        "node")):
        values = [f[key] for f in everyone]
        other = next((r for r, v in enumerate(values) if v != values[0]), None)
        if other is None:
            continue

        def say(r: int) -> str:
            value = everyone[r][key] if key != "spec" else f"{everyone[r]['file']} (digest {everyone[r]['spec']})"
            return f"rank {r} ({everyone[r]['host']}) has {value if value is not None else 'none'}"

        raise Agreed(f"the ranks loaded different {what}: {say(0)}, {say(other)}; {fix}")


def data_facts(images: ImageSet) -> tuple[Any, ...]:
    return (len(images.train_y), len(images.test_y), tuple(images.classes), tuple(images.mean), tuple(images.std))


def distributed_data(spec: Any, options: RunOptions, comm: Comm, say: Any) -> ImageSet:
    """The data on every rank: local rank 0 of each node first (it decodes into the node's cache), then the
    others from the cache; every rank must hold the same images."""
    world = comm.world
    source = options.config.data or "cifar10"
    images = comm.first_on_each_node(
        lambda: fitting_data(spec, source, say, options.train_limit, options.test_limit), "loading the data")
    everyone = comm.gather(data_facts(images), during="start-up")
    other = next((r for r, facts in enumerate(everyone) if facts != everyone[0]), None)
    if other is not None:
        def text(facts: tuple[Any, ...]) -> str:
            return f"{facts[0]:,} train / {facts[1]:,} test images, mean {list(facts[3])}"

        raise Agreed(f"the ranks loaded different data: rank 0 has {text(everyone[0])}, rank {other} has "
                     f"{text(everyone[other])}; give every node the same data set")
    if len(images.train_y) < world.size:
        raise Agreed(f"{len(images.train_y)} training image(s) for {world.size} ranks: each rank needs at least one "
                     f"image per batch (raise --train-limit)")
    return images


@dataclass
class Prepared:
    """A run checked and ready before any process group: its spec, options and checkpoint to resume (if any)."""

    spec: Any
    options: RunOptions
    ckpt: dict[str, Any] | None
    resume_path: Path | None


def train(spec_path: Path, *, flags: dict[str, Any], device: str | None, out: str | None, train_limit: int | None,
          test_limit: int | None, resume: Path | None, skip_check: bool, compile: bool, console: Console,
          err: Console, sync_bn: bool | None = None, dist_timeout: float | None = None,
          overwrite: bool = False, cuda_graph: bool = True) -> dict[str, Any]:
    """``rfcalc train``, in one process or as one rank of torchrun (rank 0 alone prints and writes)."""
    world = World.from_env()
    if not world.main:
        console, err = Console(quiet=True), Console(quiet=True, stderr=True)
    say = notices(err)
    try:
        # the restart count every rank agrees on (no store named: `connect` says so, after the input's errors)
        world, store = attend(world, dist_timeout or DEFAULT_TIMEOUT, required=False)
        run = prepare(world, spec_path, flags=flags, device=device, out=out, train_limit=train_limit,
                      test_limit=test_limit, resume=resume, skip_check=skip_check, compile=compile, sync_bn=sync_bn,
                      say=say, err=err, overwrite=overwrite, cuda_graph=cuda_graph)
        from rfcalc.render import report as render

        console.print(render.rich_table(run.spec.report))
        comm = connect(world, run.options.device, dist_timeout or DEFAULT_TIMEOUT, store)
    except (RfcalcError, SpecError) as exc:
        raise report(exc, world, connected=False) from None
    try:
        return train_connected(run, comm, spec_path, console, say)
    except (RfcalcError, SpecError) as exc:
        if getattr(exc, "everywhere", False):
            comm.settle()  # no rank exits before rank 0 has written and said everything
        raise report(exc, world, connected=True) from None
    finally:
        comm.close()


def prepare(world: World, spec_path: Path, *, flags: dict[str, Any], device: str | None, out: str | None,
            train_limit: int | None, test_limit: int | None, resume: Path | None, skip_check: bool, compile: bool,
            sync_bn: bool | None, say: Any, err: Console, overwrite: bool = False,
            cuda_graph: bool = True) -> Prepared:
    """Spec, options (or the checkpoint's), the restart's own last.pt, the check and the augmentations."""
    from rfcalc.model.weights import read_checkpoint

    spec = rfcalc.load_spec(spec_path)
    check_device(device or "auto")
    check_limit("--train-limit", train_limit)
    check_limit("--test-limit", test_limit)
    given = {**flags, "device": device, "out": out, "train_limit": train_limit, "test_limit": test_limit,
             "compile": compile or None, "sync_bn": sync_bn, "cuda_graph": cuda_graph}
    ckpt = None
    if resume is not None:
        ckpt = read_checkpoint(resume)
        options = resume_options(ckpt, Path(resume), given)
    else:
        options = resolve(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=test_limit,
                          compile=compile, skip_check=skip_check, sync_bn=sync_bn, cuda_graph=cuda_graph)
    restart = restart_checkpoint(world, options)
    if restart is not None:
        ckpt, resume = restart
        options = resume_options(ckpt, resume, given)
        say(f"notice: restart {world.restart} (torchrun --max-restarts): resuming from {resume}")
    elif world.restart:
        say(f"notice: restart {world.restart} (torchrun --max-restarts): no checkpoint of this job yet; starting "
            f"{'from ' + str(resume) if resume else 'again'}")
    if ckpt is not None:
        check_fits(spec, ckpt, Path(resume or ""), say, command="train")
        check_world(ckpt, Path(resume or ""), world, options)
    if ckpt is None and not world.restart:  # a torchrun restart continues its own run in the same folder
        check_out_free(options.out, given=out is not None, overwrite=overwrite, remove=world.rank == 0)
    check_data(options.config.data or "cifar10")  # a wrong --data stops here, before the check and the table
    if not (skip_check or options.skip_check):
        check_or_stop(spec, err)
    check_augmentations(spec, options, say)
    return Prepared(spec, options, ckpt, Path(resume) if resume is not None else None)


def train_connected(run: Prepared, comm: Comm, spec_path: Path, console: Console, say: Any) -> dict[str, Any]:
    """The ranks agree on spec, options and data; then the run itself."""
    from rfcalc.trainer.loop import Interrupted, Trainer, describe

    spec, options, world = run.spec, run.options, comm.world
    compare_ranks(comm, startup_facts(spec, options, run.ckpt))
    if world.distributed:
        images = distributed_data(spec, options, comm, say)
    else:
        images = fitting_data(spec, options.config.data or "cifar10", say, options.train_limit, options.test_limit)
    trainer = Trainer(spec, options, images, console, say, resume=run.ckpt, resume_path=run.resume_path or "--resume",
                      comm=comm)
    line = f"training {spec.name}: {describe(trainer)}" + (f"; resuming at epoch {trainer.state.epoch + 1}, batch "
                                                           f"{trainer.state.batch + 1}" if run.ckpt else "")
    say(line)
    try:
        return trainer.fit()
    except Interrupted as exc:
        trainer.finish("interrupted", plots=False)
        command = launch_command(world, f"train {spec_path} --resume {exc.checkpoint_path}")
        raise Agreed(f"{exc}; continue with: {command}", exc.exit_code) from None


def check_fits(spec: Any, ckpt: dict[str, Any], path: Path, say: Any, *, command: str) -> None:
    """Before any work: a checkpoint of another spec is refused with the spec it belongs to (name, file, digest);
    one whose spec changed is used when every tensor still fits, with a notice."""
    saved: dict[str, Any] = ckpt["spec"] if isinstance(ckpt.get("spec"), dict) else {}
    if saved.get("digest") == spec.digest:
        return
    import torch

    from rfcalc.model.weights import first_mismatch, state_of

    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = rfcalc.build_model(spec).state_dict()
    problem = first_mismatch(expected, {k.removeprefix("_orig_mod."): v for k, v in state_of(ckpt).items()})
    now = f"spec '{spec.name}' ({spec.file}, digest {spec.digest})"
    if not saved:  # a bare state_dict: nothing says what it belongs to
        if problem is not None:
            raise RfcalcError(f"{path} does not fit {now}: {problem}")
        return
    file = saved.get("file")
    was = f"spec '{saved.get('name')}' ({f'{file}, ' if file else ''}digest {saved.get('digest')})"
    same = saved.get("name") == spec.name and file in (None, str(spec.file))
    if problem is None:
        say(f"notice: {spec.file} changed since {path} was written (digest {saved.get('digest')}, now "
            f"{spec.digest}); its tensors still fit" if same else
            f"notice: {path} was written for {was}; its tensors fit {now}")
        return
    if file is not None and file != str(spec.file):
        flag = "--resume" if command == "train" else "--weights"
        fix = f"use it with `rfcalc {command} {file} {flag} {path}`"
    else:  # an older checkpoint (no file recorded), or this very file since edited
        fix = ("use it with the spec as it was" if saved.get("name") == spec.name else
               f"use it with the file of spec '{saved.get('name')}'")
        fix += ", or start a new run without --resume" if command == "train" else ""
    raise RfcalcError(f"{path} was written for {was}, not {now}, and does not fit it ({problem}); {fix}")


def check_world(ckpt: dict[str, Any], path: Path, world: World, options: RunOptions) -> None:
    """A run resumes on as many ranks as it trained on: the global batch and each epoch's batches depend on it."""
    saved = int(ckpt.get("resume", {}).get("world_size", 1))
    if saved != world.size:
        batch = options.config.batch_size
        how = f"--nproc-per-node {saved} (or torchrun with {saved} ranks)" if saved > 1 else "one process"
        raise RfcalcError(f"--resume {path}: that run trained on {saved} rank(s) (global batch {saved * batch}), "
                          f"this one has {world.size}; resume it with {how}, or start a new run")
