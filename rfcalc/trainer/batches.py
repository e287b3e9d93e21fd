"""Both augmentation paths behind one interface, and the uint8 -> normalised float step they share.

A batch source has ``len()`` (batches per epoch), ``epoch(e, start)`` yielding (uint8 [B, H, W, C], labels)
on the training device, and ``close()``. Under DistributedDataParallel it yields this rank's shard of every global
batch (:func:`rfcalc.trainer.augment.batch_indices`). :class:`Normalizer` turns a uint8 batch into the model's input
(float, normalised with the training statistics, channels-last memory).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch

from rfcalc.quantities import count
from rfcalc.spec.train import TrainConfig
from rfcalc.trainer import device_aug
from rfcalc.trainer.augment import AugmentedBatches, EpochSampler, batches_per_epoch, build_pipeline, make_loader
from rfcalc.trainer.data import ImageSet
from rfcalc.trainer.distributed import World
from rfcalc.trainer.fast_aug import FastBatches
from rfcalc.trainer.options import RunOptions


class Normalizer:
    """uint8 [B, H, W, C] -> float [B, C, H, W] (channels-last memory), ``(x/255 - mean) / std``."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> None:
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std], device=device)
        self.shift = torch.tensor([-m / s for m, s in zip(mean, std)], device=device)
        self.mean, self.std = mean, std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x.float(), self.scale).permute(0, 3, 1, 2)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """float [B, C, H, W] -> float [B, H, W, C] in 0..1, for plotting."""
        mean = torch.tensor(self.mean, device=x.device)[:, None, None]
        std = torch.tensor(self.std, device=x.device)[:, None, None]
        return (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1)


class AlbumentationsBatches:
    """Per-sample albumentations in DataLoader workers, one batch per task, uint8 across the process boundary."""

    def __init__(self, images: ImageSet, options: RunOptions, device: torch.device,
                 say: Callable[[str], None], world: World = World()) -> None:
        cfg = options.config
        compose = build_pipeline(cfg.steps(), images.mean, images.train_x.shape[1:], say)
        self.n, self.batch_size, self.device, self.ranks = len(images.train_y), cfg.batch_size, device, world.size
        self.dataset = AugmentedBatches(images.train_x, images.train_y, compose, cfg.seed, world.rank)
        self.sampler = EpochSampler(self.n, cfg.batch_size, cfg.seed, world.rank, world.size)
        self.loader = make_loader(self.dataset, self.sampler, cfg.workers, pin_memory=device.type == "cuda")
        self.description = f"albumentations ({count(cfg.workers, 'worker')})"

    def __len__(self) -> int:
        return batches_per_epoch(self.n, self.batch_size, self.ranks)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.epoch, self.sampler.start = epoch, start
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def close(self) -> None:
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader = None


def auto_workers(device: torch.device, workers: int) -> int:
    """DataLoader workers of the albumentations path: on a GPU the default (2) becomes the CPU count less one for
    the training process (at most 16): per-image augmentation in two workers starves a GPU."""
    if device.type != "cuda" or workers != TrainConfig().workers:
        return workers
    return max(workers, min(16, (os.cpu_count() or 2) - 1))


def make_batches(images: ImageSet, options: RunOptions, device: torch.device,
                 say: Callable[[str], None], world: World = World()) -> Any:
    """The batch source of a run; its ``description`` says how batches are augmented (the "training" line)."""
    cfg = options.config
    if cfg.aug == "fast":
        return FastBatches(images.train_x, images.train_y, cfg.batch_size, cfg.seed, cfg.fast_aug, images.mean,
                           device, world.rank, world.size)
    steps = device_aug.translate(cfg.steps()) if device.type == "cuda" else "not on a GPU"
    if not isinstance(steps, str):
        mean = torch.tensor([255 * m for m in images.mean], device=device)
        batches = FastBatches(images.train_x, images.train_y, cfg.batch_size, cfg.seed, cfg.fast_aug, images.mean,
                              device, world.rank, world.size, pipeline=device_aug.DevicePipeline(steps, mean))
        batches.description = f"albumentations on the GPU ({device_aug.describe(steps)} as batched tensor ops)"
        return batches
    workers = auto_workers(device, cfg.workers)
    if workers != cfg.workers:
        options = replace(options, config=cfg.model_copy(update={"workers": workers}))
    albumentations = AlbumentationsBatches(images, options, device, say, world)
    where = f"{count(workers, 'worker')}" + (f"; {steps} has no GPU equivalent" if device.type == "cuda" else "")
    albumentations.description = f"albumentations ({where})"
    return albumentations
