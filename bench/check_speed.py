"""`rfcalc check` on a 200-layer spec, side by side with `import torch` and torchinfo on the same model.

Also: the calculator's time on generated specs of 1k, 5k and 10k layers (it must be linear; 10k < 1 s).
Run: python bench/check_speed.py  (needs the torch and dev extras for the comparison columns).
Prints a Markdown table; paste it into bench/RESULTS.md with the machine it ran on.

``--baseline DIR`` also times another checkout of rfcalc (e.g. ``git worktree add /tmp/before <commit>``) against
this one, interleaved in the same run (before, after, before, after, ...): `rfcalc check` on the 200-layer spec
and ``load_spec`` on 10k layers, as medians and the median of the paired ratios, so a refactor can show that
`table` / `check` got no slower on a machine whose speed drifts.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPEATS = 5


def deep_spec(n_layers: int, channels: int = 32) -> dict[str, Any]:
    """A CIFAR-style spec with ``n_layers`` entries: convs (some dilated, two strided), GAP, a linear head."""
    layers: list[dict[str, Any]] = []
    for i in range(n_layers - 2):
        layer: dict[str, Any] = {"op": "conv", "out": channels, "padding": 1}
        if i % 7 == 3:
            layer.update(dilation=2, padding=2)
        if i in (n_layers // 3, 2 * n_layers // 3):
            layer.update(stride=2)
        layers.append(layer)
    layers += [{"op": "gap"}, {"op": "linear", "out": 10}]
    return {"version": 1, "name": f"deep{n_layers}", "input": {"channels": 3, "size": 32},
            "defaults": {"conv": {"bias": False, "norm": "bn", "act": "relu"}}, "layers": layers,
            "constraints": {"rf": {"gt": 44}, "params": {"lt": "3M"}, "require": ["dilated_conv", "gap"],
                            "forbid": ["maxpool"]}}


def wall(command: list[str], env: dict[str, str] | None = None) -> float:
    """Median wall time of REPEATS runs of a command (after one warm-up run)."""
    subprocess.run(command, capture_output=True, env=env, check=False)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{command} failed: {proc.stderr.decode()[-500:]}")
    return statistics.median(times)


def calculator_times() -> list[tuple[int, float]]:
    import rfcalc

    out = []
    for n in (1_000, 5_000, 10_000):
        spec = deep_spec(n, channels=8)
        spec["input"]["size"] = 64
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            rfcalc.load_spec(spec)
            times.append(time.perf_counter() - start)
        out.append((n, statistics.median(times)))
    return out


def paired(commands: dict[str, list[str]], envs: dict[str, dict[str, str]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each labelled command, run in turn ``repeats`` times (after one warm-up each)."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for label, command in commands.items():
        subprocess.run(command, capture_output=True, env=envs[label], check=False)
    for _ in range(repeats):
        for label, command in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, env=envs[label], check=False)
            times[label].append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{label}: {command} failed: {proc.stderr.decode()[-500:]}")
    return times


LOAD_10K = ("import sys, time, yaml; sys.path.insert(0, {bench!r}); from check_speed import deep_spec; import rfcalc; "
            "s = deep_spec(10000, channels=8); s['input']['size'] = 64; t = time.perf_counter(); "
            "rfcalc.load_spec(s); print(time.perf_counter() - t)")


def workspace(tmp: str) -> tuple[Path, Path]:
    """The 200-layer spec file, and a folder whose ``torch`` package raises on import (put it on PYTHONPATH)."""
    path = Path(tmp) / "deep200.yaml"
    path.write_text(yaml.safe_dump(deep_spec(200)))
    fake = Path(tmp) / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch imported by rfcalc check')\n")
    return path, fake.parent


def compare(baseline: Path, repeats: int) -> None:
    """This checkout against ``baseline``, interleaved; prints a Markdown table."""
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        path, no_torch = workspace(tmp)
        roots = {"before": baseline.resolve(), "after": here}
        envs = {label: {**os.environ, "PYTHONPATH": f"{no_torch}{os.pathsep}{root}",
                        "PYDANTIC_DISABLE_PLUGINS": "__all__"} for label, root in roots.items()}
        check = paired({label: [sys.executable, "-m", "rfcalc", "check", str(path)] for label in roots}, envs, repeats)
        calc: dict[str, list[float]] = {label: [] for label in roots}
        code = LOAD_10K.format(bench=str(here / "bench"))
        for _ in range(repeats):
            for label in roots:
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=envs[label], text=True,
                                     check=True)
                calc[label].append(float(out.stdout.strip()))
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; before = {roots['before']}, after = {roots['after']}")
    print()
    print(f"| median of {repeats}, interleaved | before (s) | after (s) | after / before (median of paired ratios) |")
    print("|---|---|---|---|")
    for name, times in (("`rfcalc check` 200-layer spec (wall, torch unimportable)", check),
                        ("`load_spec` 10,000 layers (in-process)", calc)):
        ratios = [a / b for a, b in zip(times["after"], times["before"])]
        print(f"| {name} | {statistics.median(times['before']):.3f} | {statistics.median(times['after']):.3f} | "
              f"{statistics.median(ratios):.2f}x |")


def main() -> None:
    if "--baseline" in sys.argv:
        at = sys.argv.index("--baseline")
        repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 9
        compare(Path(sys.argv[at + 1]), repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path, no_torch = workspace(tmp)
        env = {**os.environ, "PYTHONPATH": str(no_torch)}
        rfcalc_bin = str(Path(sys.executable).parent / "rfcalc")
        check = wall([rfcalc_bin, "check", str(path)], env=env)
        floor = wall([sys.executable, "-c", "import typer, yaml; from pydantic import BaseModel"])
        torch_import = wall([sys.executable, "-c", "import torch"])
        torchinfo = wall([sys.executable, "-c",
                          "import rfcalc, torchinfo; m = rfcalc.build_model(%r); "
                          "torchinfo.summary(m, input_size=(1, 3, 32, 32), verbose=0)" % str(path)])
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print()
    print("| 200-layer spec (median of 5, wall) | seconds | vs rfcalc check |")
    print("|---|---|---|")
    print(f"| `rfcalc check` (torch unimportable) | {check:.3f} | 1.0x |")
    print(f"| importing the base dependencies alone (typer, PyYAML, pydantic's BaseModel) | {floor:.3f} | "
          f"{floor / check:.2f}x |")
    print(f"| `python -c \"import torch\"` | {torch_import:.3f} | {torch_import / check:.1f}x |")
    print(f"| torchinfo summary of the built model | {torchinfo:.3f} | {torchinfo / check:.1f}x |")
    print()
    print("| calculator (load_spec: validate + expand + calculate), median of 5 | seconds | per 1k layers |")
    print("|---|---|---|")
    for n, seconds in calculator_times():
        print(f"| {n:,} layers | {seconds:.3f} | {seconds / (n / 1000):.3f} |")


if __name__ == "__main__":
    main()
