"""Checkpoints: written atomically (a temporary file, then rename), read with one-line errors, matched
against the spec tensor by tensor by :mod:`rfcalc.model.weights` (which also reads them).

Layout (a dict; ``torch.load(..., weights_only=True)`` reads it):

- ``format``, ``version``; ``spec``: name, file, digest, params, rf; ``classes``, ``mean``, ``std``, ``data``;
- ``model``: the weights to use (the EMA weights when EMA is on) - what ``rfcalc evaluate``/``export`` load;
- ``epoch`` (completed epochs), ``batch`` (next batch of the epoch under way), ``metrics``, ``best``;
- ``resume`` (``last.pt`` only): options, live weights, optimizer, schedule, EMA, RNG state, partial epoch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rfcalc.model.weights import FORMAT, VERSION


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` so that a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def payload(*, spec: Any, images: Any, model_state: dict[str, Any], epoch: int, batch: int,
            metrics: list[dict[str, Any]], best: dict[str, Any], resume: dict[str, Any] | None) -> dict[str, Any]:
    out = {"format": FORMAT, "version": VERSION,
           "spec": {"name": spec.name, "file": str(spec.file), "digest": spec.digest, "params": spec.report.params,
                    "rf": list(spec.report.rf)},
           "classes": list(images.classes), "mean": list(images.mean), "std": list(images.std),
           "data": images.source, "model": {k: v.detach().cpu() for k, v in model_state.items()},
           "epoch": epoch, "batch": batch, "metrics": metrics, "best": best}
    if resume is not None:
        out["resume"] = resume
    return out
