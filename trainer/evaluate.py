"""`rfcalc evaluate` and `rfcalc lr-find`: a checkpoint's accuracy per class, and the LR range test."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import rfcalc
from rfcalc.errors import RfcalcError
from trainer import checkpoint, plots
from trainer.batches import Normalizer, make_batches
from trainer.engine import Engine, autocast, device_name, evaluate, resolve_device, setup_backend
from trainer.lr_find import range_test
from trainer.options import RunOptions, merge_config, resolve_data
from trainer.progress import class_table
from trainer.run import check_augmentations, fitting_data, notices


def evaluate_checkpoint(spec_path: Path, weights: Path, *, data: str | None, tta: bool, device: str,
                        batch_size: int, test_limit: int | None, console: Console, err: Console) -> dict[str, Any]:
    spec = rfcalc.load_spec(spec_path)
    ckpt = checkpoint.read(weights)
    source = data or ckpt.get("data") or resolve_data(merge_config(spec.train, {}), spec)
    images = fitting_data(spec, source, notices(err), train_limit=1, test_limit=test_limit)
    if ckpt.get("classes") not in (None, images.classes):
        raise RfcalcError(f"{weights} was trained on classes {', '.join(ckpt['classes'][:4])}, ...; {images.source} "
                          f"has {', '.join(images.classes[:4])}, ...")
    dev = resolve_device(device)
    setup_backend(dev, 0)
    model = rfcalc.build_model(spec)
    checkpoint.load_weights(model, ckpt["model"], weights, spec.name)
    engine = Engine(model, merge_config(spec.train, {}), dev, total_steps=1)
    mean, std = tuple(ckpt.get("mean") or images.mean), tuple(ckpt.get("std") or images.std)
    normalize = Normalizer(mean, std, dev)
    x, y = torch.from_numpy(images.test_x), torch.from_numpy(images.test_y)
    result = evaluate(engine, x, y, normalize, len(images.classes), tta, batch_size, model=engine.model)
    counts = np.bincount(images.test_y, minlength=len(images.classes)).tolist()
    title = (f"{weights} on {len(y):,} test images of {images.source}{' with flip TTA' if tta else ''}: "
             f"accuracy {result.accuracy:.2%}, loss {result.loss:.4f} ({device_name(dev)})")
    console.print(title, highlight=False, markup=False, soft_wrap=True)
    console.print(class_table(images.classes, result.per_class, counts))
    return {"accuracy": result.accuracy, "loss": result.loss,
            "per_class": dict(zip(images.classes, result.per_class))}


def find_lr(spec_path: Path, *, flags: dict[str, Any], device: str | None, out: str | None, train_limit: int | None,
            start: float, end: float, steps: int, console: Console, err: Console) -> dict[str, Any]:
    from trainer.options import resolve

    say = notices(err)
    spec = rfcalc.load_spec(spec_path)
    options: RunOptions = resolve(spec, flags=flags, device=device, out=out, train_limit=train_limit, test_limit=1)
    if not (0 < start < end):
        raise RfcalcError(f"--start-lr {start} / --end-lr {end}: need 0 < start < end")
    if steps < 5:
        raise RfcalcError(f"--steps {steps}: need at least 5")
    check_augmentations(spec, options, say)
    images = fitting_data(spec, options.config.data or "cifar10", say, options.train_limit, 1)
    dev = resolve_device(options.device)
    setup_backend(dev, options.config.seed)
    engine = Engine(rfcalc.build_model(spec), options.config, dev, total_steps=steps)
    normalize = Normalizer(images.mean, images.std, dev)
    batches = make_batches(images, options, dev, say)
    epoch = {"n": 0}

    def next_epoch() -> Any:
        epoch["n"] += 1
        return batches.epoch(epoch["n"] - 1)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        engine.model.train()
        with autocast(dev):
            loss = engine.criterion(engine.forward(normalize(x)), y)
        engine.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        engine.optimizer.step()
        return loss.detach()

    say(f"lr range test on {spec.name}: {steps} batches of {options.config.batch_size}, lr {start:g} -> {end:g} "
        f"({options.config.optimizer}, {device_name(dev)})")
    try:
        test = range_test(engine.model, engine.optimizer, next_epoch, step, start, end, steps)
    finally:
        batches.close()
    folder = Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lr_find.png"
    plots.lr_find(test.lrs, test.losses, test.steepest, test.min_over_10, path, f"{spec.name}: LR range test")
    if test.steepest is None:
        console.print(f"too few points ({len(test.lrs)}) for a suggestion; raise --steps or --end-lr; wrote {path}")
    else:
        console.print(f"steepest descent: lr {test.steepest:.3g}\nminimum loss / 10: lr {test.min_over_10:.3g} "
                      f"(minimum at {test.min_loss_lr:.3g})\nwrote {path}", highlight=False, markup=False)
    return {"lrs": test.lrs, "losses": test.losses, "steepest": test.steepest, "min_over_10": test.min_over_10}
