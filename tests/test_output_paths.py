"""Every command that writes a file answers a bad output path with one line and exit 2, before any work.

Per command: a missing folder, a folder given as the file, a file given as the folder, an unsupported file type
and a place that cannot be written (a read-only folder; as root, which may write anywhere it can, /sys).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import ROOT

from rfcalc.cli.app import app
from rfcalc.cli.outputs import IMAGE

SPEC = str(ROOT / "examples" / "quickstart.yaml")


@pytest.fixture
def unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write in."""
    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new files even to root
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder


def _bad_paths(tmp_path: Path, unwritable: Path, suffix: str, wrong: str) -> dict[str, tuple[Path, str]]:
    """Each kind of bad path, with what the one-line message must say."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return {
        "missing folder": (tmp_path / "nowhere" / f"out{suffix}", "does not exist; create it first"),
        "folder as the file": (tmp_path, f"is a folder; give a file name, e.g. {tmp_path / ('out' + suffix)}"),
        "file as the folder": (a_file / f"out{suffix}", f"{a_file} is a file, not a folder"),
        "unsupported type": (tmp_path / f"out{wrong}", f"(got '{wrong}'), e.g. {tmp_path / ('out' + suffix)}"),
        "unwritable": (unwritable / f"rfcalc-test{suffix}", "ermission denied"),
    }


def _one_line(result, flag: str, path: Path, says: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{flag} {path}: "), result.stderr
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.output


KINDS = ["missing folder", "folder as the file", "file as the folder", "unsupported type", "unwritable"]


@pytest.mark.parametrize("kind", KINDS)
def test_export_output(runner, tmp_path, unwritable, kind):
    path, says = _bad_paths(tmp_path, unwritable, ".py", ".txt")[kind]
    _one_line(runner.invoke(app, ["export", SPEC, "-o", str(path)]), "--output", path, says)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_output(runner, tmp_path, unwritable, kind):
    path, says = _bad_paths(tmp_path, unwritable, ".json", ".yaml")[kind]
    _one_line(runner.invoke(app, ["schema", "-o", str(path)]), "--output", path, says)


@pytest.mark.parametrize("kind", KINDS)
def test_suggest_output(runner, tmp_path, unwritable, kind):
    path, says = _bad_paths(tmp_path, unwritable, ".yaml", ".txt")[kind]
    spec = str(ROOT / "arch_specs" / "two_branch_dilated.yaml")   # fails RF > 44: suggest has a fix to write
    _one_line(runner.invoke(app, ["suggest", spec, "-o", str(path)]), "--output", path, says)


@pytest.mark.parametrize("kind", KINDS)
def test_table_plot(runner, tmp_path, unwritable, kind):
    path, says = _bad_paths(tmp_path, unwritable, ".png", ".txt")[kind]
    result = runner.invoke(app, ["table", SPEC, "--plot", str(path)])
    _one_line(result, "--plot", path, says)


def test_table_plot_names_the_types_that_work(runner, tmp_path):
    result = runner.invoke(app, ["table", SPEC, "--plot", str(tmp_path / "a.txt")])
    assert result.stderr == (f"--plot {tmp_path / 'a.txt'}: writes an image, so the name must end in .png, .svg, "
                             f".pdf, .jpg, .jpeg or .webp (got '.txt'), e.g. {tmp_path / 'a.png'}\n")


@pytest.mark.parametrize("suffix", IMAGE.suffixes)
@pytest.mark.slow
def test_every_image_type_offered_is_drawn(runner, tmp_path, suffix):
    path = tmp_path / f"rf{suffix}"
    result = runner.invoke(app, ["table", SPEC, "--format", "csv", "--plot", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_erf_output(runner, tmp_path, unwritable, kind):
    import torch  # noqa: F401
    path, says = _bad_paths(tmp_path, unwritable, ".png", ".txt")[kind]
    _one_line(runner.invoke(app, ["erf", SPEC, "--batch", "1", "-o", str(path)]), "--output", path, says)


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_to_spec(runner, tmp_path, unwritable, kind):
    import torch  # noqa: F401
    path, says = _bad_paths(tmp_path, unwritable, ".yaml", ".json")[kind]
    target = f"{ROOT / 'tests' / 'models_for_inspect.py'}:ChainNet"
    result = runner.invoke(app, ["inspect", target, "--input", "3x32x32", "--to-spec", str(path)])
    _one_line(result, "--to-spec", path, says)


FOLDER_KINDS = ["a file", "under a file", "unwritable"]


def _bad_folders(tmp_path: Path, unwritable: Path) -> dict[str, tuple[Path, str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    return {"a file": (a_file, "is a file; give a folder (it is created when missing)"),
            "under a file": (a_file / "runs" / "c1", f"{a_file} is a file, not a folder"),
            "unwritable": (unwritable / "rfcalc-test-run" / "c1", "ermission denied")}


@pytest.mark.parametrize("command", ["train", "lr-find"])
@pytest.mark.parametrize("kind", FOLDER_KINDS)
@pytest.mark.slow
def test_train_and_lr_find_out(runner, tmp_path, unwritable, command, kind, monkeypatch):
    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    path, says = _bad_folders(tmp_path, unwritable)[kind]
    if os.geteuid() == 0 and kind == "unwritable":
        # root passes the permission check; sysfs refuses the folder the run would create: tried, before the data
        says = "cannot write in /sys: Operation not permitted"
    _one_line(runner.invoke(app, [command, SPEC, "--out", str(path)]), "--out", path, says)


@pytest.mark.skipif(os.geteuid() != 0, reason="root only: the permission bits bind everyone else")
def test_as_root_a_place_that_refuses_new_files_is_refused_before_the_work(runner, tmp_path, monkeypatch):
    """Issue 25: as root, output paths under /proc passed the early check and failed after the work."""
    monkeypatch.setenv("RFCALC_CACHE", str(tmp_path / "cache"))
    table = runner.invoke(app, ["table", SPEC, "--plot", "/proc/rf.png"])
    _one_line(table, "--plot", Path("/proc/rf.png"), "cannot write in /proc: ")
    assert table.stdout == ""  # was: the table, then the error
    _one_line(runner.invoke(app, ["schema", "-o", "/proc/s.json"]), "--output", Path("/proc/s.json"),
              "cannot write in /proc: ")
    for out in ("/proc", "/proc/runs/c1"):
        _one_line(runner.invoke(app, ["train", SPEC, "--out", out]), "--out", Path(out), "cannot write in /proc: ")
    assert not list(Path("/proc").glob(".rfcalc-probe-*"))
