"""Every GPU figure of the trainer in one run: speed per path, first epoch, time to 85%, the reports' loop, the
bare-step ceiling, the captured step against the eager one, and the accuracy of the bundled designs.

    python bench/gpu.py --data DIR --out OUT                     # on a GPU: about 8 minutes on an H200
    python bench/gpu.py --data DIR --out OUT --device cpu --small  # the same script end to end on a CPU (a test)
    python bench/gpu.py ... --phases speed                          # or accuracy; both by default

What it measures (c1c2c3c4_cifar10.yaml unless said; every run is a fresh `rfcalc train` process):

- ``step``: one training step of the module at batch 256 on data already on the device, eager against the
  captured CUDA graph (median of timed steps after a warm-up), and the two paths' losses over the same 30 steps
  from the same weights (the graph must compute what eager computes: bf16-level differences only);
- ``paths``: steady images/s (median of epochs 2..) and first-epoch seconds per path — ``--aug fast`` with the
  CUDA graph (the default step), ``--aug fast --no-cuda-graph``, the defaults (albumentations, which on a GPU run
  on the device), albumentations in worker processes (a transform with no GPU equivalent added), and the
  reports' own notebook loop (bench/train_speed.py's, 2 epochs);
- ``reach``: the spec's own recipe (its ``train:`` section) for its epochs: seconds to 85% and 90% as the
  trainer reports them (``summary.json`` → ``reached``, warm-up included);
- ``accuracy``: the candidate designs of ``bench/candidates/`` (each file a spec with its recipe) at seed 0 side
  at the seeds asked for (``--seeds``), side by side on the device (``--parallel`` runs at once).

Writes ``OUT/gpu.json`` (everything) and ``OUT/gpu.md`` (the tables for bench/RESULTS.md) as it goes, so a run
cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from shared_data import CIFAR  # noqa: E402 - bench/ is the script's own folder

DEFAULT_SPEC = ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml"
CANDIDATES = BENCH / "candidates"
NO_GPU_EQUIVALENT = {"ToGray": {"p": 0.0}}  # keeps the albumentations path in worker processes


class Results:
    """``gpu.json`` and ``gpu.md`` in OUT, rewritten after every measurement."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data: dict[str, Any] = {"machine": machine()}
        out.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        (self.out / "gpu.json").write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        (self.out / "gpu.md").write_text(markdown(self.data), encoding="utf-8")


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- one training step


