"""Bad input to `rfcalc train` / `evaluate` / `lr-find`: one clear line on stderr, no traceback, exit 2."""
from __future__ import annotations

from pathlib import Path

import albumentations  # noqa: F401 - the train extra
import pytest
import torch
from train_helpers import (
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    one_line_error,
    run,
    spec_file,
    spec_text,
)


def _fails(args: list, expected: str, code: int = 2) -> str:
    result = run(args)
    assert result.exit_code == code, result.output
    line = one_line_error(result)
    assert expected in line, line
    return line


@pytest.mark.parametrize(("flags", "expected"), [
    (["--epochs", "0"], "--epochs 0: must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (["--lr", "-1"], "--lr -1.0: must be > 0"),
    (["--device", "tpu"], "--device tpu: unknown device; use auto, cpu, cuda, cuda:N or mps"),
    (["--aug", "fancy"], "--aug fancy: unknown augmentation path; use albumentations or fast"),
    (["--train-limit", "0"], "--train-limit 0: must be >= 1"),
    (["--seed", "-3"], "--seed -3: must be >= 0"),
])
def test_bad_flags(tmp_path: Path, pickles: Path, flags: list, expected: str) -> None:
    spec = spec_file(tmp_path, spec_text())
    _fails(["train", spec, "--data", pickles, *flags], expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="aug: fast"))
    _fails(["train", spec, "--data", pickles, "--device", "cuda", "--out", tmp_path / "run"],
           "--device cuda: CUDA is not available here")


def test_unknown_transform_and_argument(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="augmentations:\n  - HorizontalFlip: {p: 0.5}\n  - CoarseDropot: {}"))
    _fails(["train", spec, "--data", pickles, "--out", tmp_path / "run"],
           "train.augmentations[1] (CoarseDropot): unknown albumentations 2.0.8 transform (did you mean "
           "'CoarseDropout'?)")
    text = spec_text(train="augmentations:\n  - HorizontalFlip: {p: 0.5}\n  - Affine: {interpolaton: 1}")
    spec = spec_file(tmp_path, text)
    line = _fails(["train", spec, "--data", pickles, "--out", tmp_path / "run"],
                  "train.augmentations[1].interpolaton (Affine): unknown argument 'interpolaton' (did you mean "
                  "'interpolation'?)")
    row = text.splitlines().index("    - Affine: {interpolaton: 1}") + 1
    assert line.startswith(f"{spec}:{row}:16: ")  # located in the YAML file, at the argument


def test_bad_train_section_is_a_located_spec_error(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="optimiser: adam"))
    _fails(["train", spec], "train.optimiser: unknown key 'optimiser' (did you mean 'optimizer'?)")


def test_missing_and_corrupt_data(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text())
    _fails(["train", spec, "--data", tmp_path / "nowhere"], "no such file or folder")
    (pickles / "test_batch").write_bytes(b"junk")
    _fails(["train", spec, "--data", pickles], "test_batch: not a CIFAR python batch")


def test_classes_input_size_and_output_must_fit_the_data(tmp_path: Path, pickles: Path) -> None:
    _fails(["train", spec_file(tmp_path, spec_text(classes=100)), "--data", pickles],
           "the spec says classes: 100, but")
    _fails(["train", spec_file(tmp_path, spec_text(size=32)), "--data", pickles],
           "the spec's input is [3, 32, 32] (channels, height, width), but the images of")
    wrong_head = spec_text(classes=None).replace("out: 10}", "out: 7}")
    _fails(["train", spec_file(tmp_path, wrong_head), "--data", pickles],
           "the model's output is [7] per image, but")


def test_bad_checkpoints(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text())
    _fails(["train", spec, "--resume", tmp_path / "missing.pt"], "missing.pt: no such checkpoint")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    _fails(["evaluate", spec, "--weights", junk, "--data", pickles], "junk.pt: not a readable PyTorch checkpoint")


def test_lr_find_bad_range(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text())
    _fails(["lr-find", spec, "--data", pickles, "--start-lr", "1", "--end-lr", "0.1"], "need 0 < start < end")


def test_a_wrong_data_path_stops_before_any_output(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, spec_text())
    result = run(["train", spec, "--data", tmp_path / "nope", "--epochs", "1"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"--data {tmp_path / 'nope'}: no such file or folder; pass an image folder")
    assert result.stderr.count("\n") == 1
