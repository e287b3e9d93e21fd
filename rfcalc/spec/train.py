"""The optional `train:` section of a spec: the defaults of `rfcalc train` (flags override them).

Pure pydantic, no torch and no albumentations: it lives with the rest of the spec's schema, so the core
(`spec`, `analysis`) reads a spec without reaching into the trainer. Transform names and their arguments are
checked by the trainer when it builds the pipeline (albumentations is an optional dependency).

Every field is optional; its default is the value written below (``TrainConfig()``). docs/train.md's `train:`
block lists the same defaults with a comment each, and a test keeps it equal to this model; the contract's
section 6.2 (docs/SPEC_FORMAT.md) says what each field means.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

OptimizerName = Literal["sgd", "adamw"]
ScheduleName = Literal["onecycle", "cosine", "constant"]
AugMode = Literal["albumentations", "fast"]
AUG_MODES: tuple[str, ...] = AugMode.__args__  # type: ignore[attr-defined]



def _check_item(item: Any) -> Any:
    problem = _item_problem(item)
    if problem:
        raise ValueError(problem)
    return item


# One transform: "HorizontalFlip", {HorizontalFlip: {p: 0.5}} or {name: HorizontalFlip, p: 0.5}.
AugItem = Annotated[Union[str, dict[str, Any]], AfterValidator(_check_item)]

DEFAULT_AUGMENTATIONS: tuple[dict[str, Any], ...] = (
    {"HorizontalFlip": {"p": 0.5}},
    {"Affine": {"translate_percent": [-0.0625, 0.0625], "scale": [0.95, 1.05], "rotate": [-7, 7],
                "border_mode": "BORDER_REFLECT_101", "p": 0.5}},
    {"CoarseDropout": {"num_holes_range": [1, 1], "hole_height_range": [8, 8], "hole_width_range": [8, 8],
                       "fill": "mean", "p": 0.5}},
)


def augmentation_steps(items: list[AugItem]) -> list[tuple[str, dict[str, Any]]]:
    """The items of `augmentations` as (transform name, arguments); items are already validated."""
    steps: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            steps.append((item, {}))
        elif "name" in item:
            steps.append((str(item["name"]), {k: v for k, v in item.items() if k != "name"}))
        else:
            (name, args), = item.items()
            steps.append((str(name), dict(args or {})))
    return steps


def _default_augmentations() -> list[AugItem]:
    return [dict(a) for a in DEFAULT_AUGMENTATIONS]


class FastAug(BaseModel):
    """`aug: fast`: batched augmentations on the training device (no worker processes)."""

    model_config = ConfigDict(extra="forbid")

    flip: bool = Field(True, description="random horizontal flip, p = 0.5")
    translate: Annotated[int, Field(ge=0, le=16, description="random shift of up to this many pixels, "
                                                                "reflect-padded")] = 2
    cutout: Annotated[int, Field(ge=0, description="side of a square cut out (filled with the mean); 0 = off")] = 0
    cutout_p: Annotated[float, Field(ge=0, le=1, description="probability of the cutout")] = 0.5


class TrainConfig(BaseModel):
    """Training defaults; every field can be overridden on the command line."""

    model_config = ConfigDict(extra="forbid")

    data: Annotated[str, Field(min_length=1, description="image folder (train/<class>/*, test/<class>/*), "
                               "CIFAR python folder or .tar.gz, or cifar10 / cifar100")] | None = None
    epochs: Annotated[int, Field(ge=1)] = 20
    batch_size: Annotated[int, Field(ge=1)] = 256
    optimizer: OptimizerName = "sgd"
    lr: Annotated[float, Field(gt=0, description="peak learning rate")] = 0.2
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Field(ge=0)] = 5e-4
    schedule: ScheduleName = "onecycle"
    warmup: Annotated[float, Field(gt=0, lt=1, description="fraction of the steps spent rising "
                                                           "(OneCycleLR pct_start)")] = 0.2
    div_factor: Annotated[float, Field(ge=1, description="initial lr = lr / div_factor")] = 10.0
    final_div_factor: Annotated[float, Field(ge=1, description="final lr = initial lr / final_div_factor")] = 100.0
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.1
    aug: AugMode = "albumentations"
    augmentations: list[AugItem] = Field(default_factory=_default_augmentations)
    fast_aug: FastAug = Field(default_factory=FastAug)
    ema: Annotated[float, Field(gt=0, lt=1, description="decay of an EMA of the weights")] | None = None
    zero_init_residual: bool = Field(False, description="start the last norm of every residual body at scale "
                                     "zero: each residual block begins as its shortcut")
    tta: bool = True
    workers: Annotated[int, Field(ge=0, description="DataLoader worker processes (albumentations)")] = 2
    seed: Annotated[int, Field(ge=0)] = 0

    @field_validator("augmentations", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        return augmentation_steps(self.augmentations)


def _item_problem(item: Any) -> str:
    form = "write a transform as HorizontalFlip, {HorizontalFlip: {p: 0.5}} or {name: HorizontalFlip, p: 0.5}"
    if isinstance(item, str):
        return "" if item.isidentifier() else f"{item!r} is not a transform name; {form}"
    if "name" in item:
        return "" if isinstance(item["name"], str) and item["name"].isidentifier() else f"bad name; {form}"
    if len(item) != 1:
        return f"a mapping with {len(item)} keys ({', '.join(map(str, item))}); {form}"
    (name, args), = item.items()
    if not isinstance(name, str) or not name.isidentifier():
        return f"{name!r} is not a transform name; {form}"
    if args is not None and not isinstance(args, dict):
        return f"the arguments of {name} must be a mapping, got {args!r}; {form}"
    return ""
