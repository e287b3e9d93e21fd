"""The `train:` section's schema, re-exported: it lives in :mod:`rfcalc.spec.train` (the core reads it without the
trainer); this name keeps existing imports working."""
from __future__ import annotations

from rfcalc.spec.train import (
    AUG_MODES,
    DEFAULT_AUGMENTATIONS,
    AugItem,
    AugMode,
    FastAug,
    OptimizerName,
    ScheduleName,
    TrainConfig,
    augmentation_steps,
)

__all__ = ["AUG_MODES", "DEFAULT_AUGMENTATIONS", "AugItem", "AugMode", "FastAug", "OptimizerName", "ScheduleName",
           "TrainConfig", "augmentation_steps"]
