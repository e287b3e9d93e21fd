"""Augmentation: strict albumentations from YAML, 1.x names, fill: mean, worker reseeding, the fast path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rfcalc.trainer.augment import (
    AugmentationError,
    AugmentedBatches,
    EpochSampler,
    build_pipeline,
    make_loader,
    translate_v1,
)
from rfcalc.trainer.config import FastAug
from rfcalc.trainer.fast_aug import augment, batch_generator

MEAN = (0.5, 0.25, 0.75)
SHAPE = (16, 16, 3)


def build(steps: list, notes: list | None = None):
    return build_pipeline(steps, MEAN, SHAPE, (notes if notes is not None else []).append)


def test_v1_arguments_become_v2_with_a_notice() -> None:
    notes: list[str] = []
    compose = build([("CoarseDropout", {"max_holes": 1, "max_height": 8, "max_width": 8, "min_holes": 1,
                                        "min_height": 8, "min_width": 8, "fill_value": "mean",
                                        "mask_fill_value": None, "p": 1.0}),
                     ("ShiftScaleRotate", {"value": 0, "border_mode": "BORDER_CONSTANT", "always_apply": True})],
                    notes)
    dropout, ssr = compose.transforms
    assert dropout.num_holes_range == (1, 1) and dropout.hole_height_range == (8, 8)
    assert dropout.fill == (127.5, 63.75, 191.25)  # the mean, in pixel units
    assert ssr.p == 1.0 and ssr.border_mode == 0
    assert any("max_holes" in n and "num_holes_range" in n for n in notes)
    assert all("\n" not in n for n in notes)


def test_translate_v1_leaves_v2_names_alone() -> None:
    params = ["num_holes_range", "hole_height_range", "hole_width_range", "fill", "fill_mask", "p"]
    args, notes = translate_v1("CoarseDropout", {"num_holes_range": [1, 2], "fill": 0}, params)
    assert args == {"num_holes_range": [1, 2], "fill": 0} and notes == []
    args, _ = translate_v1("CoarseDropout", {"max_holes": 3}, params)
    assert args == {"num_holes_range": [3, 3]}


@pytest.mark.parametrize(("steps", "expected"), [
    ([("CoarseDropout", {"fil": 0})], "train.augmentations[0].fil (CoarseDropout): unknown argument 'fil' "
                                      "(did you mean 'fill'?)"),
    ([("HorizontalFlip", {}), ("CorseDropout", {})], "train.augmentations[1] (CorseDropout): unknown "
                                                     "albumentations 2.0.8 transform (did you mean 'CoarseDropout'?)"),
    ([("HorizontalFlip", {"p": 1.5})], "train.augmentations[0] (HorizontalFlip): "),
    ([("Normalize", {})], "remove it"),
    ([("Affine", {"border_mode": "BORDER_WIGGLY"})], "unknown OpenCV constant 'BORDER_WIGGLY'"),
    ([("RandomCrop", {"height": 8, "width": 8})], "the model needs the input size"),
])
def test_bad_transforms_are_one_line_errors(steps: list, expected: str) -> None:
    with pytest.raises(AugmentationError) as info:
        build(steps)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_opencv_constants_by_name() -> None:
    import cv2

    compose = build([("Affine", {"border_mode": "BORDER_REFLECT_101", "interpolation": "cv2.INTER_NEAREST"})])
    assert compose.transforms[0].border_mode == cv2.BORDER_REFLECT_101
    assert compose.transforms[0].interpolation == cv2.INTER_NEAREST


def test_fractional_fill_on_uint8_gets_a_notice() -> None:
    notes: list[str] = []
    build([("CoarseDropout", {"fill": [0.4914, 0.4822, 0.4465]})], notes)
    assert any("fill: mean" in n for n in notes)


# ---------------------------------------------------------------- worker reseeding

N = 32


class _Naive(torch.utils.data.Dataset):
    """What the reports do: one Compose, per-sample calls, default DataLoader seeding."""

    def __init__(self, compose) -> None:
        self.compose = compose

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int):
        return torch.from_numpy(self.compose(image=np.zeros(SHAPE, np.uint8))["image"].copy())


def _random_pipeline():
    # Every image is the same black square; only the random hole differs from draw to draw.
    return build([("CoarseDropout", {"num_holes_range": [1, 1], "hole_height_range": [3, 3],
                                     "hole_width_range": [3, 3], "fill": 255, "p": 1.0})])


def _holes(batch: torch.Tensor) -> list[tuple[int, int]]:
    out = []
    for image in batch:
        ys, xs = np.nonzero(image[..., 0].numpy())
        out.append((int(ys.min()), int(xs.min())))
    return out


def test_albumentations_alone_repeats_the_stream_in_every_worker() -> None:
    """The problem: albumentations 2.0.8 gives both workers the same random state."""
    loader = torch.utils.data.DataLoader(_Naive(_random_pipeline()), batch_size=N // 4, num_workers=2)
    batches = [_holes(b) for b in loader]  # worker 0 makes batches 0 and 2, worker 1 batches 1 and 3
    assert batches[0] == batches[1] and batches[2] == batches[3]


def _ours(workers: int, epochs: int = 2) -> list[list[tuple[int, int]]]:
    x = np.zeros((N, *SHAPE), np.uint8)
    dataset = AugmentedBatches(x, np.zeros(N, np.int64), _random_pipeline(), seed=7)
    sampler = EpochSampler(N, N // 4, seed=7)
    loader = make_loader(dataset, sampler, workers, pin_memory=False)
    out = []
    for epoch in range(epochs):
        sampler.epoch = epoch
        out += [_holes(images) for images, _ in loader]
    if workers:
        loader._iterator._shutdown_workers()
    return out


def test_our_workers_and_epochs_never_repeat_each_other() -> None:
    with_workers = _ours(workers=2)
    assert len(with_workers) == 8
    flat = [tuple(b) for b in with_workers]
    assert len(set(flat)) == len(flat)  # no two batches alike: not across workers, not across epochs
    assert len({hole for b in with_workers for hole in b}) > 40  # and plenty of different holes
    assert with_workers == _ours(workers=0)  # the same stream whatever the number of workers


# ---------------------------------------------------------------- fast path


def _batch() -> torch.Tensor:
    return torch.arange(4 * 8 * 8 * 3, dtype=torch.int64).reshape(4, 8, 8, 3).remainder(251).to(torch.uint8)


def test_fast_aug_off_is_the_identity_and_seeded_is_repeatable() -> None:
    x = _batch()
    fill = torch.tensor([1, 2, 3], dtype=torch.uint8)
    off = FastAug(flip=False, translate=0, cutout=0)
    assert torch.equal(augment(x, off, batch_generator(torch.device("cpu"), 0, 0, 0), fill), x)
    on = FastAug(flip=True, translate=2, cutout=4, cutout_p=1.0)
    one = augment(x, on, batch_generator(torch.device("cpu"), 0, 3, 5), fill)
    two = augment(x, on, batch_generator(torch.device("cpu"), 0, 3, 5), fill)
    other = augment(x, on, batch_generator(torch.device("cpu"), 0, 3, 6), fill)
    assert torch.equal(one, two) and not torch.equal(one, other)
    assert one.shape == x.shape and one.dtype == torch.uint8


def test_fast_aug_is_flip_plus_reflect_shift_plus_a_hole() -> None:
    x = _batch()
    fill = torch.tensor([7, 7, 7], dtype=torch.uint8)
    cfg = FastAug(flip=True, translate=2, cutout=0)
    out = augment(x, cfg, batch_generator(torch.device("cpu"), 1, 0, 0), fill)
    padded = torch.nn.functional.pad(x.permute(0, 3, 1, 2).float(), (2, 2, 2, 2), mode="reflect")
    for i in range(len(x)):  # every output is a flipped-or-not 8x8 window of the reflect-padded image
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8].permute(1, 2, 0) for dy in range(5) for dx in range(5)]
        candidates = windows + [w.flip(1) for w in windows]
        assert any(torch.equal(out[i].float(), c) for c in candidates)
    holes = augment(x, FastAug(flip=False, translate=0, cutout=4, cutout_p=1.0),
                    batch_generator(torch.device("cpu"), 1, 0, 0), fill)
    changed = (holes != x).any(-1)
    assert changed.any() and (holes[changed] == 7).all()
    assert changed.sum(dim=(1, 2)).max() <= 16
