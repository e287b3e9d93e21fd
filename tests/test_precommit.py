"""The two pre-commit recipes of docs/check.md, run for real on a passing and a failing spec.

1. The published hook: the page's config, its URL pointed at a snapshot of this working tree (a fresh git
   repository, so uncommitted changes count), `pre-commit autoupdate` to fill in `rev:` with the full commit sha
   (rfcalc has no tags), then `pre-commit run`. pre-commit builds its own virtual environment from the snapshot.
2. `repo: local` with `language: system`: the page's config verbatim, running the `rfcalc` of this environment.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real pre-commit runs in fresh repositories

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "check.md").read_text(encoding="utf-8")
URL = "https://github.com/rfcalc/rfcalc"
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
GIT_USER = ["-c", "user.name=rfcalc tests", "-c", "user.email=tests@rfcalc.invalid"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_USER, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _recipe(marker: str) -> str:
    """The page's yaml block that contains ``marker``."""
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    (block,) = [b for b in blocks if b.startswith("repos:") and marker in b]
    return block


def _user_repo(tmp_path: Path, config: str) -> Path:
    repo = tmp_path / "user"
    (repo / "arch_specs").mkdir(parents=True)
    (repo / "arch_specs" / "good.yaml").write_text(PASSING)
    (repo / "arch_specs" / "bad.yaml").write_text(PASSING.replace("gt: 20", "gt: 44").replace("passing", "failing"))
    (repo / "notes.yaml").write_text("not: a spec\n")  # outside the hook's `files` pattern: never checked
    (repo / ".pre-commit-config.yaml").write_text(config)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    return repo


def _pre_commit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # this environment's rfcalc, for `language: system`
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "COLUMNS": "120",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    pre_commit = shutil.which("pre-commit", path=bin_dir) or "pre-commit"
    return subprocess.run([pre_commit, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def _assert_good_passes_and_bad_fails(repo: Path, home: Path) -> None:
    good = _pre_commit(repo, home, "run", "--files", "arch_specs/good.yaml", "notes.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "rfcalc check" in good.stdout and "Passed" in good.stdout

    both = _pre_commit(repo, home, "run", "--all-files")
    assert both.returncode == 1, both.stdout + both.stderr
    assert "Failed" in both.stdout
    assert "arch_specs/bad.yaml (failing): FAIL" in both.stdout
    assert "RF 35 > 44 ✗ (add at least 10)" in both.stdout  # rf 5, then 7 (jump 2), gap over 15: 7 + 14*2
    assert "arch_specs/good.yaml (passing): ok" in both.stdout
    assert "notes.yaml" not in both.stdout


def _snapshot(dest: Path) -> str:
    """This working tree (tracked and untracked files, not ignored ones) as a one-commit repository; its sha."""
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", ".")
    _git(dest, "commit", "-q", "-m", "snapshot of the working tree")
    return _git(dest, "rev-parse", "HEAD").strip()


def test_readme_recipe_with_autoupdate_and_a_commit_sha(tmp_path: Path):
    sha = _snapshot(tmp_path / "rfcalc")
    recipe = _recipe(URL)
    assert "rev: main" in recipe and "pre-commit autoupdate" in PAGE
    repo = _user_repo(tmp_path, recipe.replace(URL, str(tmp_path / "rfcalc")))
    home = tmp_path / "pre-commit-home"

    update = _pre_commit(repo, home, "autoupdate")
    assert update.returncode == 0, update.stdout + update.stderr
    config = (repo / ".pre-commit-config.yaml").read_text()
    assert re.search(rf"^    rev: {sha}\b", config, flags=re.M), config  # the full 40-hex sha, no tag needed
    _git(repo, "add", ".pre-commit-config.yaml")
    _assert_good_passes_and_bad_fails(repo, home)


def test_readme_local_recipe_as_written(tmp_path: Path):
    repo = _user_repo(tmp_path, _recipe("repo: local"))
    _assert_good_passes_and_bad_fails(repo, tmp_path / "pre-commit-home")


def test_local_recipe_matches_the_published_hook():
    import yaml

    (published,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (local,) = yaml.safe_load(_recipe("repo: local"))["repos"][0]["hooks"]
    assert {k: local[k] for k in ("id", "name", "entry", "files", "require_serial")} == \
        {k: published[k] for k in ("id", "name", "entry", "files", "require_serial")}
    assert local["language"] == "system"


@pytest.mark.parametrize("recipe", [URL, "repo: local"])
def test_recipes_are_valid_pre_commit_configs(tmp_path: Path, recipe: str):
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(_recipe(recipe))
    result = _pre_commit(tmp_path, tmp_path / "home", "validate-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
