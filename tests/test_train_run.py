"""`rfcalc train` end to end on tiny data: artifacts, OneCycle steps, resume equivalence, NaN, Ctrl-C, evaluate,
lr-find."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import albumentations  # noqa: F401 - the train extra
import matplotlib  # noqa: F401 - the train extra
import pytest
import torch
from train_helpers import (
    CLASSES,
    isolated_cache,  # noqa: F401  (autouse fixture: own cache, one thread)
    one_line_error,
    run,
    signal_after_step,
    spec_file,
    spec_text,
    write_image_folder,
)

import rfcalc
from rfcalc.trainer.engine import Engine
from rfcalc.trainer.lr_find import range_test

pytestmark = pytest.mark.slow  # trains

METRIC_KEYS = {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "images_per_s", "seconds"}


def test_smoke_pickle_folder_one_epoch_writes_every_artifact(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nworkers: 0\nema: 0.9"))
    out = tmp_path / "run"
    result = run(["train", spec, "--data", pickles, "--epochs", "1", "--out", out])
    assert result.exit_code == 0, result.output
    assert "c1" in result.stdout and "epoch 1/1" in result.stdout  # the table, then the epoch line
    assert "apple" in result.stdout and "lowest" in result.stdout  # the per-class table
    assert f"wrote {out / 'metrics.jsonl'}" in result.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and METRIC_KEYS <= rows[0].keys() and rows[0]["epoch"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["spec"]["params"] == rfcalc.load_spec(spec).report.params
    assert summary["spec"]["digest"] == rfcalc.load_spec(spec).digest and summary["spec"]["rf"]
    assert summary["best_test_acc"] == max(r["test_acc"] for r in rows) and set(summary["reached"]) == {"85%", "90%"}
    assert summary["versions"]["torch"] == torch.__version__ and summary["device"].startswith("cpu")
    assert summary["per_class_test_acc"].keys() == set(CLASSES)
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(out / name, map_location="cpu", weights_only=True)
        assert ckpt["format"] == "rfcalc-checkpoint" and ckpt["classes"] == CLASSES
        rfcalc.build_model(spec).load_state_dict(ckpt["model"])
    assert "resume" in torch.load(out / "last.pt", weights_only=True)
    import matplotlib.image

    for name in ("curves.png", "misclassified.png", "confusion.png"):
        assert matplotlib.image.imread(out / name).ndim == 3
    assert not list(out.glob(".*tmp*"))  # atomic writes leave nothing behind


def test_smoke_image_folder_fast_aug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    data = write_image_folder(tmp_path / "images")
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\nfast_aug: {flip: true, translate: 2, cutout: 4}"))
    result = run(["train", spec, "--data", data, "--epochs", "1", "--aug", "fast", "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
    long = [line for line in result.output.splitlines()
            if len(line) > 80 and not any(len(word) > 60 for word in line.split())]
    assert long == [], long  # every line of an 80-column run fits (a path longer than a line keeps one of its own)
    assert "\n  " in result.stderr + result.stdout  # ... and some of them were broken to fit
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["options"]["config"]["aug"] == "fast"


def test_onecycle_is_stepped_once_per_batch_to_its_total(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast\nfinal_div_factor: 50\ndiv_factor: 10"))
    result = run(["train", spec, "--data", pickles, "--epochs", "3", "--lr", "0.2", "--out", tmp_path / "run",
                  "--train-limit", "70"])
    assert result.exit_code == 0, result.output
    steps = json.loads((tmp_path / "run" / "summary.json").read_text())["steps"]
    assert steps == {"optimizer_steps": 12, "schedule_steps": 12, "schedule_total_steps": 12}  # 3 x (70 // 16)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["lr"] == pytest.approx(0.2 / 10 / 50)


RESUME_TRAIN = "batch_size: 16\nworkers: 0\nema: 0.9\nlabel_smoothing: 0.1"
DROPOUT = "- {op: dropout, p: 0.2}"


def _weights(path: Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {**ckpt["model"], **{f"live.{k}": v for k, v in ckpt["resume"]["live_model"].items()}}


def test_ctrl_c_saves_and_resume_ends_with_the_same_weights(tmp_path: Path, pickles: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_file(tmp_path, spec_text(train=RESUME_TRAIN, extra_layers=DROPOUT))
    straight = run(["train", spec, "--data", pickles, "--epochs", "2", "--out", tmp_path / "a"])
    assert straight.exit_code == 0, straight.output

    with signal_after_step(2, signal.SIGINT):  # Ctrl-C during the third batch of epoch 1
        stopped = run(["train", spec, "--data", pickles, "--epochs", "2", "--out", tmp_path / "b"])
    assert stopped.exit_code == 130, stopped.output
    message = one_line_error(stopped)
    assert "interrupted in epoch 1 after batch 3/5" in message
    assert f"--resume {tmp_path / 'b' / 'last.pt'}" in message
    resumed = run(["train", spec, "--resume", tmp_path / "b" / "last.pt"])
    assert resumed.exit_code == 0, resumed.output
    a, b = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows_a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    rows_b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    strip = ("images_per_s", "seconds", "elapsed", "train_elapsed")
    assert [{k: v for k, v in json.loads(r).items() if k not in strip} for r in rows_a] == \
           [{k: v for k, v in json.loads(r).items() if k not in strip} for r in rows_b]


def test_resume_refuses_changed_options(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast"))
    assert run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "a"]).exit_code == 0
    result = run(["train", spec, "--resume", tmp_path / "a" / "last.pt", "--epochs", "5"])
    assert result.exit_code == 2 and "a resumed run keeps its options" in one_line_error(result)
    result = run(["train", spec, "--resume", tmp_path / "a" / "best.pt"])
    assert result.exit_code == 2 and "resume from last.pt" in one_line_error(result)
    result = run(["train", spec, "--resume", tmp_path / "a" / "last.pt"])
    assert result.exit_code == 2 and "already finished its 1 epochs" in one_line_error(result)


def test_nan_loss_stops_keeps_last_pt_and_suggests_a_lower_lr(tmp_path: Path, pickles: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast"))
    real_step = Engine.step

    def step(self, x, y):
        loss, correct = real_step(self, x, y)
        return (loss * float("nan"), correct) if self.steps > 7 else (loss, correct)  # NaN in epoch 2

    monkeypatch.setattr(Engine, "step", step)
    out = tmp_path / "run"
    result = run(["train", spec, "--data", pickles, "--epochs", "3", "--lr", "0.3", "--out", out])
    assert result.exit_code == 1
    message = one_line_error(result)
    assert "NaN in epoch 2" in message and "try a lower --lr, e.g. 0.03" in message
    assert f"kept {out / 'last.pt'} (end of epoch 1)" in message
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"


def test_a_real_divergence_is_caught(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(norm="none", train="batch_size: 16\naug: fast\nlabel_smoothing: 0"))
    result = run(["train", spec, "--data", pickles, "--epochs", "1", "--lr", "1e12", "--out", tmp_path / "run"])
    assert result.exit_code == 1 and "no checkpoint was written" in one_line_error(result)


def test_a_failing_check_stops_with_its_report_unless_skipped(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast", constraints="rf: {gt: 200}"))
    result = run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert "RF 19 > 200 ✗" in result.stderr and "--skip-check" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "run").exists()
    skipped = run(["train", spec, "--data", pickles, "--epochs", "1", "--out", tmp_path / "run", "--skip-check"])
    assert skipped.exit_code == 0, skipped.output


def test_evaluate_reproduces_the_runs_accuracy_and_names_a_mismatch(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast\ntta: true"))
    assert run(["train", spec, "--data", pickles, "--epochs", "2", "--out", tmp_path / "run"]).exit_code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    result = run(["evaluate", spec, "--weights", tmp_path / "run" / "best.pt", "--tta"])
    assert result.exit_code == 0, result.output
    assert f"accuracy {summary['best_test_acc']:.2%}" in " ".join(result.stdout.split()) and "apple" in result.stdout
    other = spec_file(tmp_path, spec_text().replace("out: 16", "out: 24"), "other.yaml")
    result = run(["evaluate", other, "--weights", tmp_path / "run" / "best.pt", "--data", pickles])
    assert result.exit_code == 2
    assert one_line_error(result).endswith("and does not fit it ('c2.conv.weight' is [16, 8, 3, 3] in the checkpoint "
                                           f"but [24, 8, 3, 3] in the spec); use it with `rfcalc evaluate {spec} "
                                           f"--weights {tmp_path / 'run' / 'best.pt'}`")


def test_lr_find_writes_the_plot_and_both_suggestions(tmp_path: Path, pickles: Path) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast"))
    result = run(["lr-find", spec, "--data", pickles, "--steps", "30", "--out", tmp_path / "lr"])
    assert result.exit_code == 0, result.output
    assert "steepest descent: lr" in result.stdout and "minimum loss / 10: lr" in result.stdout
    assert (tmp_path / "lr" / "lr_find.png").is_file()


def test_range_test_leaves_model_and_optimizer_as_they_were() -> None:
    torch.manual_seed(0)
    spec = rfcalc.load_spec(spec_text())
    cfg = rfcalc.load_spec(spec_text()).train
    from rfcalc.trainer.config import TrainConfig

    engine = Engine(rfcalc.build_model(spec), cfg or TrainConfig(), torch.device("cpu"), total_steps=10)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    engine.step(x, y)  # some optimizer state (momentum) to preserve
    model_before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    optim_before = json.dumps(engine.optimizer.state_dict()["param_groups"])
    momentum_before = [s["momentum_buffer"].clone() for s in engine.optimizer.state.values()]

    def step(xb, yb):
        loss = engine.criterion(engine.model(xb), yb)
        engine.optimizer.zero_grad()
        loss.backward()
        engine.optimizer.step()
        return loss.detach()

    test = range_test(engine.model, engine.optimizer, lambda: iter([(x, y)] * 4), step, 1e-4, 1.0, steps=20)
    assert len(test.lrs) > 5 and test.lrs[0] == pytest.approx(1e-4)
    after = engine.model.state_dict()
    assert all(torch.equal(model_before[k], after[k]) for k in model_before)
    assert json.dumps(engine.optimizer.state_dict()["param_groups"]) == optim_before
    assert all(torch.equal(a, s["momentum_buffer"]) for a, s in zip(momentum_before,
                                                                    engine.optimizer.state.values()))


def test_out_of_memory_says_so_and_suggests_a_batch_size(tmp_path: Path, pickles: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def step(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Engine, "step", step)
    spec = spec_file(tmp_path, spec_text(train="aug: fast"))
    result = run(["train", spec, "--data", pickles, "--batch-size", "64", "--out", tmp_path / "run"])
    assert result.exit_code == 1
    assert one_line_error(result) == "CUDA ran out of memory at batch size 64; try --batch-size 32"


def test_resume_with_another_spec_names_the_first_mismatched_tensor(tmp_path: Path, pickles: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast"))

    with signal_after_step(0, signal.SIGINT):
        assert run(["train", spec, "--data", pickles, "--epochs", "2", "--out", tmp_path / "a"]).exit_code == 130
    other = spec_file(tmp_path, spec_text(train="batch_size: 16\naug: fast").replace("out: 8}", "out: 12}"), "o.yaml")
    result = run(["train", other, "--resume", tmp_path / "a" / "last.pt"])
    assert result.exit_code == 2
    assert one_line_error(result).endswith("and does not fit it ('c1.conv.weight' is [8, 3, 3, 3] in the checkpoint "
                                           f"but [12, 3, 3, 3] in the spec); use it with `rfcalc train {spec} "
                                           f"--resume {tmp_path / 'a' / 'last.pt'}`")
