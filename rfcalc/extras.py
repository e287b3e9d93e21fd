"""The optional extras (``torch``, ``train``, ``sweep``) and the one place that says how to install a missing one.

rfcalc is installed from its source checkout (it is not on PyPI yet), so the hint names the checkout: the
folder this very copy runs from when it is an editable install, else "your rfcalc checkout". Torch-free.
"""
from __future__ import annotations

from pathlib import Path

from rfcalc.errors import RfcalcError

# The README's set-up pins torch's CPU build: an unpinned torch pulls several GB of CUDA packages.
TORCH_PIN = "torch==2.13.0"


def checkout_root() -> Path | None:
    """The source checkout this rfcalc runs from (an editable install), or None for an installed copy."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


# the extras that pull torch: their hint pins the CPU build, or pip would fetch torch with its CUDA packages
_WITH_TORCH = frozenset({"torch", "train"})


def install_hint(extra: str) -> str:
    """A pip command that installs ``extra`` (one or several, comma-separated), e.g.
    ``pip install "torch==2.13.0" -e '.[train]'``: with torch's CPU pin whenever the extras pull torch."""
    pin = f'"{TORCH_PIN}" ' if _WITH_TORCH & set(extra.split(",")) else ""
    root = checkout_root()
    if root is not None:
        where = "." if Path.cwd().resolve() == root else str(root)
        return f"pip install {pin}-e '{where}[{extra}]'"
    return (f"pip install {pin}'.[{extra}]' in your rfcalc checkout "
            f"(pip install 'rfcalc[{extra}]' once rfcalc is published on PyPI)")


def missing(module: str, extra: str, what: str = "this command") -> RfcalcError:
    """The one-line error for a missing optional dependency."""
    return RfcalcError(f"{what} needs {module}: {install_hint(extra)}")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def require(module: str, extra: str, what: str = "this command") -> None:
    """Raise :func:`missing` when ``module`` cannot be imported (found without importing it)."""
    if not installed(module):
        raise missing(module, extra, what)
