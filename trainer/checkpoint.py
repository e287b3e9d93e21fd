"""Checkpoints: written atomically (a temporary file, then rename), read with one-line errors, matched
against the spec tensor by tensor (the error names the first mismatch).

Layout (a dict; ``torch.load(..., weights_only=True)`` reads it):

- ``format``, ``version``; ``spec``: name, digest, params, rf; ``classes``, ``mean``, ``std``, ``data``;
- ``model``: the weights to use (the EMA weights when EMA is on) - what ``rfcalc evaluate``/``export`` load;
- ``epoch`` (completed epochs), ``batch`` (next batch of the epoch under way), ``metrics``, ``best``;
- ``resume`` (``last.pt`` only): options, live weights, optimizer, schedule, EMA, RNG state, partial epoch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rfcalc.errors import RfcalcError

FORMAT, VERSION = "rfcalc-checkpoint", 1


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` so that a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RfcalcError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle is "not a checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RfcalcError(f"{path}: not a readable PyTorch checkpoint ({first[:200]})") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return data
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state_dict
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data
    raise RfcalcError(f"{path}: not an rfcalc checkpoint nor a state_dict")


def first_mismatch(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> str | None:
    """The first tensor (in the module's order) whose name or shape differs, in words; None when all fit."""
    for key, tensor in expected.items():
        if key not in found:
            return f"'{key}' {list(tensor.shape)} is missing from the checkpoint"
        other = found[key]
        if not isinstance(other, torch.Tensor) or other.shape != tensor.shape:
            shape = list(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            return f"'{key}' is {shape} in the checkpoint but {list(tensor.shape)} in the spec"
    for key in found:
        if key not in expected:
            return f"'{key}' in the checkpoint has no place in the spec"
    return None


def load_weights(model: nn.Module, state: dict[str, Any], path: Path | str, spec_name: str) -> None:
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items()}
    problem = first_mismatch(model.state_dict(), state)
    if problem:
        raise RfcalcError(f"{path} does not match spec '{spec_name}': {problem}")
    model.load_state_dict(state)


def payload(*, spec: Any, images: Any, model_state: dict[str, Any], epoch: int, batch: int,
            metrics: list[dict[str, Any]], best: dict[str, Any], resume: dict[str, Any] | None) -> dict[str, Any]:
    out = {"format": FORMAT, "version": VERSION,
           "spec": {"name": spec.name, "digest": spec.digest, "params": spec.report.params,
                    "rf": list(spec.report.rf)},
           "classes": list(images.classes), "mean": list(images.mean), "std": list(images.std),
           "data": images.source, "model": {k: v.detach().cpu() for k, v in model_state.items()},
           "epoch": epoch, "batch": batch, "metrics": metrics, "best": best}
    if resume is not None:
        out["resume"] = resume
    return out
