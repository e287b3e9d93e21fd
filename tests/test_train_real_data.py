"""A real-data smoke run: 2,000 training images of ../shared/datasets/cifar10-jpeg (200 per class), one epoch,
test accuracy above 25% on 500 test images. Skipped where the folder does not exist."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2  # noqa: F401 - the train extra
import pytest
from conftest import CIFAR_PLACES
from train_helpers import run

pytestmark = pytest.mark.slow  # the real CIFAR-10 JPEGs

CIFAR = next((place for place in CIFAR_PLACES if place.is_dir()), CIFAR_PLACES[0])

SPEC = """
version: 1
name: smoke-real
input: {channels: 3, size: 32}
classes: 10
defaults:
  conv: {k: 3, padding: 1, bias: false, norm: bn, act: relu}
layers:
  - {op: conv, name: c1, out: 16}
  - {op: conv, name: c2, out: 32, stride: 2}
  - {op: conv, name: c3, out: 48, stride: 2}
  - {op: gap}
  - {op: linear, out: 10}
train:
  epochs: 1
  batch_size: 16
  optimizer: adamw
  lr: 0.003
  weight_decay: 0.01
  label_smoothing: 0
  aug: fast
  fast_aug: {flip: true, translate: 0}
  seed: 0
"""


def _every_nth(source: Path, target: Path, per_class: int) -> None:
    """Links to an evenly spaced ``per_class`` images of every class (no copy of the data)."""
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(os.listdir(class_dir))
        step = max(1, len(files) // per_class)
        (target / class_dir.name).mkdir(parents=True)
        for name in files[::step][:per_class]:
            (target / class_dir.name / name).symlink_to(class_dir / name)


def test_one_epoch_on_2000_real_images_beats_25_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CIFAR.is_dir(), f"{CIFAR} is missing: the tests expect ../shared beside the checkout (see the README)"
    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "cifar10-2000"
    _every_nth(CIFAR / "train", data / "train", 200)
    _every_nth(CIFAR / "test", data / "test", 50)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = run(["train", spec, "--data", data, "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data"]["train_images"] == 2000 and summary["data"]["test_images"] == 500
    assert summary["data"]["classes"][:3] == ["airplane", "automobile", "bird"]
    assert summary["final_test_acc"] > 0.25, summary["final_test_acc"]
