"""The text artifacts of a run: ``metrics.jsonl`` (one object per epoch) and ``summary.json``.

The boundary where the typed rows of :mod:`rfcalc.trainer.state` become JSON (the same keys as always).
"""
from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from rfcalc.trainer.state import EpochRow

METRIC_KEYS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "images_per_s", "seconds")
THRESHOLDS = (0.85, 0.90)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_metrics(path: Path, rows: list[EpochRow]) -> None:
    """All epochs so far, one JSON object per line (rewritten whole, so a resumed run has no duplicates)."""
    write_text_atomic(path, "".join(json.dumps(row.to_dict()) + "\n" for row in rows))


def versions() -> dict[str, str]:
    import numpy
    import torch

    import rfcalc

    out = {"python": platform.python_version(), "rfcalc": rfcalc.__version__, "torch": torch.__version__,
           "numpy": numpy.__version__}
    try:  # the installed version, without importing it (only the albumentations path needs it)
        out["albumentations"] = metadata.version("albumentations")
    except metadata.PackageNotFoundError:  # pragma: no cover - part of the train extra
        pass
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        out["cuda"] = str(torch.version.cuda)
    return out


def reached(rows: list[EpochRow], threshold: float) -> dict[str, Any] | None:
    """The first epoch whose test accuracy is at least ``threshold``, with the time it was reached."""
    for row in rows:
        if row.test_acc >= threshold:
            return {"epoch": row.epoch, "seconds": round(row.elapsed, 2), "train_seconds": round(row.train_elapsed, 2)}
    return None


def summary(*, spec: Any, rows: list[EpochRow], status: str, device: str, options: dict[str, Any],
            data: dict[str, Any], steps: dict[str, Any], per_class: dict[str, float] | None,
            distributed: dict[str, Any] | None = None, step_mode: str = "eager",
            warmup_seconds: float = 0.0) -> dict[str, Any]:
    best = max(rows, key=lambda r: r.test_acc) if rows else None
    return {
        "spec": {"name": spec.name, "file": spec.file, "digest": spec.digest, "params": spec.report.params,
                 "rf": list(spec.report.rf), "macs": spec.report.macs},
        "status": status,
        "epochs_done": len(rows),
        "best_test_acc": best.test_acc if best else None,
        "best_epoch": best.epoch if best else None,
        "final_test_acc": rows[-1].test_acc if rows else None,
        "final_train_acc": rows[-1].train_acc if rows else None,
        "reached": {f"{int(t * 100)}%": reached(rows, t) for t in THRESHOLDS},
        "seconds": round(rows[-1].elapsed, 2) if rows else 0.0,
        "train_seconds": round(rows[-1].train_elapsed, 2) if rows else 0.0,
        "warmup_seconds": warmup_seconds,  # before epoch 1 (CUDA: lazy state, graph capture); in "seconds"
        "step_mode": step_mode,            # "cuda graph" or "eager"
        "images_per_s": round(sum(r.images_per_s for r in rows) / len(rows), 1) if rows else 0.0,
        "per_class_test_acc": per_class,
        "steps": steps,
        "device": device,
        "distributed": distributed,
        "data": data,
        "options": options,
        "versions": versions(),
    }


def write_summary(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
