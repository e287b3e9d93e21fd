"""`--data` -> an :class:`ImageSet` in memory: the right reader, a uint8 cache, subsets and statistics.

Images are decoded once into ``$RFCALC_CACHE`` (default ``~/.cache/rfcalc``) as ``.npy`` files keyed by
the data path, its modification times and sizes; later runs load them in about a second.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rfcalc.analysis.load import Spec
from rfcalc.errors import RfcalcError
from rfcalc.trainer import datasets
from rfcalc.trainer.datasets import LAYOUTS, RawData
from rfcalc.trainer.download import ARCHIVES, archive_path

CACHE_VERSION = 1
SUBSET_SEED = 0  # subsets are the same for every --seed, so runs with different seeds see the same images


@dataclass
class ImageSet:
    """A data set in memory. ``mean``/``std`` are per channel, 0..1, of the full training split."""

    name: str
    classes: list[str]
    train_x: np.ndarray  # uint8 [N, H, W, C]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    from_cache: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W), as the spec's input."""
        _, h, w, c = self.train_x.shape
        return c, h, w


def cache_dir() -> Path:
    return Path(os.environ.get("RFCALC_CACHE") or Path.home() / ".cache" / "rfcalc")


def _stat_key(path: Path) -> list[object]:
    stat = path.stat()
    return [str(path), stat.st_mtime_ns, stat.st_size]


def _fingerprint(kind: str, path: Path) -> list[object]:
    """What changes when the data changes: mtimes and sizes of the files or folders that hold it."""
    if kind == "image-folder":
        parts: list[object] = []
        for split in ("train", "test", "val"):
            if (path / split).is_dir():
                parts.append(_stat_key(path / split))
                parts += [_stat_key(d) + [len(os.listdir(d))] for d in sorted((path / split).iterdir()) if d.is_dir()]
        return parts
    if kind == "pickle-folder":
        return [_stat_key(p) for p in sorted(path.iterdir()) if p.is_file()]
    return [_stat_key(path)]


def _locate(data: str, cache: Path) -> tuple[str, Path]:
    """(kind, path) of ``--data``: image-folder, pickle-folder or tarball."""
    if data.lower().replace("-", "") in ARCHIVES:
        return "tarball", archive_path(data.lower().replace("-", ""), cache)
    path = Path(data).expanduser()
    if not path.exists():
        raise RfcalcError(f"--data {data}: no such file or folder; pass {LAYOUTS}, or cifar10 / cifar100")
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return "tarball", path.resolve()
        raise RfcalcError(f"--data {data}: a file that is not a .tar.gz; pass {LAYOUTS}")
    if datasets.is_image_folder(path):
        return "image-folder", path.resolve()
    found = datasets.find_pickle_folder(path)
    if found is not None:
        return "pickle-folder", found.resolve()
    tarballs = sorted(path.glob("*.tar.gz"))
    if len(tarballs) == 1:
        return "tarball", tarballs[0].resolve()
    raise RfcalcError(f"--data {data}: no data set found there; expected {LAYOUTS}")


def check_data(data: str) -> None:
    """Stop with ``--data``'s one-line error before any output when it names no data rfcalc can read (a named
    data set such as cifar10 is fetched later, when it is loaded)."""
    if data.lower().replace("-", "") not in ARCHIVES:
        _locate(data, cache_dir())


def _read(kind: str, path: Path, channels: int, say: Callable[[str], None]) -> RawData:
    if kind == "image-folder":
        from rich.console import Console
        from rich.progress import Progress

        total = datasets.count_images(path)
        say(f"decoding {total:,} images from {path} once (cached for later runs)")
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("decoding", total=total)
            return datasets.read_image_folder(path, channels, lambda n: progress.advance(task, n))
    say(f"reading {path} once (cached for later runs)")
    if kind == "pickle-folder":
        return datasets.read_pickle_folder(path)
    return datasets.read_tarball(path)


