"""What `rfcalc train` refuses before any work: an --out that holds an earlier run (issue 25, item 7), a checkpoint
of another spec to resume or evaluate (item 8)."""
from __future__ import annotations

from pathlib import Path

import albumentations  # noqa: F401 - the train extra
import matplotlib  # noqa: F401 - the train extra
import pytest
from train_helpers import (
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    one_line_error,
    run,
    spec_file,
    spec_text,
)

from rfcalc.errors import RfcalcError
from rfcalc.trainer.run import check_out_free


def test_a_new_run_refuses_an_out_that_holds_a_run_unless_overwrite(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    out = tmp_path / "run"
    argv = ["train", spec, "--data", pickles, "--epochs", "1", "--out", out]
    assert run(argv).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("metrics.jsonl", "best.pt", "last.pt")}
    again = run(argv)
    assert again.exit_code == 2 and again.stdout == ""  # before the check, the table and the data
    assert one_line_error(again) == (f"--out {out} holds an earlier run (last.pt, best.pt, metrics.jsonl, "
                                     f"summary.json, curves.png, misclassified.png, confusion.png); continue it "
                                     f"with --resume {out / 'last.pt'}; start a new one with another --out, or "
                                     f"replace it with --overwrite")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert run([*argv, "--overwrite"]).exit_code == 0
    assert (out / "metrics.jsonl").read_text().count("\n") == 1


def test_the_default_out_is_named_as_such(tmp_path: Path, pickles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    (tmp_path / "runs" / "tiny-test").mkdir(parents=True)
    (tmp_path / "runs" / "tiny-test" / "metrics.jsonl").write_text("{}\n")
    result = run(["train", spec, "--data", pickles, "--epochs", "1"])
    assert result.exit_code == 2
    assert one_line_error(result) == ("runs/tiny-test (the default --out) holds an earlier run (metrics.jsonl); "
                                      "start a new one with another --out, or replace it with --overwrite")


def test_overwrite_removes_every_file_of_the_earlier_run(tmp_path: Path) -> None:
    """So that a new run that stops early leaves no file of the old one beside its own."""
    for name in ("best.pt", "confusion.png", "notes.txt"):
        (tmp_path / name).write_text("old")
    with pytest.raises(RfcalcError):
        check_out_free(str(tmp_path), given=True, overwrite=False, remove=True)
    check_out_free(str(tmp_path), given=True, overwrite=True, remove=False)  # another rank: it leaves them
    assert (tmp_path / "best.pt").exists()
    check_out_free(str(tmp_path), given=True, overwrite=True, remove=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # not a file of a run: kept


def test_the_launcher_refuses_an_out_that_holds_a_run_before_starting_workers(tmp_path: Path,
                                                                               pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    result = run(["train", spec, "--data", pickles, "--out", tmp_path / "run", "--nproc-per-node", "2",
                  "--device", "cpu"])
    assert result.exit_code == 2
    assert one_line_error(result).startswith(f"--out {tmp_path / 'run'} holds an earlier run (last.pt)")


def test_a_checkpoint_of_another_spec_is_refused_before_any_work(tmp_path: Path, pickles: Path) -> None:
    """`train --resume` and `evaluate --weights` with a checkpoint that another spec wrote: one line naming the
    spec it belongs to (name, file, digest) before the check, the table or the data (--data here does not exist)."""
    import rfcalc

    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    assert run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "a"]).exit_code == 0
    other = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast").replace("out: 8}", "out: 12}")
                  .replace("name: tiny-test", "name: wider"), "wider.yaml")
    was = f"spec 'tiny-test' ({spec}, digest {rfcalc.load_spec(spec).digest})"
    now = f"spec 'wider' ({other}, digest {rfcalc.load_spec(other).digest})"
    mismatch = "'c1.conv.weight' is [8, 3, 3, 3] in the checkpoint but [12, 3, 3, 3] in the spec"
    last, best = tmp_path / "a" / "last.pt", tmp_path / "a" / "best.pt"
    resumed = run(["train", other, "--resume", last, "--data", tmp_path / "nowhere"])
    assert resumed.exit_code == 2 and resumed.stdout == ""
    assert one_line_error(resumed) == (f"{last} was written for {was}, not {now}, and does not fit it ({mismatch}); "
                                       f"use it with `rfcalc train {spec} --resume {last}`")
    evaluated = run(["evaluate", other, "--weights", best, "--data", tmp_path / "nowhere"])
    assert evaluated.exit_code == 2 and evaluated.stdout == ""
    assert one_line_error(evaluated) == (f"{best} was written for {was}, not {now}, and does not fit it "
                                         f"({mismatch}); use it with `rfcalc evaluate {spec} --weights {best}`")
    # the same spec, edited where no tensor changes: used, with a notice
    spec.write_text(spec.read_text() + "constraints:\n  params: {lt: 1M}\n", encoding="utf-8")
    edited = run(["evaluate", spec, "--weights", best, "--data", pickles])
    assert edited.exit_code == 0, edited.output
    said = " ".join(edited.stderr.split())
    assert said.startswith("notice: ") and " changed since " in said and "; its tensors still fit" in said


