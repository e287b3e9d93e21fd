"""The one install hint: a pip command that works from a checkout, and says so when rfcalc is not one."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from rfcalc import extras
from rfcalc.cli.app import app


def test_hint_from_the_checkout_names_an_extra_its_pyproject_defines(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    assert extras.install_hint("train") == "pip install \"torch==2.13.0\" -e '.[train]'"
    assert extras.install_hint("torch") == "pip install \"torch==2.13.0\" -e '.[torch]'"
    assert extras.install_hint("train,sweep") == "pip install \"torch==2.13.0\" -e '.[train,sweep]'"
    assert extras.install_hint("sweep") == "pip install -e '.[sweep]'"
    monkeypatch.chdir(tmp_path)
    assert extras.install_hint("train") == f"pip install \"torch==2.13.0\" -e '{ROOT}[train]'"
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"torch", "train", "plot"} <= set(defined)


def test_hint_for_an_installed_copy_says_where_and_when(monkeypatch):
    monkeypatch.setattr(extras, "checkout_root", lambda: None)
    assert extras.install_hint("train") == ("pip install \"torch==2.13.0\" '.[train]' in your rfcalc checkout "
                                            "(pip install 'rfcalc[train]' once rfcalc is published on PyPI)")


@pytest.mark.parametrize(("argv", "module", "extra"), [
    (["table", "examples/quickstart.yaml", "--plot", "rf.png"], "matplotlib", "plot"),  # not torch with [train]
    (["erf", "examples/quickstart.yaml"], "torch", "torch"),
    (["inspect", "tests/models_for_inspect.py:ChainNet", "--input", "3x32x32"], "torch", "torch"),
    (["train", "examples/quickstart.yaml"], "torch", "train"),
    (["check", "examples/se_net.py:SENet", "--input", "3x32x32"], "torch", "torch"),
    (["sweep", "examples/sweep_quick.yaml"], "optuna", "train,sweep"),
    (["sweep", "examples/sweep_quick.yaml"], "cv2", "train,sweep"),
])
def test_every_command_gives_the_same_hint(runner, monkeypatch, argv, module, extra):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    pin = '"torch==2.13.0" ' if extra not in ("sweep", "plot") else ""
    assert result.stderr.endswith(f"needs {module}: pip install {pin}-e '.[{extra}]'\n"), result.stderr
    assert result.stderr.count("\n") == 1
    assert not Path(ROOT / "rf.png").exists()
    assert result.stdout == ""  # nothing is printed before the missing extra is found
    if argv[0] == "check":  # a Python target is named, not given a made-up line and column
        assert result.stderr.startswith("examples/se_net.py:SENet: this command needs torch: "), result.stderr
