"""Shared fixtures: a fixed console width, spec writers and the CLI runner."""
from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
# the real CIFAR-10 JPEGs beside the checkout (one folder up again from a git worktree under wt/)
CIFAR_PLACES = [ROOT.parent / "shared" / "datasets" / "cifar10-jpeg",
                ROOT.parent.parent / "shared" / "datasets" / "cifar10-jpeg"]


def bundled_specs(recursive: bool = True) -> list[Path]:
    """The bundled spec files: arch_specs/ and examples/, without the sweep files (examples/sweep_*.yaml are
    `rfcalc sweep` files, not specs)."""
    pattern = "**/*.yaml" if recursive else "*.yaml"
    found = [*ROOT.glob(f"arch_specs/{pattern}"), *ROOT.glob(f"examples/{pattern}")]
    return sorted(p for p in found if not p.name.startswith("sweep_"))


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to tmp_path/name and return the path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread is faster, and far faster on a busy machine (torch imported lazily, so
    torch-free test modules never load it)."""
    from rfcalc.model.oracle import single_thread

    with single_thread():
        yield


@pytest.fixture
def pickles(tmp_path: Path) -> Path:
    """A small CIFAR-style python folder (tests/train_helpers.py's write_pickle_folder)."""
    from train_helpers import write_pickle_folder

    return write_pickle_folder(tmp_path / "pickles")
