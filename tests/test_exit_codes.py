"""Exit codes that cannot be confused: a bug in rfcalc (an exception nobody expected) in any command exits
``INTERNAL`` with a line that says so and a log file that holds the traceback; a full disk exits ``SYSTEM``
naming the path and the reason; the README (a table), docs/SPEC_FORMAT.md and every command's --help list the codes of
:class:`rfcalc.errors.ExitCode`."""
from __future__ import annotations

import errno
import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer

from rfcalc.cli.app import app
from rfcalc.errors import ExitCode, exit_codes_list, exit_codes_text

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "examples" / "quickstart.yaml")
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]

# For every command: its arguments, and a function it calls (imported in the command's body) that is made to fail.
CRASH_SITES = {
    "check": ([SPEC], "rfcalc.analysis.checker", "check_spec"),
    "erf": ([SPEC, "-o", "{tmp}/erf.png"], "rfcalc.model.erf", "effective_rf"),
    "evaluate": ([SPEC, "--weights", "{tmp}/w.pt"], "rfcalc.trainer.options", "check_device"),
    "export": ([SPEC], "rfcalc.model.export", "export_source"),
    "inspect": ([f"{ROOT / 'tests' / 'models_for_inspect.py'}:ResidualNet", "--input", "3x32x32"],
                "rfcalc.inspection.api", "trace_module"),
    "lr-find": ([SPEC, "--out", "{tmp}/lr"], "rfcalc.trainer.lr_find", "find_lr"),
    "schema": ([], "rfcalc.spec.schema", "spec_json_schema"),
    "suggest": ([SPEC], "rfcalc.suggest.search", "suggest"),
    "sweep": ([str(ROOT / "examples" / "sweep_quick.yaml"), "--out", "{tmp}/sweep"], "rfcalc.sweep.run",
              "default_plan"),
    "sweep-schema": ([], "rfcalc.sweep.schema", "sweep_json_schema"),
    "table": ([SPEC], "rfcalc.analysis.load", "load_spec"),
    "train": ([SPEC, "--out", "{tmp}/run"], "rfcalc.trainer.run", "train"),
}


def test_every_command_has_a_crash_site():
    assert sorted(CRASH_SITES) == COMMANDS


def _boom(*args: object, **kwargs: object) -> None:
    raise ZeroDivisionError("the planted bug")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_internal_error_is_not_a_failed_rule_nor_bad_input(command: str, runner, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    args, module, name = CRASH_SITES[command]
    if importlib.util.find_spec(module.split(".")[0]) is None:  # pragma: no cover
        pytest.skip(module)
    try:
        target = importlib.import_module(module)
    except ImportError as exc:  # an extra that is not installed
        pytest.skip(str(exc))
    monkeypatch.setattr(target, name, _boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("RFCALC_DEBUG", raising=False)
    if command in ("lr-find", "evaluate", "train"):  # before any data is read
        monkeypatch.setattr(sys.modules.get("rfcalc.cli.train_commands"), "_one_process", lambda command: None)
    (tmp_path / "w.pt").write_bytes(b"")
    result = runner.invoke(app, [command, *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == ExitCode.INTERNAL == 3, result.output
    lines = result.stderr.splitlines()
    assert lines[-2] == f"rfcalc {command}: internal error: ZeroDivisionError: the planted bug", result.stderr
    found = re.fullmatch(r"this is a bug in rfcalc, please report it with the traceback in (\S+\.log) "
                         r"\(RFCALC_DEBUG=1 shows it\)", lines[-1])
    assert found, lines[-1]
    log = Path(found[1])
    assert log.parent == tmp_path
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "_boom" in text and "the planted bug" in text


def test_rfcalc_debug_raises_the_exception(runner, monkeypatch: pytest.MonkeyPatch) -> None:
    import rfcalc.analysis.checker

    monkeypatch.setattr(rfcalc.analysis.checker, "check_spec", _boom)
    monkeypatch.setenv("RFCALC_DEBUG", "1")
    result = runner.invoke(app, ["check", SPEC])
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_bug_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """The console script's path: a planted bug in `check` (sitecustomize-free: -c runs the entry point)."""
    code = ("import sys, rfcalc.analysis.checker as c\n"
            "def boom(*a, **k): raise KeyError('planted')\n"
            "c.check_spec = boom\n"
            "from rfcalc.cli.app import main\n"
            f"sys.argv = ['rfcalc', 'check', {SPEC!r}]\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**_env(), "TMPDIR": str(tmp_path)})
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0] == "rfcalc check: internal error: KeyError: 'planted'"
    assert len(list(tmp_path.glob("rfcalc-crash-*.log"))) == 1


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "RFCALC_DEBUG"}


def _full_disk(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_says_what_failed(runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "write_text", _full_disk)
    out = tmp_path / "m.py"
    result = runner.invoke(app, ["export", SPEC, "-o", str(out)])
    assert result.exit_code == ExitCode.SYSTEM == 4, result.output
    assert result.stderr.splitlines() == [f"--output {out}: cannot write: No space left on device"]


def test_an_unforeseen_os_error_names_the_path_and_the_reason(runner, monkeypatch: pytest.MonkeyPatch) -> None:
    import rfcalc.analysis.checker

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/cache.json")

    monkeypatch.setattr(rfcalc.analysis.checker, "check_spec", refused)
    result = runner.invoke(app, ["check", SPEC])
    assert result.exit_code == ExitCode.SYSTEM, result.output
    assert result.stderr.splitlines() == ["/somewhere/cache.json: Permission denied"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_lists_every_exit_code(runner, command: str) -> None:
    text = " ".join(runner.invoke(app, [command, "--help"]).stdout.split())
    assert exit_codes_text() in text


def test_the_docs_list_the_exit_codes_of_the_code() -> None:
    assert exit_codes_list() in (ROOT / "docs" / "SPEC_FORMAT.md").read_text(encoding="utf-8")
    table = "| code | meaning |\n|---|---|\n" + "".join(f"| `{int(code)}` | {code.meaning} |\n" for code in ExitCode)
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")  # the README's table, every code, in order
    assert {int(code) for code in ExitCode} == {0, 1, 2, 3, 4, 130}  # 0, 1, 2 and 130 keep their meaning


def test_a_bug_in_a_sweep_worker_is_said_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A worker process of `rfcalc sweep --workers N` (run here in this process): exit 3 and the two lines, never
    'a worker failed' (exit 1)."""
    pytest.importorskip("optuna")
    from rfcalc.sweep import worker

    monkeypatch.setattr(worker, "work", _boom)
    monkeypatch.setattr(worker.os, "setsid", lambda: None)  # the worker's own session: not this test's
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("RFCALC_DEBUG", raising=False)
    plan = worker.WorkerPlan(sweep_file="s.yaml", out=str(tmp_path), url="sqlite://", data="d", label="w1: ")
    with pytest.raises(SystemExit) as ended:
        worker._worker_main(plan)
    assert ended.value.code == ExitCode.INTERNAL
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "w1: rfcalc sweep: internal error: ZeroDivisionError: the planted bug"
    assert lines[1].startswith("this is a bug in rfcalc, please report it with the traceback in ")
