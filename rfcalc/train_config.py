"""The optional `train:` section of a spec (defaults for `rfcalc train`). Pure pydantic, no torch.

Owned by the trainer work (issue 5); the spec models only reference :class:`TrainConfig`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class TrainConfig(BaseModel):
    """Training defaults; every field can be overridden on the command line."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    augmentations: list[dict[str, Any]] | None = None
