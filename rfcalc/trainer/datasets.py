"""Readers of the three data layouts, each returning the same :class:`RawData` (uint8 images, int64 labels).

- CIFAR python folder: ``data_batch_1..5`` + ``test_batch`` + ``batches.meta`` (CIFAR-10) or
  ``train`` + ``test`` + ``meta`` (CIFAR-100), directly or in one subfolder (``cifar-10-batches-py``);
- the same as a ``.tar.gz`` (read in place, never extracted);
- an image folder: ``train/<class>/*`` and ``test/<class>/*`` (or ``val/``), any format OpenCV decodes.

Every failure is an :class:`rfcalc.RfcalcError` (exit 2) whose one line names the file and says what is wrong.
"""
from __future__ import annotations

import os
import pickle
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rfcalc.errors import RfcalcError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
LAYOUTS = ("an image folder (train/<class>/*, test/<class>/*), a CIFAR python folder (cifar-10-batches-py, "
           "cifar-100-python) or its .tar.gz")


@dataclass
class RawData:
    """A decoded data set: images are uint8 [N, H, W, C]; labels int64 [N]."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]


def corrupt(path: Path | str, why: str) -> RfcalcError:
    return RfcalcError(f"{path}: {why}; the data set looks incomplete or corrupt (re-create it, or pass another "
                       f"--data)")


# ---------------------------------------------------------------- CIFAR python batches


def _unpickle(raw: bytes | Any, name: str) -> dict[str, Any]:
    try:
        data = pickle.loads(raw, encoding="latin1") if isinstance(raw, bytes) else pickle.load(raw, encoding="latin1")
    except Exception as exc:  # any unpickling failure means a corrupt file
        raise corrupt(name, f"not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise corrupt(name, "not a CIFAR python batch (no dictionary inside)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _batch_arrays(batch: dict[str, Any], name: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in batch or label_key not in batch:
        raise corrupt(name, f"a CIFAR batch needs 'data' and '{label_key}', found {', '.join(map(str, batch))}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] % 3 or data.shape[0] != labels.shape[0]:
        raise corrupt(name, f"'data' must be uint8 [N, 3*H*W] with one label per row, got {data.dtype} "
                            f"{list(data.shape)} and {labels.shape[0]} labels")
    side = int(round((data.shape[1] // 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise corrupt(name, f"rows of {data.shape[1]} values are not 3 square channels")
    images = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_cifar(read: Callable[[str], Any], names: set[str], where: str) -> RawData:
    """CIFAR-10 or CIFAR-100 from a function that opens a member by its base name."""
    if "data_batch_1" in names:
        train_names, test_names, meta_name, label_key, names_key = (list(CIFAR10_FILES[:5]), ["test_batch"],
                                                                   "batches.meta", "labels", "label_names")
    else:
        train_names, test_names, meta_name, label_key, names_key = (["train"], ["test"], "meta", "fine_labels",
                                                                   "fine_label_names")
    missing = [n for n in (*train_names, *test_names, meta_name) if n not in names]
    if missing:
        raise corrupt(where, f"CIFAR files missing: {', '.join(missing)}")
    parts = {n: _batch_arrays(_unpickle(read(n), f"{where}/{n}"), f"{where}/{n}", label_key)
             for n in (*train_names, *test_names)}
    meta = _unpickle(read(meta_name), f"{where}/{meta_name}")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(names_key, [])]
    train_x = np.concatenate([parts[n][0] for n in train_names])
    train_y = np.concatenate([parts[n][1] for n in train_names])
    test_x = np.concatenate([parts[n][0] for n in test_names])
    test_y = np.concatenate([parts[n][1] for n in test_names])
    top = int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1
    if not classes or len(classes) < top:
        raise corrupt(f"{where}/{meta_name}", f"needs {names_key} for {top} classes, has {len(classes)}")
    return RawData(train_x, train_y, test_x, test_y, classes)


def find_pickle_folder(folder: Path) -> Path | None:
    """The folder holding CIFAR python batches: ``folder`` itself or one of its subfolders."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "data_batch_1").is_file() or ((candidate / "train").is_file()
                                                     and (candidate / "meta").is_file()):
            return candidate
    return None


