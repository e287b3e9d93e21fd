"""Checkpoints and weights: the one reader of checkpoint files and the one loader of weights into a model.

A checkpoint is what ``rfcalc train`` writes (a dict with ``"format": "rfcalc-checkpoint"`` and the weights
under ``"model"``), any dict holding a state_dict under ``"model"``, or a bare state_dict. Every failure is
one :class:`~rfcalc.errors.RfcalcError` line naming the file and, for weights that do not fit, the first
tensor that differs. Needs torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from rfcalc.errors import RfcalcError

FORMAT, VERSION = "rfcalc-checkpoint", 1


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict with the weights under ``"model"`` (a bare state_dict is wrapped)."""
    path = Path(path)
    if not path.exists():
        raise RfcalcError(f"{path}: no such checkpoint")
    if not path.is_file():
        raise RfcalcError(f"{path}: not a file, expected a checkpoint (.pt)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle is "not a checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RfcalcError(f"{path}: not a readable PyTorch checkpoint ({first[:200]})") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state_dict
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data
    raise RfcalcError(f"{path}: not an rfcalc checkpoint nor a state_dict ({_describe(data)})")


def _describe(data: Any) -> str:
    """What a file held, in a few words: 'a list', 'an empty dict', "a dict with keys 'a', 'b', …"."""
    if isinstance(data, dict):
        if not data:
            return "an empty dict"
        keys = ", ".join(repr(k) for k in list(data)[:4])
        return f"a dict with keys {keys}{', …' if len(data) > 4 else ''} and no state_dict under 'model'"
    return f"a {type(data).__name__}"


def state_of(checkpoint: Any) -> dict[str, Any]:
    """The state_dict inside a checkpoint dict (key ``"model"``), or the checkpoint itself when it is one."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        return dict(checkpoint["model"])
    if isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return dict(checkpoint)
    raise RfcalcError(f"the checkpoint holds a {type(checkpoint).__name__}, not a state_dict (expected a dict with "
                      f"key 'model' or a bare state_dict)")


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


def load_weights(model: nn.Module, checkpoint: Any, *, source: Path | str = "the checkpoint",
                 spec_name: str | None = None) -> None:
    """Load a checkpoint dict or a bare state_dict into ``model``, strictly; the error names the first misfit.

    Keys saved from a ``torch.compile``d model (``_orig_mod.`` prefix) load into the plain model.
    """
    state = {k.removeprefix("_orig_mod."): v for k, v in state_of(checkpoint).items()}
    problem = first_mismatch(model.state_dict(), state)
    if problem:
        name = spec_name if spec_name is not None else getattr(model, "spec_name", None)
        which = f"spec '{name}'" if name else "this spec"
        raise RfcalcError(f"{source} does not fit {which}: {problem}")
    model.load_state_dict(state)
