"""The sweep file as users write it (pydantic): base spec, search space, objective, budget, size.

```yaml
version: 1
name: c1c2c3c4-quick                 # the study's name (default: the file's name)
spec: ../arch_specs/c1c2c3c4_cifar10.yaml    # relative to this file, or an inline spec mapping
constraints: {params: {lt: 150k}}    # optional: rules laid over the spec's own (per rule)
objective: accuracy                  # accuracy | [accuracy, params] | [accuracy, macs]
space:
  width:    {path: [layers.c1_1.out, layers.c1_2.out], int: [16, 48], step: 8}
  dilation: {path: [layers.c2_2.dilation, layers.c2_2.padding], choices: [1, 2, 3]}
  lr:       {path: train.lr, float: [0.01, 0.3], log: true}
  norm:
    choices:                         # labelled choices: each sets several paths
      bn: {defaults.conv.norm: bn}
      gn: {defaults.conv.norm: gn, defaults.conv.norm_groups: 8}
budget: {epochs: 2, train_limit: 2000, test_limit: 500, aug: fast, batch_size: 64}
trials: 12                           # in total, over every worker and machine
timeout: 3m                          # this run starts no trial after this long
pruner: median                       # median | successive_halving | hyperband | none
prune_after: 2                       # median: completed trials before it stops any
min_epochs: 1                        # successive_halving / hyperband: the first rung
reduction_factor: 3                  # successive_halving / hyperband: 1 in 3 goes on
```

Only the shape of each field is checked here; :mod:`rfcalc.sweep.load` checks paths against the base spec.
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rfcalc.spec.train import AugMode, TrainConfig

ObjectiveName = Literal["accuracy", "params", "macs"]
PrunerName = Literal["median", "successive_halving", "hyperband", "none"]
Scalar = Union[bool, int, float, str, None]
PARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_.]*$"
OBJECTIVES: tuple[tuple[ObjectiveName, ...], ...] = (("accuracy",), ("accuracy", "params"), ("accuracy", "macs"))
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """90, "90s", "3m", "1.5h" -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"must be a duration like 90, \"90s\", \"3m\" or \"1.5h\", got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive duration, got {value!r}")
    return seconds


