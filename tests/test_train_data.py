"""The trainer's data: three layouts read the same pixels, the uint8 cache, subsets, download, bad data."""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2  # noqa: F401 - the train extra
import numpy as np
import pytest
import torch  # noqa: F401 - the train extra
from train_helpers import (
    CLASSES,
    make_images,
    write_cifar100_folder,
    write_image_folder,
    write_pickle_folder,
    write_tarball,
)

from rfcalc.errors import RfcalcError
from rfcalc.trainer import download
from rfcalc.trainer.data import load_data, subset


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RFCALC_CACHE", str(cache))
    return cache


def _sorted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((x.reshape(len(x), -1).sum(1), y))
    return x[order], y[order]


def test_three_layouts_give_the_same_pixels(tmp_path: Path) -> None:
    pickles = load_data(str(write_pickle_folder(tmp_path / "p")))
    tarball = load_data(str(write_tarball(tmp_path / "t")))
    folder = load_data(str(write_image_folder(tmp_path / "i")))
    x, y = make_images(8, 16, 10, seed=1)
    for images in (pickles, tarball, folder):
        assert images.classes == CLASSES
        assert images.train_x.dtype == np.uint8 and images.train_x.shape == (80, 16, 16, 3)
        assert images.test_x.shape == (40, 16, 16, 3)
        got = _sorted(images.train_x, images.train_y)
        want = _sorted(x, y)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert pickles.mean == tarball.mean == folder.mean
    assert np.allclose(pickles.mean, (x / 255.0).reshape(-1, 3).mean(0), atol=1e-5)


def test_a_folder_that_holds_the_pickle_folder_or_the_tarball_is_found(tmp_path: Path) -> None:
    write_pickle_folder(tmp_path / "a")
    assert len(load_data(str(tmp_path / "a")).train_y) == 80
    write_tarball(tmp_path / "b")
    assert load_data(str(tmp_path / "b" / "cifar-10-python.tar.gz")).classes == CLASSES


def test_the_cache_is_used_then_invalidated_when_the_data_changes(tmp_path: Path, _cache: Path) -> None:
    root = write_image_folder(tmp_path / "i")
    first = load_data(str(root))
    assert not first.from_cache and len(list(_cache.iterdir())) == 1
    second = load_data(str(root))
    assert second.from_cache
    assert np.array_equal(first.train_x, second.train_x) and second.classes == first.classes
    extra = root / "train" / "apple" / "9999.png"
    extra.write_bytes((root / "train" / "apple" / "0000.png").read_bytes())
    os.utime(extra.parent, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    third = load_data(str(root))
    assert not third.from_cache and len(third.train_y) == 81


def test_subsets_are_fixed_and_mixed(tmp_path: Path) -> None:
    images = load_data(str(write_pickle_folder(tmp_path / "p", per_class=20)))
    small = subset(images, 50, 10)
    again = subset(images, 50, 10)
    assert len(small.train_y) == 50 and len(small.test_y) == 10
    assert np.array_equal(small.train_x, again.train_x)
    assert len(set(small.train_y.tolist())) >= 8
    assert subset(images, None, None).train_x is images.train_x


def test_missing_data_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(RfcalcError) as info:
        load_data(str(tmp_path / "nowhere"))
    assert "no such file or folder" in str(info.value) and "image folder" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RfcalcError, match="no data set found"):
        load_data(str(tmp_path / "empty"))


def test_corrupt_pickle_and_image_name_the_file(tmp_path: Path) -> None:
    folder = write_pickle_folder(tmp_path / "p")
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(RfcalcError) as info:
        load_data(str(folder))
    assert "data_batch_3" in str(info.value) and info.value.exit_code == 2
    root = write_image_folder(tmp_path / "i")
    (root / "test" / "dog" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(RfcalcError) as info:
        load_data(str(root))
    assert "0001.png" in str(info.value) and "cannot decode" in str(info.value)


def test_truncated_tarball_is_one_error(tmp_path: Path) -> None:
    path = write_tarball(tmp_path / "t")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(RfcalcError) as info:
        load_data(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_download_without_network_says_where_to_put_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             _cache: Path) -> None:
    monkeypatch.setitem(download.ARCHIVES, "cifar10", ("http://127.0.0.1:9/cifar-10-python.tar.gz",
                                                       "cifar-10-python.tar.gz", "0" * 32))
    with pytest.raises(RfcalcError) as info:
        load_data("cifar10")
    message = str(info.value)
    assert message.startswith("cannot download cifar10") and str(_cache) in message and "--data" in message
    assert "\n" not in message and not list(_cache.glob("*.part"))


def test_download_verifies_the_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _cache: Path) -> None:
    archive = write_tarball(tmp_path / "t")
    url = archive.as_uri()
    monkeypatch.setitem(download.ARCHIVES, "cifar10", (url, "cifar-10-python.tar.gz", "f" * 32))
    with pytest.raises(RfcalcError, match="MD5"):
        load_data("cifar10")
    assert not (_cache / "cifar-10-python.tar.gz").exists()
    monkeypatch.setitem(download.ARCHIVES, "cifar10", (url, "cifar-10-python.tar.gz", download.md5sum(archive)))
    images = load_data("cifar10")
    assert (_cache / "cifar-10-python.tar.gz").is_file() and images.classes == CLASSES


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    images = load_data(str(write_cifar100_folder(tmp_path / "c100")))
    assert len(images.classes) == 100 and images.classes[7] == "class07"
    assert images.train_x.shape == (300, 8, 8, 3) and images.train_y.max() == 99
    assert len(images.test_y) == 200
