"""``FILE.py:NAME`` targets and ``CxHxW`` input shapes: parsing, and importing the user's file.

Importing this module imports no torch; :func:`load_target` imports torch and the user's file when it runs.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from rfcalc.errors import RfcalcError
from rfcalc.spec.messages import suggest

_SHAPE = re.compile(r"^\s*(\d+)\s*[x×X,]\s*(\d+)\s*[x×X,]\s*(\d+)\s*$")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3x32x32"`` -> ``(3, 32, 32)`` (channels x height x width); one-line error on anything else."""
    match = _SHAPE.match(text or "")
    if not match:
        raise RfcalcError(f"--input must be CxHxW (channels x height x width), e.g. 3x32x32, got {text!r}")
    shape = tuple(int(g) for g in match.groups())
    if min(shape) < 1:
        raise RfcalcError(f"--input sizes must be >= 1, got {text!r}")
    return shape  # type: ignore[return-value]


def split_target(target: str) -> tuple[Path, str]:
    """``"model.py:Net"`` -> (Path("model.py"), "Net")."""
    head, sep, name = target.rpartition(":")
    if not sep or not head.endswith(".py") or not name:
        raise RfcalcError(f"{target}: expected FILE.py:NAME, e.g. model.py:Net")
    if not name.isidentifier():
        raise RfcalcError(f"{target}: '{name}' is not a Python name")
    return Path(head), name


def load_target(target: str) -> Any:
    """Import FILE.py and build NAME: an ``nn.Module`` subclass with a no-argument constructor, a function
    returning a module, or a module instance. Every failure is a one-line :class:`RfcalcError`."""
    path, name = split_target(target)
    if not path.is_file():
        raise RfcalcError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    require_torch()
    from torch import nn

    module = _import_file(path)
    if not hasattr(module, name):
        found = sorted(k for k, v in vars(module).items() if _is_candidate(v, nn) and not k.startswith("_"))
        listed = f"; it defines {', '.join(found)}" if found else "; it defines no nn.Module subclass or function"
        raise RfcalcError(f"{path}: no '{name}'{suggest(name, found)}{listed}")
    obj = getattr(module, name)
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise RfcalcError(f"{target}: '{name}' is {_a(type(obj).__name__)}, not an nn.Module subclass or a function "
                          f"returning a module")
    kind = "class" if inspect.isclass(obj) else "function"
    if kind == "class" and not issubclass(obj, nn.Module):
        raise RfcalcError(f"{target}: class '{name}' is not an nn.Module subclass")
    missing = _required_parameters(obj)
    if missing:
        args = ", ".join(missing)
        raise RfcalcError(f"{target}: {name}() needs arguments ({args}); point at a function without arguments "
                          f"that builds it, e.g. def make_model(): return {name}(...)")
    try:
        built = obj()
    except Exception as exc:
        raise RfcalcError(f"{target}: {name}() failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(built, nn.Module):
        raise RfcalcError(f"{target}: {name}() returned {_a(type(built).__name__)}, not an nn.Module")
    return built


def _is_candidate(value: Any, nn: Any) -> bool:
    return isinstance(value, nn.Module) or (inspect.isclass(value) and issubclass(value, nn.Module)
                                            and not value.__module__.startswith("torch")) \
        or (inspect.isfunction(value) and not value.__module__.startswith("torch"))


def _required_parameters(obj: Any) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                   p.KEYWORD_ONLY)]


def _import_file(path: Path) -> Any:
    resolved = path.resolve()
    module_name = "rfcalc_target_" + re.sub(r"\W", "_", str(resolved))
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise RfcalcError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(resolved.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        del sys.modules[module_name]
        raise RfcalcError(f"{path}: importing it called exit({exc.code})") from None
    except BaseException as exc:
        del sys.modules[module_name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RfcalcError(f"{path}: importing it failed: {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def require_torch() -> None:
    """A one-line error when PyTorch is missing."""
    from rfcalc.extras import require

    require("torch", "torch", "inspecting a PyTorch module")


def _a(noun: str) -> str:
    """'an int', 'a list': the noun with its article."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
