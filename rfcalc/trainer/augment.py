"""The albumentations path: a pipeline from YAML, built strictly, reseeded for every batch.

- Transforms are named in the spec with their arguments and built with ``strict=True``: a wrong argument
  is an error, never a silently ignored default.
- Albumentations 1.x argument names (``max_holes``, ``fill_value``, ``always_apply``, ...) are translated
  to 2.x with a one-line notice.
- ``fill: mean`` is the data set's mean in pixel units (the images are uint8 when they are augmented).
- Albumentations 2.0.8 gives every DataLoader worker a copy of the same random state (and gives every
  transform of a seeded Compose the same seed). Here each batch reseeds the whole pipeline from one stream
  derived from (run seed, epoch, batch number), so workers and epochs never repeat each other and a run is
  the same with any number of workers.
- Under DistributedDataParallel each rank augments its own shard of the global batch from its own stream
  (seed, epoch, batch, rank); rank 0's stream is the single process's.
"""
from __future__ import annotations

import inspect
import os
import random
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from rfcalc.errors import RfcalcError
from rfcalc.spec.messages import suggest

# Albumentations 1.x -> 2.x renames (applied only when the 2.x transform has the new name and not the old).
V1_RENAMES = {"fill_value": "fill", "mask_fill_value": "fill_mask", "value": "fill", "mask_value": "fill_mask",
              "cval": "fill", "cval_mask": "fill_mask", "mode": "border_mode"}
# (min, max) pairs merged into one 2.x range; the 1.x default of the max and "min = max" when min is missing.
V1_RANGES = {"num_holes_range": ("min_holes", "max_holes", 8), "hole_height_range": ("min_height", "max_height", 8),
             "hole_width_range": ("min_width", "max_width", 8)}
CV2_ARGS = ("interpolation", "mask_interpolation", "border_mode")
NOT_HERE = {"Normalize": "the trainer normalises with the data set's mean and std itself",
            "ToTensorV2": "the trainer makes tensors itself", "ToFloat": "the trainer converts to float itself",
            "FromFloat": "images stay uint8 until the trainer normalises them"}
AUG_SALT = 0xA06


