"""Where the benchmarks find the real CIFAR-10 JPEGs: ``../shared/datasets/cifar10-jpeg`` beside the checkout
(one folder up again from a git worktree under ``wt/``). The one place the benches name it."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PLACES = [ROOT.parent / "shared" / "datasets" / "cifar10-jpeg",
           ROOT.parent.parent / "shared" / "datasets" / "cifar10-jpeg"]
CIFAR = next((place for place in _PLACES if place.is_dir()), _PLACES[0])
