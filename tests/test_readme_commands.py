"""The command lines of the README and of the user docs, run in order, as a new user runs them.

Every line of a ```bash block of a page below that starts with `rfcalc`, and every `rfcalc` part of a `&&` chain,
runs through bash in a fresh folder per page that holds copies of arch_specs/ and examples/ (what a clone gives):
a reader runs one page's commands in the order written. The install lines (`python3 -m venv`, `pip install`,
`python -m pytest`, ...) are the set-up that .ci/run does; they are not repeated. A trailing `# exit N` comment
states a command's exit code (default 0).

Three things change, for time only, and each must be in the page as written: the data set
(`../shared/datasets/cifar10-jpeg`, 60,000 images) becomes a folder of 30 + 20 images of 32x32 in the same layout;
`--epochs 20` becomes `--epochs 1`; `lr-find` runs 5 steps instead of 100 (and a sweep 2 trials).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib  # noqa: F401
import pytest
import torch  # noqa: F401
from conftest import ROOT

DATA = "../shared/datasets/cifar10-jpeg"
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest", "python -m ruff",
         "python -m mypy")
# The pages whose commands run, and what each leaves in its folder.
PAGES = {
    "README.md": ("model.py", "runs/c1/best.pt"),
    "CONTRIBUTING.md": (),
    "docs/check.md": (),
    "docs/suggest.md": ("fixed.yaml",),
    "docs/export.md": ("model.py", "erf.png", "rf.png", "net.yaml"),
    "docs/train.md": ("runs/c1/best.pt", "runs/c1/summary.json", "runs/c1c2c3c4-cifar10/lr_find.png"),
    "docs/sweep.md": ("runs/c1c2c3c4-quick/study.db",),
}
# Pages with commands that cannot run here, and why.
NOT_RUN = {"docs/distributed.md": "several machines and 4 GPUs each, on a spec.yaml of the reader's"}


def page_commands(page: str) -> list[tuple[str, int]]:
    """(command, expected exit code) for every rfcalc command of the page's bash blocks, in order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            text, _, comment = line.partition("  #")
            expected = re.match(r"\s*exit (\d+)", comment)
            for part in (p.strip() for p in text.split("&&")):
                if part.startswith("rfcalc ") or (part.startswith("torchrun ") and " -m rfcalc train " in part):
                    commands.append((part, int(expected.group(1)) if expected else 0))
                else:
                    assert not part or part.startswith(SETUP), f"a {page} command this test does not know: {part}"
    return commands


def test_every_page_with_commands_is_run() -> None:
    pages = ["README.md", "CONTRIBUTING.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
    with_commands = {page for page in pages if "```bash" in (ROOT / page).read_text(encoding="utf-8")}
    assert with_commands == set(PAGES) | set(NOT_RUN)


def test_each_page_sequence_is_what_the_user_hit() -> None:
    for page in ("README.md", "docs/export.md"):
        commands = [c for c, _ in page_commands(page)]
        export = next(i for i, c in enumerate(commands) if c.startswith("rfcalc export") and "-o model.py" in c)
        inspect = next(i for i, c in enumerate(commands) if c.startswith("rfcalc inspect model.py:Net"))
        assert export < inspect and "--class-name Net" in commands[export], page
    commands = [c for c, _ in page_commands("docs/train.md")]
    train = next(i for i, c in enumerate(commands) if c.startswith("rfcalc train") and DATA in c and "--epochs 20" in c)
    assert train < next(i for i, c in enumerate(commands) if "--weights runs/c1/best.pt" in c)
    assert any(c.startswith("rfcalc lr-find") for c in commands)
    assert any(c.startswith("torchrun ") for c in commands) and any("--nproc-per-node 2" in c for c in commands)
    suggest = [c for c, _ in page_commands("docs/suggest.md")]
    assert suggest.index("rfcalc check fixed.yaml") > next(i for i, c in enumerate(suggest) if "-o fixed.yaml" in c)
    readme = page_commands("README.md")
    assert readme[:2] == [("rfcalc table examples/quickstart.yaml", 0), ("rfcalc check examples/quickstart.yaml", 0)]


def _tiny_cifar(root: Path) -> Path:
    from train_helpers import write_image_folder

    return write_image_folder(root, per_class=3, test_per_class=2, size=32)


def _for_time(command: str, data: Path) -> str:
    if DATA in command:
        command = command.replace(DATA, str(data))
    if command.startswith("rfcalc train") or command.startswith("torchrun "):
        assert "--epochs 20" in command
        command = command.replace("--epochs 20", "--epochs 1")
    if command.startswith("rfcalc sweep"):
        command += " --trials 2"
    if command.startswith("rfcalc lr-find"):
        command += " --steps 5"
    return command


@pytest.mark.slow
@pytest.mark.parametrize("page", [page for page in PAGES if page_commands(page)])
def test_every_command_of_a_page_runs_in_a_fresh_folder(tmp_path: Path, page: str):
    work = tmp_path / "clone"
    work.mkdir()
    for folder in ("arch_specs", "examples"):
        shutil.copytree(ROOT / folder, work / folder)
    data = _tiny_cifar(tmp_path / "cifar10-jpeg")
    env = {**os.environ, "COLUMNS": "120", "RFCALC_CACHE": str(tmp_path / "cache"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    failures = []
    for command, expected in page_commands(page):
        run = subprocess.run(["bash", "-c", _for_time(command, data)], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600)
        if run.returncode != expected or "Traceback" in run.stdout + run.stderr:
            failures.append(f"$ {command}\nexit {run.returncode}, {page} says {expected}\n{run.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)
    for made in PAGES[page]:
        assert (work / made).is_file(), made
