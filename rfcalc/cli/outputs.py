"""Output paths given on the command line: checked before any work, written with one-line errors.

Every command that writes a file (``export -o``, ``schema -o``, ``erf -o``, ``table --plot``,
``inspect --to-spec``) calls :func:`output_file` before it computes anything, and writes inside
:func:`writing`; commands that fill a folder (``train --out``, ``lr-find --out``) call :func:`output_folder`.
A missing folder, a folder given where a file is expected, an unsupported file type or a place that cannot be
written is one line naming the flag, the path and what would work, and exit code 2 — never a traceback. An OS
error while writing (a full disk) is one line naming the flag, the path and the reason, and exit code 4 (SYSTEM).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rfcalc.errors import ExitCode, RfcalcError


@dataclass(frozen=True)
class FileType:
    """What a command writes: a few words for messages and the file-name endings it can write."""

    what: str
    suffixes: tuple[str, ...]

    def example(self, path: Path) -> Path:
        """``path`` with this type's first suffix: what to suggest instead of a wrong name."""
        return path.with_suffix(self.suffixes[0]) if path.suffix else path.with_name(path.name + self.suffixes[0])


PYTHON = FileType("Python source", (".py",))
JSON = FileType("JSON", (".json",))
YAML = FileType("a YAML spec", (".yaml", ".yml"))
# Image types matplotlib's Agg backend writes without anything else installed (pgf needs LaTeX; raw/rgba are not
# image files). Each is drawn for real by tests/test_output_paths.py.
IMAGE = FileType("an image", (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"))


def _or_list(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _check_folder(flag: str, path: Path, folder: Path) -> None:
    """``folder`` (where ``path`` goes) exists, is a folder and can be written."""
    if not folder.exists():
        raise RfcalcError(f"{flag} {path}: the folder {folder} does not exist; create it first "
                          f"(mkdir -p {folder})")
    if not folder.is_dir():
        raise RfcalcError(f"{flag} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RfcalcError(f"{flag} {path}: cannot write in {folder}: permission denied")
    _probe(flag, path, folder, directory=False)


def _probe(flag: str, path: Path, folder: Path, *, directory: bool) -> None:
    """Create (and remove) a file or folder in ``folder``: the permission bits do not bind root, and places such as
    /proc or /sys refuse new entries even to root, so only trying tells before the work."""
    import shutil
    import tempfile

    try:
        if directory:
            shutil.rmtree(tempfile.mkdtemp(prefix=".rfcalc-probe-", dir=folder))
        else:
            handle, name = tempfile.mkstemp(prefix=".rfcalc-probe-", dir=folder)
            os.close(handle)
            os.unlink(name)
    except OSError as exc:
        raise RfcalcError(f"{flag} {path}: cannot write in {folder}: {exc.strerror or exc}") from None


def output_file(flag: str, path: Path, kind: FileType) -> Path:
    """Check that ``path`` can be written as ``kind``; raise a one-line :class:`RfcalcError` when not."""
    path = Path(path)
    if path.is_dir():
        raise RfcalcError(f"{flag} {path}: is a folder; give a file name, e.g. {path / ('out' + kind.suffixes[0])}")
    if path.suffix.lower() not in kind.suffixes:
        got = f"'{path.suffix}'" if path.suffix else "no file type"
        raise RfcalcError(f"{flag} {path}: writes {kind.what}, so the name must end in {_or_list(kind.suffixes)} "
                          f"(got {got}), e.g. {kind.example(path)}")
    _check_folder(flag, path, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise RfcalcError(f"{flag} {path}: cannot overwrite it: permission denied")
    return path


def output_folder(flag: str, path: Path) -> Path:
    """Check that ``path`` is a folder or can be made one (its missing parents included)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RfcalcError(f"{flag} {path}: is a file; give a folder (it is created when missing)")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if existing != path and not existing.is_dir():
        raise RfcalcError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RfcalcError(f"{flag} {path}: cannot write in {existing}: permission denied")
    _probe(flag, path, existing, directory=existing != path)
    return path


@contextmanager
def writing(flag: str, path: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` (a full disk, a read-only place seen only by root) into one line."""
    try:
        yield
    except OSError as exc:
        raise RfcalcError(f"{flag} {path}: cannot write: {exc.strerror or exc}", ExitCode.SYSTEM) from None


def emit_json(flag: str, output: Path | None, document: Any) -> None:
    """``document`` as indented JSON on stdout, or written to ``output`` (checked first; 'wrote PATH' on stderr)."""
    if output is not None:
        output_file(flag, output, JSON)
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    with writing(flag, output):
        output.write_text(text, encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
