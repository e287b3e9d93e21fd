"""`rfcalc train` from start to end: spec, check, options (or a checkpoint to resume), data, the run.

Also the pieces the other commands share: loading data that fits a spec, and the one-line notices.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

import rfcalc
from rfcalc.errors import ExitCode, RfcalcError
from rfcalc.trainer.data import ImageSet, load_data, subset
from rfcalc.trainer.options import RunOptions, check_device, check_limit, resolve

# Flags that a resumed run may change: they do not change what is computed.
RESUME_FREE = ("device", "out", "data", "workers", "compile")


def notices(err: Console) -> Any:
    return lambda message: err.print(message, highlight=False, soft_wrap=True, markup=False)


def check_or_stop(spec: Any, err: Console) -> None:
    """`rfcalc check` on the spec; a failing rule stops the run with the check's report (exit 1)."""
    result = rfcalc.check(spec)
    if result.ok:
        if result.rules:
            err.print("check: " + ", ".join(rule.message for rule in result.rules), highlight=False, markup=False,
                      soft_wrap=True)
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


def fitting_data(spec: Any, data: str, say: Any, train_limit: int | None = None,
                 test_limit: int | None = None) -> ImageSet:
    """The data set, checked against the spec: classes, the model's output size and the input shape."""
    images = load_data(data, channels=spec.input_shape[0], say=say)
    n = len(images.classes)
    if spec.classes is not None and spec.classes != n:
        raise RfcalcError(f"the spec says classes: {spec.classes}, but {images.source} has {n} classes "
                          f"({', '.join(images.classes[:4])}{', ...' if n > 4 else ''})")
    output = tuple(spec.report.output.out_shape)
    if output != (n,):
        raise RfcalcError(f"the model's output is {list(output)} per image, but {images.source} has {n} classes; "
                          f"end the spec with {{op: linear, out: {n}}} (or a conv to {n} channels and gap)")
    if tuple(spec.input_shape) != images.image_shape:
        raise RfcalcError(f"the spec's input is {list(spec.input_shape)} (channels, height, width), but the images "
                          f"of {images.source} are {list(images.image_shape)}")
    return subset(images, train_limit, test_limit)


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
    update: dict[str, Any] = {k: given[k] for k in ("device", "compile") if given.get(k) is not None}
    update["out"] = given.get("out") or str(path.parent)
    update["config"] = options.config.model_copy(update=config_update)
    return RunOptions(**{**options.__dict__, **update})


def train(spec_path: Path, *, flags: dict[str, Any], device: str | None, out: str | None, train_limit: int | None,
          test_limit: int | None, resume: Path | None, skip_check: bool, compile: bool, console: Console,
          err: Console) -> dict[str, Any]:
    from rfcalc.analysis import render
    from rfcalc.model.weights import read_checkpoint
    from rfcalc.trainer.loop import Interrupted, Trainer, describe

    say = notices(err)
    spec = rfcalc.load_spec(spec_path)
    check_device(device or "auto")
    check_limit("--train-limit", train_limit)
    check_limit("--test-limit", test_limit)
    ckpt = None
    if resume is not None:
        ckpt = read_checkpoint(resume)
        given = {**flags, "device": device, "out": out, "train_limit": train_limit, "test_limit": test_limit,
                 "compile": compile or None}
        options = resume_options(ckpt, Path(resume), given)
        if ckpt.get("spec", {}).get("digest") not in (None, spec.digest):
            say(f"notice: {spec.file} changed since {resume} was written (its tensors are checked one by one)")
    else:
        options = resolve(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=test_limit,
                          compile=compile, skip_check=skip_check)
    if not (skip_check or options.skip_check):
        check_or_stop(spec, err)
    check_augmentations(spec, options, say)
    console.print(render.rich_table(spec.report))
    images = fitting_data(spec, options.config.data or "cifar10", say, options.train_limit, options.test_limit)
    trainer = Trainer(spec, options, images, console, say, resume=ckpt, resume_path=resume or "--resume")
    say(f"training {spec.name}: {describe(trainer)}" + (f"; resuming at epoch {trainer.state.epoch + 1}, batch "
                                                        f"{trainer.state.batch + 1}" if ckpt else ""))
    try:
        return trainer.fit()
    except Interrupted as exc:
        trainer.finish("interrupted", plots=False)
        command = f"rfcalc train {spec_path} --resume {exc.checkpoint_path}"
        raise RfcalcError(f"{exc}; continue with: {command}", exc.exit_code) from None
