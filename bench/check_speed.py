"""`rfcalc check` on a 200-layer spec, side by side with `import torch` and torchinfo on the same model.

Also: the calculator's time on generated specs of 1k, 5k and 10k layers (it must be linear; 10k < 1 s).
Run: python bench/check_speed.py  (needs the torch and dev extras for the comparison columns).
Prints a Markdown table; paste it into bench/RESULTS.md with the machine it ran on.

``--baseline DIR`` also times another checkout of rfcalc (e.g. ``git worktree add /tmp/before <commit>``) against
this one, interleaved in the same run (before, after, before, after, ...): `rfcalc check` on the 200-layer spec
and ``load_spec`` on 10k layers, as medians and the median of the paired ratios, so a refactor can show that
`table` / `check` got no slower on a machine whose speed drifts.

``--pre-commit DIR`` times what a pre-commit hook pays: ``python -m rfcalc check examples/quickstart.yaml`` of this
checkout and of ``DIR`` (another checkout, e.g. ``git worktree add /tmp/old 3a46aba``), and importing the base
dependencies alone (``python -c "import typer, rich, pydantic, yaml"``, the floor no implementation on them can
beat), interleaved (floor, before, after, floor, ...) with torch unimportable; wall and CPU seconds, medians and the
medians of the paired ratios. ``--repeats N`` (default 11). A second reference, the *typer floor*: a typer app with
`check`'s parameters whose command does nothing (typer >= 0.2x coerces every parameter through a pydantic
``TypeAdapter``, which loads pydantic's model machinery and, through its plugin loader, ``importlib.metadata``: the
least any typer command with these parameters costs). With ``--instructions`` also the instructions each command
executes (valgrind's callgrind, one run each): a count the other jobs on a shared machine do not move.
"""
from __future__ import annotations

import os
import platform
import resource
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
    """Wall times of each labelled command, run in turn ``repeats`` times after one warm-up each (:func:`timed`)."""
    return timed(commands, envs, repeats)[0]


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


FLOOR = "import typer, rich, pydantic, yaml"
# A typer app with `check`'s parameters (a list of specs, five repeatable rule flags, --input, --format) and the
# group's --version, whose command does nothing: what typer itself costs a command like `check`.
TYPER_FLOOR = """import enum, typing, typer, rich, pydantic, yaml
A = typing.Annotated
class Format(str, enum.Enum):
    text = "text"
    json = "json"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
@app.callback()
def main(version: A[typing.Optional[bool], typer.Option("--version", is_eager=True)] = None) -> None:
    pass
@app.command()
def check(specs: A[typing.List[str], typer.Argument()], rf: A[typing.List[str], typer.Option()] = [],
          params: A[typing.List[str], typer.Option()] = [], macs: A[typing.List[str], typer.Option()] = [],
          require: A[typing.List[str], typer.Option()] = [], forbid: A[typing.List[str], typer.Option()] = [],
          input: A[typing.Optional[str], typer.Option()] = None, format: A[Format, typer.Option()] = Format.text
          ) -> None:
    pass
app()
"""


