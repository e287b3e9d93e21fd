"""Tiny data sets in every layout the trainer reads, tiny specs, and the trainer's CLI on a fresh app."""
from __future__ import annotations

import itertools
import os
import pickle
import signal
import tarfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner, Result

CLASSES = ["apple", "boat", "car", "dog", "egg", "fox", "goat", "hat", "ink", "jam"]


def make_images(per_class: int, size: int = 16, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images: each class has its own colour and a bright square in its own place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 60, (len(labels), size, size, 3)).astype(np.int64)
    for i, label in enumerate(labels):
        images[i] += (np.array([label * 23, 255 - label * 19, (label * 61) % 200]) // 2)[None, None, :]
        y0, x0 = (label * 3) % (size - 4), (label * 5) % (size - 4)
        images[i, y0:y0 + 4, x0:x0 + 4] = 250
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_pickle_folder(root: Path, per_class: int = 8, test_per_class: int = 4, size: int = 16,
                        classes: int = 10) -> Path:
    """CIFAR-10's python layout: root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x, y = make_images(per_class, size, classes, seed=1)
    tx, ty = make_images(test_per_class, size, classes, seed=2)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        with (folder / name).open("wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}, handle)

    parts = np.array_split(np.random.default_rng(3).permutation(len(y)), 5)
    for k, part in enumerate(parts, start=1):
        dump(f"data_batch_{k}", x[part], y[part])
    dump("test_batch", tx, ty)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES[:classes]], b"num_vis": size * size * 3}, handle)
    return folder


def write_tarball(root: Path, **kwargs: Any) -> Path:
    folder = write_pickle_folder(root / "src", **kwargs)
    path = root / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


def write_image_folder(root: Path, per_class: int = 8, test_per_class: int = 4, size: int = 16,
                       classes: int = 10) -> Path:
    """train/<class>/*.png and test/<class>/*.png (PNG: lossless, so the pixels are known exactly)."""
    import cv2

    for split, n, seed in (("train", per_class, 1), ("test", test_per_class, 2)):
        x, y = make_images(n, size, classes, seed=seed)
        for i, (image, label) in enumerate(zip(x, y)):
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}.png"), image[:, :, ::-1])
    return root


def spec_text(size: int = 16, classes: int | None = 10, train: str = "", extra_layers: str = "",
              constraints: str = "", norm: str = "bn") -> str:
    text = f"""
    version: 1
    name: tiny-test
    input: {{channels: 3, size: {size}}}
    {"classes: " + str(classes) if classes is not None else ""}
    defaults:
      conv: {{k: 3, padding: 1, bias: false, norm: {norm}, act: relu}}
    layers:
      - {{op: conv, name: c1, out: 8}}
      - {{op: conv, name: c2, out: 16, stride: 2}}
    {textwrap.indent(textwrap.dedent(extra_layers).strip(), "  ") if extra_layers else ""}
      - {{op: gap, name: gap}}
      - {{op: linear, name: fc, out: {classes or 10}}}
    """
    out = textwrap.dedent(text).strip() + "\n"
    if constraints:
        out += "constraints:\n" + textwrap.indent(textwrap.dedent(constraints).strip(), "  ") + "\n"
    if train:
        out += "train:\n" + textwrap.indent(textwrap.dedent(train).strip(), "  ") + "\n"
    return out


def make_app() -> typer.Typer:
    """A fresh app with only the trainer's commands (the project's CLI adds them the same way)."""
    from rfcalc.cli.train_commands import register

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    register(app)
    return app


def run(args: list[str]) -> Result:
    return CliRunner().invoke(make_app(), [str(a) for a in args])


INFO = ("notice:", "note:", "decoding ", "reading ", "training ", "lr range test", "check: ", "epoch ")


def one_line_error(result: Result) -> str:
    """The one error line of a failed command: stderr holds it (last) and informational lines only."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines: list[str] = []
    for ln in result.stderr.splitlines():
        if ln.startswith("  ") and lines:  # a long notice goes on, indented, on the lines below
            lines[-1] += " " + ln.strip()
        elif ln.strip():
            lines.append(ln)
    assert lines, result.output
    assert all(ln.startswith(INFO) for ln in lines[:-1]), result.stderr
    return lines[-1]


def write_cifar100_folder(root: Path, per_class: int = 3, test_per_class: int = 2, size: int = 8,
                          classes: int = 100) -> Path:
    """CIFAR-100's python layout: root/cifar-100-python/{train, test, meta} with fine labels."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n, seed in (("train", per_class, 1), ("test", test_per_class, 2)):
        x, y = make_images(n, size, classes, seed=seed)
        with (folder / name).open("wb") as handle:
            pickle.dump({b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist(),
                         b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1)}, handle)
    with (folder / "meta").open("wb") as handle:
        pickle.dump({b"fine_label_names": [f"class{i:02d}".encode() for i in range(classes)],
                     b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}, handle)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own data cache, and torch one thread (tiny tensors: fastest, and it leaves the other
    core to other tests). Autouse in every test module that imports it."""
    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_file(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    """``text`` written as tmp_path/name."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def signal_after_step(step: int | None, sig: signal.Signals = signal.SIGINT) -> Iterator[None]:
    """Send ``sig`` to this process right after optimizer step ``step`` (0-based, counted from here; None: after
    every step), as Ctrl-C or torchrun's SIGTERM would arrive mid-run. Through torch's global optimizer hook, so
    that the trainer needs no hook of its own for tests."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = itertools.count()

    def after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        if next(steps) == step or step is None:
            os.kill(os.getpid(), sig)

    handle = register_optimizer_step_post_hook(after_step)
    try:
        yield
    finally:
        handle.remove()
