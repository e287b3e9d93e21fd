"""`rfcalc evaluate`: a checkpoint's accuracy and per-class accuracy on the test split."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.lines import print_parts
from rfcalc.model.weights import load_weights, read_checkpoint
from rfcalc.trainer.batches import Normalizer
from rfcalc.trainer.data import fitting_data
from rfcalc.trainer.devices import device_name, resolve_device
from rfcalc.trainer.engine import Engine, evaluate_split, setup_backend
from rfcalc.trainer.options import merge_config, resolve_data
from rfcalc.trainer.progress import class_table
from rfcalc.trainer.run import notices


def evaluate_checkpoint(spec_path: Path, weights: Path, *, data: str | None, tta: bool, device: str,
                        batch_size: int | None, test_limit: int | None, console: Console,
                        err: Console) -> dict[str, Any]:
    spec = rfcalc.load_spec(spec_path)
    ckpt = read_checkpoint(weights)
    source = data or ckpt.get("data") or resolve_data(merge_config(spec.train, {}), spec)
    images = fitting_data(spec, source, notices(err), train_limit=1, test_limit=test_limit)
    if ckpt.get("classes") not in (None, images.classes):
        raise RfcalcError(f"{weights} was trained on classes {', '.join(ckpt['classes'][:4])}, ...; {images.source} "
                          f"has {', '.join(images.classes[:4])}, ...")
    dev = resolve_device(device)
    setup_backend(dev, 0)
    model = rfcalc.build_model(spec)
    load_weights(model, ckpt, source=weights, spec_name=spec.name)
    engine = Engine(model, merge_config(spec.train, {}), dev, total_steps=1)
    mean, std = tuple(ckpt.get("mean") or images.mean), tuple(ckpt.get("std") or images.std)
    normalize = Normalizer(mean, std, dev)
    x, y = torch.from_numpy(images.test_x), torch.from_numpy(images.test_y)
    result = evaluate_split(engine, x, y, normalize, len(images.classes), tta, batch_size, model=engine.model)
    counts = np.bincount(images.test_y, minlength=len(images.classes)).tolist()
    title = (f"{weights} on {len(y):,} test images of {images.source}{' with flip TTA' if tta else ''}: "
             f"accuracy {result.accuracy:.2%}, loss {result.loss:.4f} ({device_name(dev)})")
    print_parts(console, title.split(" "), sep=" ", markup=False)  # wrapped between words on a terminal
    console.print(class_table(images.classes, result.per_class, counts))
    return {"accuracy": result.accuracy, "loss": result.loss,
            "per_class": dict(zip(images.classes, result.per_class))}