def _save(folder: Path, raw: RawData, meta: dict[str, object]) -> None:
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for field in ("train_x", "train_y", "test_x", "test_y"):
        np.save(tmp / f"{field}.npy", getattr(raw, field))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    try:
        os.replace(tmp, folder)
    except OSError:  # another run wrote it first
        shutil.rmtree(tmp, ignore_errors=True)


def _stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    c = x.shape[-1]
    total = np.zeros(c)
    squares = np.zeros(c)
    for start in range(0, len(x), 4096):
        part = x[start:start + 4096].reshape(-1, c).astype(np.float64) / 255.0
        total += part.sum(0)
        squares += (part ** 2).sum(0)
    n = x.shape[0] * x.shape[1] * x.shape[2]
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean ** 2, 1e-12))
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def load_data(data: str, channels: int = 3, say: Callable[[str], None] = lambda s: None) -> ImageSet:
    """Load ``--data`` through the uint8 cache (decoding it first when needed)."""
    cache = cache_dir()
    kind, path = _locate(data, cache)
    key = hashlib.sha256(json.dumps([CACHE_VERSION, kind, channels, _fingerprint(kind, path)],
                                    default=str).encode()).hexdigest()[:16]
    folder = cache / f"{path.name.split('.')[0]}-{key}"
    name = path.name.split(".")[0]
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        arrays = {f: np.load(folder / f"{f}.npy") for f in ("train_x", "train_y", "test_x", "test_y")}
        return ImageSet(name, list(meta["classes"]), arrays["train_x"], arrays["train_y"], arrays["test_x"],
                        arrays["test_y"], tuple(meta["mean"]), tuple(meta["std"]), str(path), from_cache=True)
    except (OSError, ValueError, KeyError):
        pass  # not cached yet (or a damaged cache entry): decode again
    started = time.perf_counter()
    raw = _read(kind, path, channels, say)
    if raw.train_x.shape[-1] != channels:
        raise RfcalcError(f"--data {data}: images have {raw.train_x.shape[-1]} channels, the spec's input has "
                          f"{channels}")
    mean, std = _stats(raw.train_x)
    meta = {"classes": raw.classes, "mean": mean, "std": std, "source": str(path), "kind": kind,
            "decode_seconds": round(time.perf_counter() - started, 2)}
    try:
        _save(folder, raw, meta)
    except OSError as exc:
        say(f"note: could not write the cache in {cache} ({exc.strerror}); set RFCALC_CACHE to a writable folder")
    return ImageSet(name, raw.classes, raw.train_x, raw.train_y, raw.test_x, raw.test_y, mean, std, str(path))


def subset(images: ImageSet, train_limit: int | None, test_limit: int | None) -> ImageSet:
    """The first N of a fixed shuffle of each split (the same images for every --seed)."""
    def pick(x: np.ndarray, y: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
        if limit is None or limit >= len(y):
            return x, y
        order = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(y))[:limit])
        return x[order], y[order]

    train_x, train_y = pick(images.train_x, images.train_y, train_limit)
    test_x, test_y = pick(images.test_x, images.test_y, test_limit)
    return replace(images, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def fitting_data(spec: Spec, data: str, say: Any, train_limit: int | None = None,
                 test_limit: int | None = None) -> ImageSet:
    """The data set, checked against the spec: classes, the model's output size and the input shape."""
    images = load_data(data, channels=spec.input_shape[0], say=say)
    n = len(images.classes)
    if spec.classes is not None and spec.classes != n:
        raise RfcalcError(f"the spec says classes: {spec.classes}, but {images.source} has {n} classes "
                          f"({', '.join(images.classes[:4])}{', ...' if n > 4 else ''})")
    output = tuple(spec.report.output.out_shape)
    if output != (n,):
        raise RfcalcError(f"the model's output is {list(output)} per image, but {images.source} has {n} classes; "
                          f"end the spec with {{op: linear, out: {n}}} (or a conv to {n} channels and gap)")
    if tuple(spec.input_shape) != images.image_shape:
        raise RfcalcError(f"the spec's input is {list(spec.input_shape)} (channels, height, width), but the images "
                          f"of {images.source} are {list(images.image_shape)}")
    return subset(images, train_limit, test_limit)
