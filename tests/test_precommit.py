"""The published pre-commit hook, run through the real `pre-commit try-repo` on a passing and a failing spec."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSING = """
version: 1
name: passing
input: {channels: 3, size: 32}
layers:
  - {op: conv, out: 8, padding: 1, dilation: 2}
  - {op: conv, out: 8, stride: 2, padding: 1}
  - {op: gap}
constraints: {rf: {gt: 20}, require: [dilated_conv, gap]}
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _try_repo(user_repo: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "COLUMNS": "120"}
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or "pre-commit"
    return subprocess.run([pre_commit, "try-repo", str(ROOT), "rfcalc-check", "--files", *files],
                          cwd=user_repo, env=env, capture_output=True, text=True, timeout=600)


def test_hook_passes_a_good_spec_and_fails_a_bad_one(tmp_path: Path, pre_commit_home: Path):
    repo = tmp_path / "user"
    (repo / "arch_specs").mkdir(parents=True)
    (repo / "arch_specs" / "good.yaml").write_text(PASSING)
    (repo / "arch_specs" / "bad.yaml").write_text(PASSING.replace("gt: 20", "gt: 44").replace("passing", "failing"))
    (repo / "notes.yaml").write_text("not: a spec\n")  # outside the hook's `files` pattern: never checked
    _git(repo, "init", "-q")
    _git(repo, "add", ".")

    good = _try_repo(repo, pre_commit_home, "arch_specs/good.yaml", "notes.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "rfcalc check" in good.stdout and "Passed" in good.stdout

    both = _try_repo(repo, pre_commit_home, "arch_specs/good.yaml", "arch_specs/bad.yaml")
    assert both.returncode == 1, both.stdout + both.stderr
    assert "Failed" in both.stdout
    assert "arch_specs/bad.yaml (failing): FAIL" in both.stdout
    assert "RF 35 > 44 ✗ (add at least 10)" in both.stdout  # rf 5, then 7 (jump 2), gap over 15: 7 + 14*2
    assert "arch_specs/good.yaml (passing): ok" in both.stdout