def test_the_optimizer_is_a_flag_like_the_others(tmp_path: Path, pickles: Path) -> None:
    """Issue 25: `train --optimizer adamw` was 'No such option: --optimizer (Possible options: --compile)'."""
    import json

    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    bad = run(["train", spec, "--data", pickles, "--optimizer", "adam"])
    assert bad.exit_code == 2
    assert one_line_error(bad) == ("--optimizer adam: must be one of 'sgd' or 'adamw', got 'adam' (did you mean "
                                   "'adamw'?)")
    out = tmp_path / "run"
    assert run(["train", spec, "--data", pickles, "--epochs", "1", "--optimizer", "adamw", "--out", out]).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["options"]["config"]["optimizer"] == "adamw"
    changed = run(["train", spec, "--resume", out / "last.pt", "--optimizer", "sgd"])
    assert changed.exit_code == 2
    assert one_line_error(changed).startswith(f"--optimizer sgd: the run in {out / 'last.pt'} used adamw")


def test_evaluate_and_check_wrap_their_lines_at_80_columns(tmp_path: Path, pickles: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: `evaluate`'s header and `check`'s notes ran past 80 columns unwrapped."""
    from typer.testing import CliRunner

    from rfcalc.cli.app import app

    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\naug: fast"))
    assert run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "a"]).exit_code == 0
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)  # paths shorter than a line (a longer one keeps a line of its own)
    pickles = pickles.relative_to(tmp_path)
    evaluated = run(["evaluate", "spec.yaml", "--weights", "a/best.pt", "--data", pickles, "--tta"])
    checked = CliRunner().invoke(app, ["check", "spec.yaml"])
    assert evaluated.exit_code == 0 and checked.exit_code == 0, evaluated.output + checked.output
    for text in (evaluated.stdout, checked.stdout):  # a word longer than a line (the data's path) keeps its own
        assert all(len(line) <= 80 or " " not in line.strip() for line in text.splitlines()), text
    said = " ".join(evaluated.stdout.split())
    assert said.startswith("a/best.pt on 40 test images of /") and " with flip TTA: accuracy " in said
    assert " ".join(checked.stdout.split()).endswith("or flags such as --rf '>44'")


def test_check_fits_without_a_recorded_file_or_spec(tmp_path: Path) -> None:
    """Checkpoints written before the spec's file was recorded, and bare state_dicts (nothing names a spec)."""
    import rfcalc
    from rfcalc.trainer.run import check_fits

    spec = rfcalc.load_spec(spec_file(tmp_path, spec_text()))
    wider = rfcalc.load_spec(spec_file(tmp_path, spec_text().replace("out: 8}", "out: 12}").replace(
        "name: tiny-test", "name: wider"), "wider.yaml"))
    state = rfcalc.build_model(spec).state_dict()
    said: list[str] = []
    old = {"spec": {"name": "tiny-test", "digest": "0123456789ab"}, "model": state}
    with pytest.raises(RfcalcError) as refused:
        check_fits(wider, old, Path("last.pt"), said.append, command="train")
    assert str(refused.value) == (
        f"last.pt was written for spec 'tiny-test' (digest 0123456789ab), not spec 'wider' ({wider.file}, digest "
        f"{wider.digest}), and does not fit it ('c1.conv.weight' is [8, 3, 3, 3] in the checkpoint but [12, 3, 3, 3] "
        f"in the spec); use it with the file of spec 'tiny-test', or start a new run without --resume")
    check_fits(spec, old, Path("last.pt"), said.append, command="evaluate")  # the same spec, edited: it fits
    assert said == [f"notice: {spec.file} changed since last.pt was written (digest 0123456789ab, now {spec.digest}); "
                    "its tensors still fit"]
    check_fits(spec, {"model": state}, Path("w.pt"), said.append, command="evaluate")  # bare, fits: nothing said
    with pytest.raises(RfcalcError, match=r"^w.pt does not fit spec 'wider' \("):
        check_fits(wider, {"model": state}, Path("w.pt"), said.append, command="evaluate")
    assert len(said) == 1
