"""What a run says about the images each epoch uses (issue 25, item 9) and where a stop at an epoch's last batch
leaves it (item 15)."""
from __future__ import annotations

import signal
from pathlib import Path

import albumentations  # noqa: F401 - the train extra
import matplotlib  # noqa: F401 - the train extra
import pytest
from train_helpers import (
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    run,
    signal_after_step,
    spec_file,
    spec_text,
)

pytestmark = pytest.mark.slow  # real training runs


def _training_line(output: str) -> str:
    return " ".join(output.split("training ", 1)[1].split("\n\n")[0].split())


def test_a_subset_that_leaves_images_out_of_each_epoch_says_so(tmp_path: Path, pickles: Path) -> None:
    # 80 training images in batches of 32: two full batches an epoch, 16 images sit out (a new draw each epoch)
    spec = spec_file(tmp_path, spec_text(train="batch_size: 32\nworkers: 0\naug: fast"))
    result = run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    assert ("80 train / 40 test images, 1 epoch x 2 batches of 32 (16 of the 80 images sit out each epoch, a new "
            "draw every epoch)") in _training_line(result.stderr)
    full = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"), "full.yaml")
    result = run(["train", full, "--data", pickles, "--epochs", "1", "--out", tmp_path / "full"])
    assert "1 epoch x 5 batches of 16, sgd" in _training_line(result.stderr)  # every image: nothing to say


def test_a_stop_at_the_last_batch_of_an_epoch_ends_that_epoch(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    out = tmp_path / "run"
    with signal_after_step(4, signal.SIGINT):  # the 5th step: the last of epoch 1's five batches
        stopped = run(["train", spec, "--data", pickles, "--epochs", "2", "--out", out])
    assert stopped.exit_code == 130
    assert f"interrupted after epoch 1; saved {out / 'last.pt'}" in " ".join(stopped.stderr.split())
    assert (out / "metrics.jsonl").read_text().count("\n") == 1  # epoch 1 was evaluated and written
    resumed = run(["train", spec, "--resume", out / "last.pt"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming at epoch 2, batch 1" in _training_line(resumed.stderr)
    assert (out / "metrics.jsonl").read_text().count("\n") == 2