def step_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Eager vs captured step of the default spec at batch 256, and their losses over the same steps."""
    import torch

    import rfcalc
    from rfcalc.spec.train import TrainConfig
    from rfcalc.trainer import graphs
    from rfcalc.trainer.batches import Normalizer
    from rfcalc.trainer.engine import Engine, setup_backend

    device = torch.device(args.device)
    spec = rfcalc.load_spec(DEFAULT_SPEC)
    batch = 256 if not args.small else 32
    steps = 60 if not args.small else 4
    cfg = TrainConfig(ema=0.999)
    normalize = Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), device)
    gen = torch.Generator(device=device).manual_seed(0)
    xs = torch.randint(0, 256, (steps, batch, 32, 32, 3), generator=gen, device=device, dtype=torch.uint8)
    ys = torch.randint(0, 10, (steps, batch), generator=gen, device=device)

    def engine() -> Engine:
        setup_backend(device, 0)
        return Engine(rfcalc.build_model(spec), cfg, device, total_steps=steps)

    def timed(run_step: Any) -> float:
        times = []
        for i in range(steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            run_step(i)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        return statistics.median(times[steps // 3:])

    eager = engine()
    eager_losses: list[float] = []

    def eager_step(i: int) -> None:
        before = float(eager.sums[0])
        eager.train_step(xs[i], ys[i], normalize)
        eager_losses.append((float(eager.sums[0]) - before) / batch)

    out: dict[str, Any] = {"batch": batch, "eager_ms": 1000 * timed(eager_step)}
    if device.type == "cuda":
        captured = engine()
        choice = graphs.warm_up(captured, normalize, graphs.GraphChoice(True), xs[0], ys[0], [1000], True)
        out["captured"] = choice.capture
        out["capture_note"] = choice.reason
        graph_losses: list[float] = []

        def graph_step(i: int) -> None:
            before = float(captured.sums[0])
            captured.train_step(xs[i], ys[i], normalize)
            graph_losses.append((float(captured.sums[0]) - before) / batch)

        out["graph_ms"] = 1000 * timed(graph_step)
        diffs = [abs(a - b) for a, b in zip(eager_losses, graph_losses)]
        out["loss_max_abs_diff"] = max(diffs)
        out["losses_eager_first_last"] = [eager_losses[0], eager_losses[-1]]
        out["losses_graph_first_last"] = [graph_losses[0], graph_losses[-1]]
    for key in ("eager_ms", "graph_ms"):
        if key in out:
            out[key.replace("_ms", "_img_s")] = round(batch / out[key] * 1000)
    return out


# ---------------------------------------------------------------------------------------------- runs of rfcalc train


def spec_with(spec: Path, folder: Path, train: dict[str, Any] | None = None, name: str | None = None) -> Path:
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    if train:
        data["train"] = {**(data.get("train") or {}), **train}
    path = folder / f"{name or spec.stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def train(args: argparse.Namespace, spec: Path, out: Path, extra: list[str], timeout: float,
          env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `rfcalc train` process; its summary and per-epoch rows (or the failure)."""
    command = [sys.executable, "-m", "rfcalc", "train", str(spec), "--data", str(args.data), "--out", str(out),
               "--device", args.device, *extra]
    if args.small:
        command += ["--train-limit", "512", "--test-limit", "256"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout,
                              env={**os.environ, "COLUMNS": "1000", **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": " ".join(command)}
    wall = time.perf_counter() - started
    (out.parent / f"{out.name}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode:
        tail = " / ".join(done.stderr.strip().splitlines()[-4:])
        return {"error": f"exit {done.returncode}: {tail}", "command": " ".join(command)}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    steady = [r["images_per_s"] for r in rows[1:]] or [rows[0]["images_per_s"]]
    train_line = next((ln for ln in done.stderr.splitlines() if ln.startswith("training ")), "")
    warm_line = next((ln for ln in done.stderr.splitlines() if ln.startswith("warm-up")), "")
    return {"wall_s": round(wall, 1), "warmup_s": summary.get("warmup_seconds"), "mode": summary.get("step_mode"),
            "first_epoch_s": rows[0]["seconds"], "steady_epoch_s": statistics.median(r["seconds"] for r in rows[1:])
            if len(rows) > 1 else None, "steady_img_s": round(statistics.median(steady)),
            "first_img_s": round(rows[0]["images_per_s"]), "best": summary["best_test_acc"],
            "final": summary["final_test_acc"], "best_epoch": summary["best_epoch"], "reached": summary["reached"],
            "epochs": len(rows), "params": summary["spec"]["params"], "rf": summary["spec"]["rf"][0],
            "train_line": train_line, "warm_line": warm_line}


def reports_loop(args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    images = 512 if args.small else 50000
    command = [sys.executable, str(BENCH / "train_speed.py"), "--reports-way", "--spec", str(DEFAULT_SPEC), "--data",
               str(args.data), "--images", str(images), "--epochs", "2", "--device", args.device]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode:
        return {"error": done.stderr.strip()[-500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"steady_img_s": round(result["images_per_s"][-1]), "first_img_s": round(result["images_per_s"][0])}


def speed(args: argparse.Namespace, results: Results, tmp: Path) -> None:
    if "step" in args.paths.split(","):
        say("bare step: eager vs CUDA graph")
        try:
            results.put("step", step_figures(args))
        except Exception as exc:  # a bench records the failure and goes on
            results.put("step", {"error": f"{type(exc).__name__}: {exc}"})
    epochs = ["--epochs", "1" if args.small else "3"]
    fast = spec_with(DEFAULT_SPEC, tmp, {"aug": "fast"}, "fast")
    workers = spec_with(DEFAULT_SPEC, tmp, {"aug": "albumentations", "augmentations": [
        {"HorizontalFlip": {"p": 0.5}}, {"Affine": {"translate_percent": [-0.0625, 0.0625], "scale": [0.95, 1.05],
                                                    "rotate": [-7, 7], "border_mode": "BORDER_REFLECT_101", "p": 0.5}},
        {"CoarseDropout": {"num_holes_range": [1, 1], "hole_height_range": [8, 8], "hole_width_range": [8, 8],
                           "fill": "mean", "p": 0.5}}, NO_GPU_EQUIVALENT]}, "workers")
    defaults = spec_with(DEFAULT_SPEC, tmp, {"aug": "albumentations"}, "defaults")
    paths: dict[str, Any] = dict(results.data.get("paths", {}))
    autotune = {"RFCALC_CUDNN_BENCHMARK": "1"}
    for key, name, spec, extra, env in (
            ("graph", "fast, CUDA graph", fast, [], {}),
            ("eager", "fast, eager", fast, ["--no-cuda-graph"], {}),
            ("autotune", "fast, CUDA graph, cudnn autotuning", fast, [], autotune),
            ("defaults", "defaults (albumentations)", defaults, [], {}),
            ("workers", "albumentations in workers", workers, [], {})):
        if key in args.paths.split(","):
            say(f"path: {name}")
            paths[name] = train(args, spec, tmp / f"path-{key}", epochs + ["--batch-size", "256"] + extra, 240, env)
            results.put("paths", paths)
    if "reports" in args.paths.split(","):
        say("path: the reports' loop")
        paths["the reports' loop (batch 128, 2 workers)"] = reports_loop(args, 240)
        results.put("paths", paths)
    extra = ["--epochs", "1"] if args.small else []
    for key, label, env in (("reach", "reach", {}), ("autotune", "reach, cudnn autotuning", autotune)):
        if key in args.reach.split(","):
            say(f"{label}: the spec's own recipe")
            results.put(label, train(args, DEFAULT_SPEC, tmp / f"reach-{key}", extra, 300, env))


# ---------------------------------------------------------------------------------------------- accuracy


def candidates(args: argparse.Namespace) -> list[Path]:
    """The candidates named (in the order given), or every file of bench/candidates/."""
    if not args.candidates:
        return sorted(CANDIDATES.glob("*.yaml"))
    return [CANDIDATES / f"{name}.yaml" for name in args.candidates.split(",") if name]


def accuracy(args: argparse.Namespace, results: Results, tmp: Path) -> None:
    """The ``--runs`` (STEM:SEED), then every candidate at every seed of ``--seeds``, ``--parallel`` runs at once
    on the device; then, with ``--best-seeds``, the ``--best-count`` best candidates of each parameter class
    (under 100k, under 200k) at those seeds."""
    import rfcalc

    extra = ["--epochs", "1"] if args.small else []
    table: dict[str, Any] = dict(results.data.get("accuracy", {}))

    def one(job: tuple[Path, int]) -> tuple[str, dict[str, Any]]:
        spec, seed = job
        key = f"{spec.stem} seed {seed}"
        left = args.deadline - time.time()
        if left < 30:
            return key, {"error": "not run: the time budget was spent"}
        say(f"accuracy: {key}")
        result = train(args, spec, tmp / f"acc-{spec.stem}-{seed}", extra + ["--seed", str(seed)],
                       min(args.run_timeout, left))
        say(f"accuracy: {key}: final {result.get('final', result.get('error'))}, best {result.get('best')}")
        return key, result

    def run(jobs: list[tuple[Path, int]]) -> None:
        with ThreadPoolExecutor(args.parallel) as pool:
            for key, result in pool.map(one, jobs):
                table[key] = result
                results.put("accuracy", table)

    specs = candidates(args) if args.candidates or not args.runs else []
    named = [(CANDIDATES / f"{stem}.yaml", int(seed)) for stem, _, seed in
             (item.rpartition(":") for item in args.runs.split(",") if item)]
    run(named + [(spec, int(seed)) for seed in args.seeds.split(",") for spec in specs])
    if not args.best_seeds:
        return
    seed = args.seeds.split(",")[0]
    params = {p.stem: rfcalc.load_spec(p).report.params for p in specs}
    best = []
    for low, high in ((0, 100_000), (100_000, 200_000)):
        scored = [(table.get(f"{p.stem} seed {seed}", {}).get("final") or 0.0, p) for p in specs
                  if low <= params[p.stem] < high]
        scored.sort(key=lambda item: item[0], reverse=True)
        best += [p for _, p in scored[:args.best_count]]
    run([(spec, int(s)) for s in args.best_seeds.split(",") for spec in best])


# ---------------------------------------------------------------------------------------------- the report


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def reach_lines(label: str, reach: dict[str, Any] | None) -> list[str]:
    if not reach:
        return []
    if "error" in reach:
        return [f"{label}: {reach['error']}", ""]
    r85, r90 = reach["reached"].get("85%"), reach["reached"].get("90%")
    at85 = f"epoch {r85['epoch']}, {r85['seconds']} s" if r85 else "never"
    at90 = f"epoch {r90['epoch']}, {r90['seconds']} s" if r90 else "never"
    return [f"{label} (the spec's own recipe): {reach['epochs']} epochs in {reach['wall_s']} s wall, final "
            f"{_pct(reach['final'])}, best {_pct(reach['best'])}; 85% at {at85}; 90% at {at90} "
            f"(warm-up {reach['warmup_s']} s included). `{reach['train_line']}`", ""]


def markdown(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    lines = [f"Machine: {m.get('gpu', 'no GPU')}, {m.get('cpus')} CPUs, torch {m.get('torch')}, CUDA {m.get('cuda')}",
             ""]
    step = data.get("step")
    if step:
        lines += [f"| one step, batch {step.get('batch')}, data on the device | ms | img/s |", "|---|---|---|"]
        for key, name in (("eager", "eager"), ("graph", "CUDA graph")):
            if f"{key}_ms" in step:
                lines.append(f"| {name} | {step[key + '_ms']:.2f} | {step[key + '_img_s']:,} |")
        if "loss_max_abs_diff" in step:
            lines.append(f"\nCaptured vs eager, same 60 steps from the same weights: largest loss difference "
                         f"{step['loss_max_abs_diff']:.4f} (losses {step['losses_eager_first_last']} vs "
                         f"{step['losses_graph_first_last']}).")
        if "error" in step:
            lines.append(f"step: {step['error']}")
        lines.append("")
    paths = data.get("paths")
    if paths:
        lines += ["| path (batch 256 unless said) | steady img/s | epoch 1 s | steady epoch s | warm-up s | step |",
                  "|---|---|---|---|---|---|"]
        for name, r in paths.items():
            if "error" in r:
                lines.append(f"| {name} | {r['error']} | | | | |")
                continue
            lines.append(f"| {name} | {r['steady_img_s']:,} | {r.get('first_epoch_s', 0) or 0:.2f} | "
                         f"{r.get('steady_epoch_s') or 0:.2f} | {r.get('warmup_s') or 0:.2f} | {r.get('mode', '-')} |")
        lines.append("")
    for label in ("reach", "reach, cudnn autotuning"):
        lines += reach_lines(label, data.get(label))
    acc = data.get("accuracy")
    if acc:
        lines += ["| candidate | params | RF | epochs | final | best (epoch) | 85% at | 90% at | wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for key, r in acc.items():
            if "error" in r:
                lines.append(f"| {key} | {r['error']} | | | | | | | |")
                continue
            r85, r90 = r["reached"].get("85%"), r["reached"].get("90%")
            lines.append(f"| {key} | {r['params']:,} | {r['rf']} | {r['epochs']} | {_pct(r['final'])} | "
                         f"{_pct(r['best'])} ({r['best_epoch']}) | {r85['epoch'] if r85 else '-'} | "
                         f"{r90['epoch'] if r90 else '-'} | {r['wall_s']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CIFAR)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--phases", default="speed,accuracy")
    parser.add_argument("--candidates", default="", help="comma-separated stems of bench/candidates/*.yaml (all)")
    parser.add_argument("--paths", default="step,graph,eager,autotune,defaults,workers,reports",
                        help="the speed paths to run (comma-separated)")
    parser.add_argument("--reach", default="reach,autotune", help="time to 85%%: cudnn's heuristics (the default), "
                        "its autotuning")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the accuracy runs")
    parser.add_argument("--runs", default="", help="single runs first, as STEM:SEED,... (e.g. the seeds a "
                        "candidate measured earlier still lacks); with no --candidates, only these")
    parser.add_argument("--best-seeds", default="", help="then the best candidate of each class at these seeds")
    parser.add_argument("--best-count", type=int, default=1, help="how many of the best of each class --best-seeds "
                        "runs")
    parser.add_argument("--parallel", type=int, default=9, help="accuracy runs at once on the device")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds: no run starts after that")
    parser.add_argument("--run-timeout", type=float, default=420.0, help="seconds one accuracy run may take")
    parser.add_argument("--small", action="store_true", help="tiny subsets and 1 epoch: the script end to end")
    args = parser.parse_args()
    args.deadline = time.time() + args.budget
    results = Results(args.out)
    if (args.out / "gpu.json").is_file():  # a second call adds to the first's figures
        results.data.update(json.loads((args.out / "gpu.json").read_text(encoding="utf-8")))
    tmp = args.out / "runs"
    tmp.mkdir(parents=True, exist_ok=True)
    for phase in args.phases.split(","):
        {"speed": speed, "accuracy": accuracy}[phase](args, results, tmp)
    sys.stdout.write(markdown(results.data))


if __name__ == "__main__":
    main()
