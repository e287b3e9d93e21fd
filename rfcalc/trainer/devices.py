"""Which device a run uses: ``--device`` resolved to a ``torch.device`` (one-line errors), and its name in words."""
from __future__ import annotations

import torch

from rfcalc.errors import RfcalcError

__all__ = ["device_name", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; a requested accelerator that is missing is a one-line error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RfcalcError(f"--device {name}: CUDA is not available here (torch {torch.__version__}); "
                              f"use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RfcalcError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise RfcalcError("--device mps: MPS is not available here; use --device cpu or auto")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":  # pragma: no cover - no GPU in CI
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'' if threads == 1 else 's'})"
    return device.type