def albumentations() -> Any:
    """The albumentations module, imported without its update check: importing it otherwise asks PyPI for the
    newest version (a network call at run time; a warning on every run of a machine without a network)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A


class AugmentationError(RfcalcError):
    """A bad transform or argument; ``index`` is its position in ``train.augmentations``."""

    def __init__(self, index: int, name: str, message: str, key: str | None = None) -> None:
        self.index, self.name, self.key = index, name, key
        super().__init__(f"train.augmentations[{index}]{'.' + key if key else ''} ({name}): {message}")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    lines = [ln.split(" [type=")[0] for ln in lines if not ln.startswith(("For further information", "1 validation"))
             and "validation error" not in ln]
    return "; ".join(lines) or str(text)


def translate_v1(name: str, args: dict[str, Any], params: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """1.x argument names -> 2.x for a transform whose 2.x parameters are ``params``; returns the notes."""
    out = dict(args)
    notes: list[str] = []
    if "always_apply" in out and "always_apply" not in params:
        if out.pop("always_apply") and "p" not in out:
            out["p"] = 1.0
            notes.append("1.x always_apply: true -> 2.x p: 1.0")
        else:
            notes.append("1.x always_apply dropped (not in 2.x)")
    for new, (low, high, default) in V1_RANGES.items():
        if new in params and (low in out or high in out) and low not in params:
            top = out.pop(high, default)
            bottom = out.pop(low, None)
            out[new] = [top if bottom is None else bottom, top]
            notes.append(f"1.x {low}/{high} -> 2.x {new}: {out[new]}")
    for old, new in V1_RENAMES.items():
        if old in out and old not in params and new in params:
            value = out.pop(old)
            if value is not None:
                out[new] = value
            notes.append(f"1.x {old} -> 2.x {new}")
    if {"height", "width"} <= out.keys() and "size" in params and "height" not in params:
        out["size"] = [out.pop("height"), out.pop("width")]
        notes.append("1.x height/width -> 2.x size")
    return out, notes


def _cv2_constant(value: Any) -> Any:
    import cv2

    if isinstance(value, str):
        name = value.removeprefix("cv2.")
        if name.startswith(("INTER_", "BORDER_")) and hasattr(cv2, name):
            return int(getattr(cv2, name))
        raise ValueError(f"unknown OpenCV constant {value!r} (e.g. INTER_LINEAR, BORDER_REFLECT_101)")
    return value


def _fill(value: Any, mean_pixels: tuple[float, ...], notes: list[str]) -> Any:
    if value == "mean":
        return tuple(mean_pixels)
    values = value if isinstance(value, (list, tuple)) else [value]
    if all(isinstance(v, (int, float)) for v in values) and 0 < max(values) <= 1 and any(
            isinstance(v, float) for v in values):
        notes.append(f"fill {value} is in 0..1 but images are uint8 0..255 here (nearly black); "
                     f"write fill: mean for the data set's mean")
    return tuple(value) if isinstance(value, list) else value


def build_transform(index: int, name: str, args: dict[str, Any], mean_pixels: tuple[float, ...],
                    say: Callable[[str], None]) -> Any:
    A = albumentations()
    if name in NOT_HERE:
        raise AugmentationError(index, name, f"remove it: {NOT_HERE[name]}")
    cls: Any = getattr(A, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)):
        names = [n for n in dir(A) if inspect.isclass(getattr(A, n)) and issubclass(getattr(A, n), A.BasicTransform)]
        raise AugmentationError(index, name, f"unknown albumentations {A.__version__} transform{suggest(name, names)}")
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    args, notes = translate_v1(name, args, params)
    for key in args:
        if key not in params:
            raise AugmentationError(index, name, f"unknown argument '{key}'{suggest(key, params)}; allowed: "
                                                 f"{', '.join(params)}", key)
    for key in list(args):
        try:
            if key in CV2_ARGS:
                args[key] = _cv2_constant(args[key])
            elif key == "fill":
                args[key] = _fill(args[key], mean_pixels, notes)
            elif isinstance(args[key], list):
                args[key] = tuple(args[key])
        except ValueError as exc:
            raise AugmentationError(index, name, str(exc), key) from None
    if notes:
        say(f"notice: train.augmentations[{index}] ({name}): {'; '.join(notes)}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make: Any = cls  # albumentations is untyped; >= 2 takes strict=True: unknown arguments are errors
            transform = make(**args, strict=True)
    except (ValueError, TypeError) as exc:
        raise AugmentationError(index, name, _one_line(str(exc))) from None
    for warning in caught:
        say(f"notice: train.augmentations[{index}] ({name}): {_one_line(str(warning.message))}")
    return transform


def build_pipeline(steps: list[tuple[str, dict[str, Any]]], mean: tuple[float, ...], image_shape: tuple[int, ...],
                   say: Callable[[str], None] = lambda s: None) -> Any:
    """A strict ``A.Compose`` of ``steps``, tried once on an image of ``image_shape`` (H, W, C)."""
    A = albumentations()
    mean_pixels = tuple(round(255.0 * m, 3) for m in mean)
    transforms = [build_transform(i, name, args, mean_pixels, say) for i, (name, args) in enumerate(steps)]
    compose = A.Compose(transforms, strict=True)
    probe = np.full(image_shape, 128, np.uint8)
    for i, transform in enumerate(transforms):
        try:
            out = A.Compose([transform], strict=True, seed=0)(image=probe)["image"]
        except Exception as exc:  # any failure on a plain image is a bad configuration
            raise AugmentationError(i, steps[i][0], f"fails on a {'x'.join(map(str, image_shape))} uint8 image: "
                                                    f"{_one_line(str(exc))}") from None
        if out.shape != probe.shape or out.dtype != np.uint8:
            raise AugmentationError(i, steps[i][0], f"turns a {list(probe.shape)} uint8 image into "
                                                    f"{list(out.shape)} {out.dtype}; the model needs the input size "
                                                    f"of the spec")
    return compose


def batch_random_state(seed: int, epoch: int, batch: int, rank: int = 0) -> tuple[np.random.Generator, random.Random]:
    """The random state of one batch (of one rank's shard of it): a pure function of (seed, epoch, batch, rank)."""
    sequence = np.random.SeedSequence([seed, epoch, batch, AUG_SALT] + ([rank] if rank else []))
    return np.random.default_rng(sequence), random.Random(int(sequence.generate_state(2, np.uint64)[1]))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of one epoch: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def batches_per_epoch(n: int, batch_size: int, ranks: int = 1) -> int:
    """Full global batches (``batch_size`` x ``ranks``) only: a last batch of one image breaks batch norm; one
    smaller batch when n is below the global batch."""
    return max(1, n // (batch_size * ranks))


def shard_bounds(size: int, rank: int, ranks: int) -> tuple[int, int]:
    """Rank ``rank``'s slice of a global batch of ``size`` items: contiguous, sizes differing by at most one."""
    return size * rank // ranks, size * (rank + 1) // ranks


def batch_indices(n: int, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0,
                  ranks: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(batch number, indices of this rank's shard of it) for the batches of one epoch from ``start`` on.

    Every rank walks the same order of the epoch; global batch b is ``order[b*G:(b+1)*G]`` with G = batch size x
    ranks, and rank r takes its r-th slice: N ranks x batch B see exactly the images one process sees at N x B.
    """
    order = epoch_order(n, seed, epoch)
    for b, (lo, hi) in batch_slices(n, batch_size, start, rank, ranks):
        yield b, order[lo:hi]


def batch_slices(n: int, batch_size: int, start: int = 0, rank: int = 0,
                 ranks: int = 1) -> Iterator[tuple[int, tuple[int, int]]]:
    """(batch number, (lo, hi)): this rank's shard of each batch from ``start`` on, as a slice of the epoch's
    order (:func:`batch_indices` takes those slices)."""
    size = min(batch_size * ranks, n)
    lo, hi = shard_bounds(size, rank, ranks)
    for b in range(start, batches_per_epoch(n, batch_size, ranks)):
        yield b, (b * size + lo, b * size + hi)


class AugmentedBatches:
    """A map-style dataset of whole batches: key (epoch, batch, indices) -> (uint8 [B, H, W, C], int64 [B])."""

    def __init__(self, x: np.ndarray, y: np.ndarray, compose: Any, seed: int, rank: int = 0) -> None:
        self.x, self.y, self.compose, self.seed, self.rank = x, y, compose, seed, rank

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, key: tuple[int, int, np.ndarray]) -> tuple[Any, Any]:
        import torch

        epoch, batch, indices = key
        self.compose.set_random_state(*batch_random_state(self.seed, epoch, batch, self.rank))
        out = np.empty((len(indices), *self.x.shape[1:]), np.uint8)
        for j, i in enumerate(indices):
            out[j] = self.compose(image=self.x[i])["image"]
        return torch.from_numpy(out), torch.from_numpy(self.y[indices])


class EpochSampler:
    """Yields the batch keys of one epoch, this rank's shard of each (set ``epoch`` and ``start`` before
    iterating)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, ranks: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.ranks = n, batch_size, seed, rank, ranks
        self.epoch, self.start = 0, 0

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        for b, indices in batch_indices(self.n, self.batch_size, self.seed, self.epoch, self.start, self.rank,
                                        self.ranks):
            yield self.epoch, b, indices

    def __len__(self) -> int:
        return batches_per_epoch(self.n, self.batch_size, self.ranks) - self.start


def worker_init(worker_id: int) -> None:
    """Every worker: its own random state, and Ctrl-C left to the main process (which stops cleanly)."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    info = torch.utils.data.get_worker_info()
    assert info is not None, "worker_init runs in DataLoader workers only"
    dataset: AugmentedBatches = info.dataset  # type: ignore[assignment]  # the loader's dataset, made below
    dataset.compose.set_random_state(np.random.default_rng([dataset.seed, worker_id, info.seed % 2**32]),
                                     random.Random(info.seed))


def make_loader(dataset: AugmentedBatches, sampler: EpochSampler, workers: int, pin_memory: bool) -> Any:
    import cv2
    import torch

    if workers:
        # One OpenCV thread, set here in the parent: a forked child that touches OpenCV's thread pool after the
        # parent has used it (cv2.setNumThreads in a worker, say) deadlocks. Workers are the parallelism.
        cv2.setNumThreads(1)
    return torch.utils.data.DataLoader(
        dataset,  # type: ignore[arg-type]  # a map-style dataset by protocol (__getitem__, __len__)
        sampler=sampler, batch_size=None, num_workers=workers, pin_memory=pin_memory,
        worker_init_fn=worker_init if workers else None, persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None, generator=torch.Generator().manual_seed(dataset.seed))
