"""Located, one-line error reports for invalid specs (contract section 1, "Error messages")."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where it is, which field, and what is wrong."""

    file: str
    line: int | None  # None: not located inside the file (a Python target of `check` that cannot be inspected)
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path, "message": self.message}


class SpecError(ValueError):
    """An invalid spec. ``problems`` holds one located :class:`Problem` per mistake."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ExitCode(IntEnum):
    """The exit codes of every command: part of the interface, defined here only (the README's table, every
    command's --help and docs/SPEC_FORMAT.md section 6.3 say the same; tests compare them)."""

    OK = 0
    FAILED = 1          # a rule failed (`check`); training diverged or ran out of memory; nothing found
    BAD_INPUT = 2       # an invalid spec, flag, file or path
    INTERNAL = 3        # a bug in rfcalc: an exception nobody expected (the traceback goes to a log file)
    SYSTEM = 4          # the system refused an operation the checks could not foresee: a full disk, a permission
    INTERRUPTED = 130   # Ctrl-C / SIGTERM (a resumable checkpoint is kept)

    @property
    def meaning(self) -> str:
        """What the code says, in the words of the README and of every command's --help."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "a rule failed, training failed, or nothing was found",
    ExitCode.BAD_INPUT: "invalid input: a spec, flag, file or path",
    ExitCode.INTERNAL: "a bug in rfcalc: please report it (the message names the traceback's file)",
    ExitCode.SYSTEM: "the system refused to read or write: a full disk, a permission",
    ExitCode.INTERRUPTED: "interrupted: Ctrl-C or SIGTERM",
}


def exit_codes_text() -> str:
    """Every exit code and its meaning on one line: the epilog of every command's --help."""
    return "Exit codes: " + "; ".join(f"{int(code)} {code.meaning}" for code in ExitCode) + "."


def exit_codes_list() -> str:
    """Every exit code and its meaning, one per line, as the README and docs/SPEC_FORMAT.md list them."""
    return "".join(f"- `{int(code)}` {code.meaning}\n" for code in ExitCode)


class RfcalcError(Exception):
    """A user-facing failure outside the spec itself (missing extra, bad flag, unreadable data).

    ``exit_code`` is what the CLI exits with; the message is printed as one line.
    """

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.BAD_INPUT) -> None:
        self.exit_code = exit_code
        super().__init__(message)


def message_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


DEBUG_VARIABLE = "RFCALC_DEBUG"  # set to 1: an internal error is raised (full traceback) instead of logged


def debugging() -> bool:
    """Whether ``RFCALC_DEBUG`` asks for internal errors to be raised."""
    import os

    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def internal_error_lines(exc: BaseException, where: str) -> list[str]:
    """A bug in rfcalc (an exception nobody expected), as two lines: what happened, and that it is a bug to
    report, with the log file this writes the traceback to (in the temporary folder)."""
    import sys
    import tempfile
    import traceback

    version = getattr(sys.modules.get("rfcalc"), "__version__", "?")  # the package above this module, loaded first
    try:
        handle, log = tempfile.mkstemp(prefix="rfcalc-crash-", suffix=".log")
        with open(handle, "w", encoding="utf-8") as file:
            file.write(f"rfcalc {version} on Python {sys.version.split()[0]}: {' '.join(sys.argv)}\n\n")
            file.write("".join(traceback.format_exception(exc)))
        hint = f"with the traceback in {log} ({DEBUG_VARIABLE}=1 shows it)"
    except OSError:
        hint = f"with the traceback that {DEBUG_VARIABLE}=1 shows"
    return [f"{where}: internal error: {type(exc).__name__}: {message_line(exc)}",
            f"this is a bug in rfcalc, please report it {hint}"]