def read_pickle_folder(folder: Path) -> RawData:
    names = {p.name for p in folder.iterdir() if p.is_file()}

    def read(name: str) -> bytes:
        try:
            return (folder / name).read_bytes()
        except OSError as exc:
            raise corrupt(folder / name, f"cannot read ({exc.strerror})") from None

    return _read_cifar(read, names, str(folder))


def read_tarball(path: Path) -> RawData:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                handle = tar.extractfile(members[name])
                if handle is None:
                    raise corrupt(f"{path}:{name}", "cannot read this member")
                return handle.read()

            return _read_cifar(read, set(members), str(path))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise corrupt(path, f"not a readable .tar.gz ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- image folder


def is_image_folder(folder: Path) -> bool:
    return (folder / "train").is_dir() and any((folder / s).is_dir() for s in ("test", "val"))


def _class_files(split: Path) -> tuple[list[str], list[tuple[str, int]]]:
    classes = sorted(d.name for d in split.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise corrupt(split, "no class folders (expected <split>/<class>/<image files>)")
    files = []
    for label, name in enumerate(classes):
        with os.scandir(split / name) as entries:
            found = sorted(e.path for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
        if not found:
            raise corrupt(split / name, "class folder without images")
        files += [(f, label) for f in found]
    return classes, files


def _decode(path: str, channels: int) -> np.ndarray:
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), flag)
    except (OSError, cv2.error) as exc:
        raise corrupt(path, f"cannot read image ({exc})") from None
    if image is None:
        raise corrupt(path, "cannot decode image")
    if channels == 1:
        return image[:, :, None]
    return image[:, :, ::-1]  # BGR -> RGB


def _decode_all(files: list[tuple[str, int]], channels: int, tick: Callable[[int], None]) -> np.ndarray:
    def chunks() -> Iterator[list[tuple[str, int]]]:
        for start in range(0, len(files), 512):
            yield files[start:start + 512]

    def work(chunk: list[tuple[str, int]]) -> list[np.ndarray]:
        return [_decode(path, channels) for path, _ in chunk]

    images: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for done in pool.map(work, chunks()):
            images += done
            tick(len(done))
    shape = images[0].shape
    for (path, _), image in zip(files, images):
        if image.shape != shape:
            raise corrupt(path, f"is {image.shape[0]}x{image.shape[1]}x{image.shape[2]}, the first image is "
                                f"{shape[0]}x{shape[1]}x{shape[2]}; all images must have one size")
    return np.stack(images)


def read_image_folder(folder: Path, channels: int, tick: Callable[[int], None] = lambda n: None) -> RawData:
    test_dir = folder / "test" if (folder / "test").is_dir() else folder / "val"
    classes, train_files = _class_files(folder / "train")
    test_classes, test_files = _class_files(test_dir)
    if test_classes != classes:
        extra = sorted(set(test_classes) ^ set(classes))
        raise corrupt(test_dir, f"classes differ from train/ ({', '.join(extra[:5])})")
    train_x = _decode_all(train_files, channels, tick)
    test_x = _decode_all(test_files, channels, tick)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise corrupt(test_dir, f"images are {list(test_x.shape[1:])}, train/ images are {list(train_x.shape[1:])}")
    return RawData(train_x, np.array([lab for _, lab in train_files], np.int64), test_x,
                   np.array([lab for _, lab in test_files], np.int64), classes)


def count_images(folder: Path) -> int:
    total = 0
    for split in ("train", "test", "val"):
        if (folder / split).is_dir():
            for entry in os.scandir(folder / split):
                if entry.is_dir():
                    total += sum(1 for e in os.scandir(entry.path) if e.name.lower().endswith(IMAGE_SUFFIXES))
    return total