class Param(BaseModel):
    """One dimension of the search space: an integer range, a float range, or choices."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str | Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="where the value goes in the spec; a list sets every path to the same value")
    int_range: tuple[int, int] | None = Field(None, alias="int", description="[low, high], both included")
    float_range: tuple[float, float] | None = Field(None, alias="float", description="[low, high]")
    choices: Annotated[list[Scalar], Field(min_length=1)] | Annotated[
        dict[Annotated[str, Field(min_length=1)], dict[str, Any]], Field(min_length=1)] | None = Field(
        None, description="a list of values, or labels mapping to {path: value} settings")
    step: Annotated[float, Field(gt=0)] | None = Field(None, description="grid step of int or float")
    log: bool = Field(False, description="sample on a log scale (int or float)")

    @property
    def kind(self) -> Literal["int", "float", "choices"]:
        return "int" if self.int_range is not None else "float" if self.float_range is not None else "choices"

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path or [])

    @property
    def labelled(self) -> bool:
        return isinstance(self.choices, dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        given = [name for name, value in (("int", self.int_range), ("float", self.float_range),
                                          ("choices", self.choices)) if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of int: [low, high], float: [low, high] or choices: [...]"
                             + (f", got {' and '.join(given)}" if given else ""))
        if self.labelled:
            if self.path is not None:
                raise ValueError("labelled choices name their own paths ({label: {path: value}}); remove `path`")
            if any(not settings for settings in self.choices.values()):  # type: ignore[union-attr]
                raise ValueError("each labelled choice needs at least one {path: value}")
        elif self.path is None:
            raise ValueError("needs `path`: where the value goes in the spec, e.g. path: layers.c1.out")
        if self.kind == "choices" and not self.labelled:
            values = list(self.choices)  # type: ignore[arg-type]
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"choices must differ from each other, got {values}")
        if self.kind == "choices" and (self.step is not None or self.log):
            raise ValueError("step and log apply to int and float ranges, not to choices")
        if self.int_range is not None:
            low, high = self.int_range
            if low > high:
                raise ValueError(f"int: low must be <= high, got [{low}, {high}]")
            if self.step is not None and self.step != int(self.step):
                raise ValueError(f"step of an int range must be a whole number, got {self.step}")
            if self.log and (low < 1 or (self.step or 1) != 1):
                raise ValueError("log needs low >= 1 and no step")
        if self.float_range is not None:
            low_f, high_f = self.float_range
            if not low_f < high_f:
                raise ValueError(f"float: low must be < high, got [{low_f}, {high_f}]")
            if self.log and (low_f <= 0 or self.step is not None):
                raise ValueError("log needs low > 0 and no step")
        return self


class Budget(BaseModel):
    """What every trial trains with: passed to `rfcalc train` as flags, and its recipe fields written into every
    trial spec's train: section (so best.yaml trains as its trial did)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: Annotated[int, Field(ge=1, description="epochs per trial (--epochs)")]
    train_limit: Annotated[int, Field(ge=1, description="training images per trial (--train-limit)")] | None = None
    test_limit: Annotated[int, Field(ge=1, description="test images per trial (--test-limit)")] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    aug: AugMode | None = None
    workers: Annotated[int, Field(ge=0, description="DataLoader workers of each trial")] | None = None
    seed: Annotated[int, Field(ge=0)] | None = None
    holdout: Annotated[int, Field(ge=1, description="training images held out of training, fixed for the whole "
                                                    "sweep: every trial is measured on them instead of the test "
                                                    "split")] | None = None

    def recipe(self) -> dict[str, Any]:
        """What the budget sets of the spec's `train:` section (epochs, batch_size, aug, workers, seed): written into
        every trial spec, so that the spec alone says how its trial was trained (train_limit and test_limit
        choose images, not the recipe)."""
        return {k: v for k, v in self.model_dump().items() if v is not None and k in TrainConfig.model_fields}

    def flags(self) -> list[str]:
        """The budget as `rfcalc train` flags."""
        out: list[str] = []
        for field, value in self.model_dump().items():
            if value is not None and field != "holdout":  # the sweep makes the held-out data set itself
                out += ["--" + field.replace("_", "-"), str(value)]
        return out


class SweepFile(BaseModel):
    """The top level of a sweep file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")] | None = Field(
        None, description="the study's name (default: the sweep file's name)")
    spec: Annotated[str, Field(min_length=1)] | dict[str, Any] = Field(
        description="the base spec: a path relative to this file, or an inline spec")
    data: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="data for every trial (relative to this file); --data overrides it")
    constraints: dict[str, Any] | None = Field(None, description="rules laid over the base spec's, per rule")
    objective: tuple[ObjectiveName, ...] = Field(("accuracy",), description="accuracy, [accuracy, params] or "
                                                                             "[accuracy, macs]")
    space: Annotated[dict[Annotated[str, Field(pattern=PARAM_NAME)], Param], Field(min_length=1)]
    budget: Budget
    trials: Annotated[int, Field(ge=1, description="trials in the study in total, over all workers")]
    timeout: float | None = Field(None, description="this run starts no trial after this long: 90, 90s, 3m, 2h")
    pruner: PrunerName = "median"
    prune_after: Annotated[int, Field(ge=0, description="median pruner: completed trials before it stops any")] = 2
    min_epochs: Annotated[int, Field(ge=1, description="successive_halving / hyperband: epochs of the first rung "
                                                       "(the least a trial trains)")] = 1
    reduction_factor: Annotated[int, Field(ge=2, description="successive_halving / hyperband: 1 in this many "
                                                             "trials goes on to the next rung")] = 3
    startup_trials: Annotated[int, Field(ge=0, description="TPE: random trials before it models the space")] = 4
    population: Annotated[int, Field(ge=2, description="NSGA-II: population of a generation")] = 8
    seed: Annotated[int, Field(ge=0)] | None = Field(None, description="sampler seed (worker i uses seed + i)")
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="candidates tried first, e.g. the "
                                                                            "base spec's own values")

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> Any:
        form = tuple(value) if isinstance(value, list) else (value,) if isinstance(value, str) else None
        if form not in OBJECTIVES:
            raise ValueError(f"must be accuracy, [accuracy, params] or [accuracy, macs], got {value!r}")
        return form

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)
