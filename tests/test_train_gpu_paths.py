"""What a run chooses for the machine it is on, and what the GPU paths compute, checked on the CPU.

- the albumentations transforms that have a device equivalent become batched tensor ops (and compute what the
  transform computes on the cases where it is exact); the others keep worker processes, sized to the CPU count
  on a GPU machine and left as they are on a CPU;
- a training run opens no socket (albumentations asks PyPI for its newest version when imported, unless told not to);
- bench/gpu.py runs end to end on the CPU (the figures themselves come from a GPU).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR_PLACES

from rfcalc.trainer import device_aug
from rfcalc.trainer.batches import auto_workers
from rfcalc.trainer.config import TrainConfig
from rfcalc.trainer.fast_aug import drawer

ROOT = Path(__file__).resolve().parents[1]
CIFAR = next((p for p in CIFAR_PLACES if p.is_dir()), CIFAR_PLACES[0])
MEAN = torch.tensor([125.0, 123.0, 114.0])


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))


def _draw(seed: int = 0) -> device_aug.Draw:
    return drawer(torch.Generator().manual_seed(seed), 0, 6, 6)


def test_default_transforms_all_have_a_device_equivalent() -> None:
    steps = device_aug.translate(TrainConfig().steps())
    assert not isinstance(steps, str)
    assert device_aug.describe(steps) == "HorizontalFlip, Affine, CoarseDropout"
    flip, affine, hole = steps
    assert flip == device_aug.Flip(0.5)
    assert affine == device_aug.Affine((-0.0625, 0.0625), (0.95, 1.05), (-7.0, 7.0), False, True, (0.0,), 0.5)
    assert hole == device_aug.Hole(8, 8, None, 0.5)


@pytest.mark.parametrize("steps,reason", [
    ([("ToGray", {"p": 0.1})], "ToGray"),
    ([("Affine", {"shear": 5})], "Affine(shear)"),
    ([("Affine", {"border_mode": "BORDER_WRAP"})], "Affine border_mode BORDER_WRAP"),
    ([("CoarseDropout", {"num_holes_range": [1, 3]})], "CoarseDropout with other than one hole"),
    ([("HorizontalFlip", {"p": 0.5}), ("RandomCrop", {"height": 28, "width": 28})], "RandomCrop(height, width)"),
])
def test_transforms_without_an_equivalent_are_named(steps: list[tuple[str, dict[str, object]]], reason: str) -> None:
    result = device_aug.translate(steps)
    assert isinstance(result, str) and result.startswith(reason)


def test_flip_always_is_the_mirror_image() -> None:
    x = _images()
    out = device_aug.DevicePipeline([device_aug.Flip(1.0)], MEAN)(x, _draw())
    assert torch.equal(out, x.flip(2))
    assert torch.equal(device_aug.DevicePipeline([device_aug.Flip(0.0)], MEAN)(x, _draw()), x)


def test_affine_identity_and_whole_pixel_shift_are_exact() -> None:
    x = _images()
    identity = device_aug.Affine((0, 0), (1, 1), (0, 0), False, True, None, 1.0)
    assert torch.equal(device_aug.DevicePipeline([identity], MEAN)(x, _draw()), x)
    shift = device_aug.Affine((3 / 32, 3 / 32), (1, 1), (0, 0), False, True, None, 1.0)  # +3 px right and down
    out = device_aug.DevicePipeline([shift], MEAN)(x, _draw())
    assert torch.equal(out[:, 3:, 3:], x[:, :-3, :-3])
    # BORDER_REFLECT_101: the rows shifted in mirror the image about its edge row, without repeating it
    assert torch.equal(out[:, 2, 3:], x[:, 1, :-3]) and torch.equal(out[:, 0, 3:], x[:, 3, :-3])


def test_affine_constant_border_fills() -> None:
    x = _images()
    shift = device_aug.Affine((5 / 32, 5 / 32), (1, 1), (0, 0), False, False, (7.0,), 1.0)
    out = device_aug.DevicePipeline([shift], MEAN)(x, _draw())
    assert (out[:, :5] == 7).all() and (out[:, :, :5] == 7).all()


def test_hole_is_inside_the_image_with_the_mean() -> None:
    x = torch.full((64, 32, 32, 3), 255, dtype=torch.uint8)
    out = device_aug.DevicePipeline([device_aug.Hole(8, 8, None, 1.0)], MEAN)(x, drawer(torch.Generator(), 0, 64, 64))
    filled = (out != 255).all(3)
    assert (filled.sum((1, 2)) == 64).all()  # every image: one whole 8x8 hole, never cut by the border
    assert (out[filled] == MEAN.round().to(torch.uint8)).all()


def test_a_rank_gets_the_numbers_its_images_get_in_one_process() -> None:
    whole = drawer(torch.Generator().manual_seed(3), 0, 8, 8)(2)
    part = drawer(torch.Generator().manual_seed(3), 4, 4, 8)(2)
    assert torch.equal(whole[4:], part)


def test_workers_follow_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert auto_workers(torch.device("cpu"), 2) == 2  # the CPU default is today's
    assert auto_workers(torch.device("cuda"), 2) == 15  # a GPU machine: the CPU count less the trainer's own
    assert auto_workers(torch.device("cuda"), 4) == 4  # an explicit count is kept
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert auto_workers(torch.device("cuda"), 2) == 16


SOCKET_GUARD = '''
import os, socket
_log = os.environ["SOCKET_LOG"]
def _refuse(*args, **kwargs):
    with open(_log, "a") as fh:
        fh.write(repr(args[:2]) + "\\n")
    raise OSError("rfcalc test: no network here")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
'''


@pytest.mark.slow
def test_a_training_run_opens_no_socket(tmp_path: Path) -> None:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SOCKET_GUARD)
    log = tmp_path / "sockets.log"
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    env.update(SOCKET_LOG=str(log), PYTHONPATH=os.pathsep.join([str(guard), str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "rfcalc", "train", str(ROOT / "examples" / "quickstart.yaml"),
                           "--data", str(CIFAR), "--epochs", "1", "--train-limit", "256", "--test-limit", "100",
                           "--batch-size", "128", "--aug", "albumentations", "--workers", "0", "--out",
                           str(tmp_path / "run"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not log.exists(), log.read_text()
    # the guard works: importing albumentations without the switch asks the network
    probe = subprocess.run([sys.executable, "-c", "import albumentations"], capture_output=True, text=True,
                           env=env, timeout=120, check=False)
    assert probe.returncode == 0
    assert log.exists() and log.read_text(), "albumentations no longer calls the network: drop this half"


@pytest.mark.slow
def test_gpu_bench_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--device", "cpu", "--small", "--out",
                           str(tmp_path), "--data", str(CIFAR), "--phases", "speed,accuracy", "--paths",
                           "step,graph,eager", "--reach", "reach", "--candidates", "rn16", "--runs", "rn16-t:1",
                           "--parallel", "1"],
                          capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((tmp_path / "gpu.json").read_text())
    assert data["step"]["eager_ms"] > 0
    assert {"fast, CUDA graph", "fast, eager"} <= set(data["paths"])
    assert all("error" not in r for r in data["paths"].values()), data["paths"]
    assert data["paths"]["fast, eager"]["mode"] == "eager"
    assert data["reach"]["epochs"] == 1
    assert data["accuracy"]["rn16 seed 0"]["params"] == 97_786
    assert list(data["accuracy"]) == ["rn16-t seed 1", "rn16 seed 0"]  # --runs first
    assert "| rn16 seed 0 | 97,786 |" in (tmp_path / "gpu.md").read_text()
