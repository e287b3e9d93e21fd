"""`budget.holdout: N`: a fixed split of the training images that no trial trains on and every trial is measured
on, so that the sweep selects designs without looking at the test split.

The sweep writes it once, in its output folder, as a CIFAR-100-style python folder (``train``, ``test``,
``meta``: the format `rfcalc train --data` reads): ``train`` holds the training split minus the N held-out
images, ``test`` holds those N. Which images are held out is fixed (the last N of a permutation with seed 0),
so every worker and every machine of a sweep uses the same split. Trials then train with ``--data`` on that
folder; ``train_limit`` and ``test_limit`` pick from its two parts as usual.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from rfcalc.errors import RfcalcError

HOLDOUT_SEED = 0
FOLDER = "holdout"


def split_indices(count: int, holdout: int) -> tuple[Any, Any]:
    """(kept, held out) indices of ``count`` training images: a fixed permutation, each part in order."""
    import numpy as np

    order = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    return np.sort(order[:count - holdout]), np.sort(order[count - holdout:])


def write_holdout(images: Any, holdout: int, folder: Path, say: Any) -> Path:
    """The held-out data set of ``images`` (an :class:`rfcalc.trainer.data.ImageSet`) in ``folder``, written
    once: a folder written for the same source and size is reused."""
    count = len(images.train_y)
    if holdout >= count:
        raise RfcalcError(f"budget.holdout {holdout:,}: the training split of {images.source} has {count:,} "
                          f"images; hold out fewer, so that some are left to train on")
    n, h, w, c = images.train_x.shape
    if c != 3 or h != w:
        raise RfcalcError(f"budget.holdout: the held-out split is written as CIFAR python batches, which hold "
                          f"3-channel square images; {images.source} has {c}x{h}x{w} images (leave holdout out "
                          f"and use test_limit)")
    stamp = {"source": images.source, "train_images": count, "holdout": holdout, "seed": HOLDOUT_SEED}
    marker = folder / "holdout.json"
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == stamp:
            return folder
    except (OSError, ValueError):
        pass
    kept, held = split_indices(count, holdout)
    say(f"holding out {holdout:,} of the {count:,} training images ({folder}): every trial trains on the other "
        f"{count - holdout:,} and is measured on these, not on the test split")
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)

    def batch(index: Any) -> dict[str, Any]:
        x = images.train_x[index]
        return {"data": x.transpose(0, 3, 1, 2).reshape(len(index), -1), "fine_labels": images.train_y[index].tolist()}

    for name, content in (("train", batch(kept)), ("test", batch(held)),
                          ("meta", {"fine_label_names": list(images.classes)})):
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        with tmp.open("wb") as handle:
            pickle.dump(content, handle, protocol=4)
        tmp.replace(folder / name)
    marker.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    return folder
