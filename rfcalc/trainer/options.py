"""The options of one run: the spec's `train:` section, then the command line; every value validated.

Torch-free. Flags that break a rule are one-line errors naming the flag (exit 2).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rfcalc.analysis.load import Spec
from rfcalc.errors import RfcalcError
from rfcalc.spec.messages import describe_error
from rfcalc.spec.train import AUG_MODES, TrainConfig

FLAGS = {"data": "--data", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed",
         "aug": "--aug", "workers": "--workers", "optimizer": "--optimizer"}
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs besides the spec and the data."""

    config: TrainConfig
    device: str = "auto"
    out: str = "runs/model"
    train_limit: int | None = None
    test_limit: int | None = None
    compile: bool = False
    skip_check: bool = False
    sync_bn: bool = True  # under DistributedDataParallel: BatchNorm statistics over the global batch
    cuda_graph: bool = True  # on CUDA: capture the training step as one CUDA graph (--no-cuda-graph: eager)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = self.config.model_dump(mode="json")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        fields = dict(data)
        fields["config"] = TrainConfig.model_validate(fields["config"])
        return cls(**fields)


def check_device(device: str) -> str:
    if not DEVICE_PATTERN.match(device):
        raise RfcalcError(f"--device {device}: unknown device; use auto, cpu, cuda, cuda:N or mps")
    return device


def check_limit(flag: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise RfcalcError(f"{flag} {value}: must be >= 1 (or leave it out to use the whole split)")
    return value


def merge_config(base: TrainConfig | None, flags: dict[str, Any]) -> TrainConfig:
    """``base`` with the flags that were given (not None) laid over it; flag errors name the flag."""
    given = {k: v for k, v in flags.items() if v is not None}
    if "aug" in given and given["aug"] not in AUG_MODES:
        raise RfcalcError(f"--aug {given['aug']}: unknown augmentation path; use {' or '.join(AUG_MODES)}")
    data = (base or TrainConfig()).model_dump()
    data.update(given)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = FLAGS.get(field, field)
        raise RfcalcError(f"{flag} {given.get(field, '')}: {describe_error(err, TrainConfig)}") from None


def resolve_data(config: TrainConfig, spec: Spec) -> str:
    """The data to train on: the flag or spec value (paths relative to the cwd, else to the spec), or CIFAR."""
    if config.data is None:
        return "cifar100" if spec.classes == 100 else "cifar10"
    if config.data.lower().replace("-", "") in ("cifar10", "cifar100"):
        return config.data
    path = Path(config.data).expanduser()
    if not path.is_absolute() and not path.exists() and Path(spec.file).is_file():
        beside = Path(spec.file).resolve().parent / path
        if beside.exists():
            return str(beside)
    return str(path)


def resolve(spec: Spec, *, flags: dict[str, Any], device: str | None, out: str | None, train_limit: int | None,
            test_limit: int | None, compile: bool = False, skip_check: bool = False,
            sync_bn: bool | None = None, cuda_graph: bool = True) -> RunOptions:
    config = merge_config(spec.train, flags)
    config = config.model_copy(update={"data": resolve_data(config, spec)})
    return RunOptions(config=config, device=check_device(device or "auto"), out=out or f"runs/{spec.name}",
                      train_limit=check_limit("--train-limit", train_limit),
                      test_limit=check_limit("--test-limit", test_limit), compile=compile, skip_check=skip_check,
                      sync_bn=True if sync_bn is None else sync_bn, cuda_graph=cuda_graph)
