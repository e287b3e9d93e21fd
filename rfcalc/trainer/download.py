"""CIFAR-10 / CIFAR-100 archives: found in the cache, or downloaded there with an MD5 check.

When the network is unreachable the error is one line that says where to put the archive or which
``--data`` to pass instead.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from rfcalc.errors import RfcalcError

ARCHIVES: dict[str, tuple[str, str, str]] = {
    # name: (url, file name, md5)
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz",
                 "eb9058c3a382ffc7106e4002c42a8d85"),
}
TIMEOUT_S = 20.0


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_path(name: str, cache_dir: Path) -> Path:
    """The cached archive of a named data set, downloading it first when it is not there."""
    url, file_name, md5 = ARCHIVES[name]
    target = cache_dir / file_name
    if target.is_file():
        return target
    hint = (f"put {file_name} (from {url}) in {cache_dir}, or pass --data DIR: an image folder such as "
            f"../shared/datasets/cifar10-jpeg, a CIFAR python folder or its .tar.gz")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{file_name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, partial.open("wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise RfcalcError(f"cannot download {name} ({reason}); {hint}") from None
    found = md5sum(partial)
    if found != md5:
        partial.unlink(missing_ok=True)
        raise RfcalcError(f"downloaded {file_name} has MD5 {found}, expected {md5} (removed it); try again, or "
                          f"{hint}")
    os.replace(partial, target)
    return target