def timed(commands: dict[str, list[str]], envs: dict[str, dict[str, str]],
          repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU (user + system) seconds of each labelled command, run in turn ``repeats`` times after one
    warm-up each. They run in a neutral folder: ``python -m`` puts the working folder first on sys.path, which
    would shadow PYTHONPATH's checkout with the one the benchmark was started in. CPU time is what a loaded
    machine distorts least."""
    walls: dict[str, list[float]] = {label: [] for label in commands}
    cpus: dict[str, list[float]] = {label: [] for label in commands}
    cwd = tempfile.gettempdir()
    for label, command in commands.items():
        subprocess.run(command, capture_output=True, env=envs[label], check=False, cwd=cwd)
    for _ in range(repeats):
        for label, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, env=envs[label], check=False, cwd=cwd)
            walls[label].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[label].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{label}: {command} failed: {proc.stderr.decode()[-500:]}")
    return walls, cpus


def pre_commit(baseline: Path, repeats: int) -> None:
    """`rfcalc check examples/quickstart.yaml` here and in ``baseline``, against the import floor; Markdown."""
    here = Path(__file__).resolve().parents[1]
    spec = str(here / "examples" / "quickstart.yaml")
    for root in (here, baseline):  # as installed: with bytecode (a checkout run with PYTHONDONTWRITEBYTECODE has none)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "rfcalc")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        _, no_torch = workspace(tmp)
        roots = {"floor": None, "typer": None, "before": baseline.resolve(), "after": here}
        envs = {label: {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                        "PYTHONPATH": os.pathsep.join(str(p) for p in (no_torch, root) if p)}
                for label, root in roots.items()}
        commands = {label: [sys.executable, "-m", "rfcalc", "check", spec] for label in ("before", "after")}
        commands = {"floor": [sys.executable, "-c", FLOOR], "typer": [sys.executable, "-c", TYPER_FLOOR, "check", spec],
                    **commands}
        load = os.getloadavg()[0]
        walls, cpus = timed(commands, envs, repeats)
        counts = instructions(commands, envs) if "--instructions" in sys.argv else None
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {load:.1f} at the start; before = {roots['before']}, "
          f"after = {here}")
    print()
    print(f"| `examples/quickstart.yaml`, median of {repeats}, interleaved | wall (s) | / floor | CPU (s) | / floor |")
    print("|---|---|---|---|---|")

    def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    names = {"floor": f"floor: `python -c \"{FLOOR}\"`",
             "typer": "typer floor: a typer app with `check`'s parameters, doing nothing",
             "before": f"before: `rfcalc check` of {baseline.name}", "after": "after: `rfcalc check` of this checkout"}
    for label, name in names.items():
        print(f"| {name} | {statistics.median(walls[label]):.3f} | {ratio(walls, label, 'floor'):.2f}x | "
              f"{statistics.median(cpus[label]):.3f} | {ratio(cpus, label, 'floor'):.2f}x |")
    print()
    print(f"after / before (medians of the paired ratios): wall {ratio(walls, 'after', 'before'):.2f}x, "
          f"CPU {ratio(cpus, 'after', 'before'):.2f}x; after / typer floor: CPU {ratio(cpus, 'after', 'typer'):.2f}x")
    if counts:
        print()
        print("| instructions (callgrind, one run) | millions | / floor |")
        print("|---|---|---|")
        for label, name in names.items():
            print(f"| {name} | {counts[label] / 1e6:,.0f} | {counts[label] / counts['floor']:.2f}x |")
        print()
        print(f"after / before: {counts['after'] / counts['before']:.3f}x; after / typer floor: "
              f"{counts['after'] / counts['typer']:.2f}x")


def instructions(commands: dict[str, list[str]], envs: dict[str, dict[str, str]]) -> dict[str, int]:
    """Instructions each command executes (valgrind's callgrind, one run each, in a neutral folder)."""
    import re
    import shutil

    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind")
    counts: dict[str, int] = {}
    for label, command in commands.items():
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                              capture_output=True, text=True, env=envs[label], check=False, cwd=tempfile.gettempdir())
        found = re.search(r"Collected : (\d+)", proc.stderr)
        if found is None:
            raise SystemExit(f"{label}: no instruction count from valgrind: {proc.stderr[-500:]}")
        counts[label] = int(found.group(1))
    return counts


def main() -> None:
    repeats_given = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else None
    if "--pre-commit" in sys.argv:
        pre_commit(Path(sys.argv[sys.argv.index("--pre-commit") + 1]), repeats_given or 11)
        return
    if "--baseline" in sys.argv:
        at = sys.argv.index("--baseline")
        compare(Path(sys.argv[at + 1]), repeats_given or 9)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path, no_torch = workspace(tmp)
        env = {**os.environ, "PYTHONPATH": str(no_torch)}
        rfcalc_bin = str(Path(sys.executable).parent / "rfcalc")
        check = wall([rfcalc_bin, "check", str(path)], env=env)
        floor = wall([sys.executable, "-c", "import typer, yaml; from pydantic import BaseModel"])
        torch_import = wall([sys.executable, "-c", "import torch"])
        torchinfo = wall([sys.executable, "-c",
                          f"import rfcalc, torchinfo; m = rfcalc.build_model({str(path)!r}); "
                          "torchinfo.summary(m, input_size=(1, 3, 32, 32), verbose=0)"])
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
