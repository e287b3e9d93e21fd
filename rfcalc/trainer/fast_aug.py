"""The fast path (`--aug fast`): the data set lives on the training device as uint8, and per-sample random
flip, translate (reflect-padded) and cutout are a handful of batched tensor ops there (the airbench pattern).

No worker processes, no per-image Python. Randomness comes from a generator seeded per batch with
(run seed, epoch, batch number), so runs are reproducible and resumable mid-epoch. Under DistributedDataParallel
every rank draws the random numbers of the whole global batch and keeps its own slice: each image gets the
augmentation it gets in one process at the global batch size.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rfcalc.spec.train import FastAug
from rfcalc.trainer.augment import batch_slices, batches_per_epoch, epoch_order, shard_bounds

FAST_SALT = 0xFA57


def batch_generator(device: torch.device, seed: int, epoch: int, batch: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch, batch, FAST_SALT]).generate_state(1, np.uint64)[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return gen


def drawer(gen: torch.Generator, offset: int, size: int, total: int) -> Any:
    """``draw(*shape)``: uniform numbers for items ``offset .. offset + size`` of a batch of ``total``, drawn for
    the whole batch (so a rank of DistributedDataParallel gets the numbers its images get in one process)."""
    def draw(*shape: int) -> torch.Tensor:
        return torch.rand((total, *shape), generator=gen, device=gen.device)[offset:offset + size]

    return draw


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect out-of-range indices back inside [0, size) without repeating the edge (like reflect padding)."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def augment(x: torch.Tensor, cfg: FastAug, gen: torch.Generator, fill: torch.Tensor, offset: int = 0,
            total: int | None = None) -> torch.Tensor:
    """Randomly flip, translate and cut out a uint8 batch [B, H, W, C]; returns a new [B, H, W, C] tensor.

    ``x`` is items ``offset .. offset + B`` of a batch of ``total`` (default B): the random numbers are drawn for
    ``total`` items and this slice of them is used.
    """
    b, h, w, _ = x.shape
    dev = x.device
    n = b if total is None else total
    mine = slice(offset, offset + b)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand((n, *shape), generator=gen, device=dev)[mine]

    def randint(low: int, high: int) -> torch.Tensor:
        return torch.randint(low, high, (n, 1), generator=gen, device=dev)[mine]

    rows = torch.arange(h, device=dev).expand(b, h)
    cols = torch.arange(w, device=dev).expand(b, w)
    if cfg.flip:
        flip = rand() < 0.5
        cols = torch.where(flip[:, None], w - 1 - cols, cols)
    if cfg.translate:
        r = cfg.translate
        dy = randint(-r, r + 1)
        dx = randint(-r, r + 1)
        rows = _reflect(rows + dy, h)
        cols = _reflect(cols + dx, w)
    batch = torch.arange(b, device=dev)[:, None, None]
    out = x[batch, rows[:, :, None], cols[:, None, :]]  # one gather: [B, H, W, C]
    if cfg.cutout:
        half = cfg.cutout / 2
        cy = randint(0, h)
        cx = randint(0, w)
        active = rand(1) < cfg.cutout_p
        ys = torch.arange(h, device=dev)[None, :]
        xs = torch.arange(w, device=dev)[None, :]
        in_y = ((ys - cy + 0.5).abs() <= half) & active
        in_x = (xs - cx + 0.5).abs() <= half
        hole = in_y[:, :, None] & in_x[:, None, :]
        out = torch.where(hole[..., None], fill, out)
    return out


class FastBatches:
    """Batches of the device-resident training set: ``epoch(e, start)`` yields (uint8 [B, H, W, C], labels).

    Augmented by ``cfg`` (`aug: fast`) or by ``pipeline`` (the spec's albumentations transforms on the device,
    :mod:`rfcalc.trainer.device_aug`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, cfg: FastAug,
                 mean: tuple[float, ...], device: torch.device, rank: int = 0, ranks: int = 1,
                 pipeline: Any = None) -> None:
        self.x = torch.from_numpy(x).to(device)
        self.y = torch.from_numpy(y).to(device)
        self.n, self.batch_size, self.seed, self.cfg, self.device = len(y), batch_size, seed, cfg, device
        self.rank, self.ranks = rank, ranks
        self.global_size = min(batch_size * ranks, self.n)
        self.offset = shard_bounds(self.global_size, rank, ranks)[0]
        self.fill = torch.tensor([round(255 * m) for m in mean], dtype=torch.uint8, device=device)
        self.pipeline = pipeline
        self.description = "fast"

    def __len__(self) -> int:
        return batches_per_epoch(self.n, self.batch_size, self.ranks)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The epoch's order goes to the device once: a copy from pageable memory per batch would make the host
        # wait for the device every step (CUDA synchronises the stream before such a copy).
        order = torch.from_numpy(epoch_order(self.n, self.seed, epoch)).to(self.device)
        for b, (lo, hi) in batch_slices(self.n, self.batch_size, start, self.rank, self.ranks):
            index = order[lo:hi]
            gen = batch_generator(self.device, self.seed, epoch, b)
            if self.pipeline is None:
                yield augment(self.x[index], self.cfg, gen, self.fill, self.offset, self.global_size), self.y[index]
            else:
                yield self.pipeline(self.x[index], drawer(gen, self.offset, len(index), self.global_size)), \
                    self.y[index]

    def close(self) -> None:
        pass


def describe(cfg: FastAug) -> str:
    parts = ["flip" if cfg.flip else "", f"translate ±{cfg.translate}px (reflect)" if cfg.translate else "",
             f"cutout {cfg.cutout}x{cfg.cutout} p={cfg.cutout_p}" if cfg.cutout else ""]
    return ", ".join(p for p in parts if p) or "none"
