"""The `train:` section of a spec (rfcalc/train_config.py): validation, forms of a transform, the JSON Schema,
and flags laid over it. Torch-free."""
from __future__ import annotations

import pytest

import rfcalc
from rfcalc.errors import RfcalcError
from rfcalc.spec.schema import spec_json_schema
from rfcalc.spec.train import DEFAULT_AUGMENTATIONS, TrainConfig
from rfcalc.trainer.options import merge_config, resolve

SPEC = """
version: 1
name: t
input: {channels: 3, size: 8}
classes: 10
layers:
  - {op: conv, out: 4}
  - {op: gap}
  - {op: linear, out: 10}
"""


def test_defaults_without_a_train_section() -> None:
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.optimizer, config.schedule, config.aug) == \
           (20, 256, "sgd", "onecycle", "albumentations")
    assert config.steps()[0] == ("HorizontalFlip", {"p": 0.5}) and len(config.steps()) == len(DEFAULT_AUGMENTATIONS)


def test_three_ways_to_write_a_transform() -> None:
    spec = rfcalc.load_spec(SPEC + """
train:
  augmentations:
    - HorizontalFlip
    - ToGray: {p: 0.2}
    - {name: CoarseDropout, fill: mean}
    - Affine:
""")
    assert spec.train.steps() == [("HorizontalFlip", {}), ("ToGray", {"p": 0.2}), ("CoarseDropout", {"fill": "mean"}),
                                  ("Affine", {})]


@pytest.mark.parametrize(("section", "message"), [
    ("epochs: 0", "<string>:10:11: train.epochs: must be >= 1, got 0"),
    ("schedule: step", "train.schedule: must be one of 'onecycle', 'cosine' or 'constant', got 'step'"),
    ("aug: gpu", "train.aug: must be one of 'albumentations' or 'fast', got 'gpu'"),
    ("augmentations: [{A: {}, B: {}}]", "train.augmentations[0]: a mapping with 2 keys (A, B)"),
    ("fast_aug: {translate: 40}", "train.fast_aug.translate: must be <= 16, got 40"),
    ("ema: 1.5", "train.ema: must be < 1.0, got 1.5"),
])
def test_a_bad_train_section_is_a_located_spec_error(section: str, message: str) -> None:
    with pytest.raises(rfcalc.SpecError) as info:
        rfcalc.load_spec(SPEC.lstrip() + "train:\n  " + section + "\n")
    assert message in str(info.value)


def test_the_json_schema_describes_the_train_section() -> None:
    schema = spec_json_schema()
    train = schema["$defs"]["TrainConfig"]
    assert {"data", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "label_smoothing",
            "augmentations", "ema", "tta", "aug", "fast_aug"} <= train["properties"].keys()
    assert train["additionalProperties"] is False
    assert train["properties"]["optimizer"]["enum"] == ["sgd", "adamw"]


def test_flags_override_the_spec_and_are_checked_by_name() -> None:
    spec = rfcalc.load_spec(SPEC + "train: {epochs: 7, lr: 0.05, data: cifar10}\n")
    options = resolve(spec, flags={"epochs": 3, "lr": None}, device=None, out=None, train_limit=None,
                      test_limit=None)
    assert (options.config.epochs, options.config.lr, options.config.data) == (3, 0.05, "cifar10")
    assert options.out == "runs/t" and options.device == "auto"
    with pytest.raises(RfcalcError, match=r"^--batch-size 0: must be >= 1, got 0$"):
        merge_config(spec.train, {"batch_size": 0})
    with pytest.raises(RfcalcError, match="--device gpu0: unknown device"):
        resolve(spec, flags={}, device="gpu0", out=None, train_limit=None, test_limit=None)


def test_a_spec_for_cifar100_defaults_to_cifar100() -> None:
    spec = rfcalc.load_spec(SPEC.replace("classes: 10", "classes: 100").replace("out: 10", "out: 100"))
    assert resolve(spec, flags={}, device=None, out=None, train_limit=None, test_limit=None).config.data == "cifar100"
