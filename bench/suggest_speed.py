"""`rfcalc suggest` on every bundled spec made to fail in each way (tests/suggest_cases.py), side by side with
`rfcalc check` and with an exhaustive search over every single edit.

Prints Markdown; `--write` also puts it into bench/RESULTS.md (section `suggest-speed`).
Run: python bench/suggest_speed.py [--write]
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from check_speed import REPEATS, wall  # noqa: E402  (the same timing as the check-speed bench)
from suggest_cases import BUNDLED, KINDS, all_single_edits, load_case  # noqa: E402

from rfcalc.analysis.checker import spec_constraints  # noqa: E402
from rfcalc.analysis.load import load_spec  # noqa: E402
from rfcalc.errors import SpecError  # noqa: E402
from rfcalc.suggest import suggest  # noqa: E402
from rfcalc.suggest.apply import apply_edit  # noqa: E402

NOTE = ("Wall times on this shared VM move with the other jobs' load (the load average is printed above); CPU "
        "time is the steadier figure. The exhaustive column is the search the oracle test compares with "
        "(tests/test_suggest.py): on random specs suggest's top single edit is never worse by its ranking, at a "
        "fraction of its time (the ratio column). Not measured: a GPU (suggest never touches one).")


CPU: list[float] = []   # CPU seconds of every timed run (the VM is shared: CPU time drifts less than wall time)


def _time(func):
    """(median wall seconds of REPEATS runs after a warm-up, the last run's result): pydantic builds its
    validators on first use."""
    result = func()
    times = []
    for _ in range(REPEATS):
        start, cpu = time.perf_counter(), time.process_time()
        result = func()
        times.append(time.perf_counter() - start)
        CPU.append(time.process_time() - cpu)
    return statistics.median(times), result


def _exhaustive(data: dict) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for edit in all_single_edits(data):
        count += 1
        try:
            load_spec(apply_edit(data, edit))
        except SpecError:
            pass
    return count, time.perf_counter() - start


def main() -> str:
    lines = [f"`python bench/suggest_speed.py` on {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}); the search alone (`suggest()` after `load_spec`), median of "
             f"{REPEATS} runs after a warm-up, for each bundled spec made to fail in each of six ways:", "",
             "| spec | " + " | ".join(k.replace("_", " ") for k in KINDS) + " | median | max |",
             "|---|" + "---|" * (len(KINDS) + 2)]
    everything: list[float] = []
    evaluations: list[int] = []
    for path in BUNDLED:
        row = []
        for kind in KINDS:
            data, _ = load_case(path.stem, kind)
            spec = load_spec(data)
            constraints, _ = spec_constraints(spec, use_pyproject=False)
            seconds, result = _time(lambda: suggest(spec, constraints))
            assert result.suggestions, (path.stem, kind)
            evaluations.append(result.search.evaluations)
            row.append(seconds)
        everything += row
        lines.append(f"| {path.stem} | " + " | ".join(f"{s:.3f}" for s in row)
                     + f" | {statistics.median(row):.3f} | {max(row):.3f} |")
    lines += ["", f"All {len(everything)} cases: median {statistics.median(everything):.3f} s, slowest "
                  f"{max(everything):.3f} s wall (goal: < 1 s each); CPU time per run: median "
                  f"{statistics.median(CPU):.3f} s, most {max(CPU):.3f} s; evaluations per case: median "
                  f"{statistics.median(evaluations):.0f}, most {max(evaluations)}. Load average while it ran: "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.", ""]

    lines += ["Side by side, same run: the pruned search against every single edit of the same kinds evaluated "
              "(the oracle test's exhaustive search), RF short cases:", "",
              "| spec | suggest: evaluations | seconds | exhaustive: evaluations | seconds | ratio |",
              "|---|---|---|---|---|---|"]
    for path in BUNDLED:
        data, _ = load_case(path.stem, "rf_short")
        spec = load_spec(data)
        constraints, _ = spec_constraints(spec, use_pyproject=False)
        seconds, found = _time(lambda: suggest(spec, constraints))
        used = found.search.evaluations
        count, exhaustive = _exhaustive(data)
        lines.append(f"| {path.stem} | {used} | {seconds:.3f} | {count} | {exhaustive:.3f} | "
                     f"{exhaustive / seconds:.0f}x |")

    spec2 = load_spec(ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml")
    constraints2, _ = spec_constraints(spec2, overrides={"rf": {"gt": 120}, "params": {"lt": 170_000}},
                                       use_pyproject=False)
    first = len(CPU)
    seconds2, result2 = _time(lambda: suggest(spec2, constraints2))
    lines += ["", f"Two rules failing at once (c1c2c3c4_cifar10 with RF > 120 and params < 170k; a fix needs two "
                  f"edits): the search alone {seconds2:.3f} s wall, {statistics.median(CPU[first:]):.3f} s CPU, "
                  f"{result2.search.evaluations} evaluations over {len(result2.search.levels)} levels."]

    rfcalc = str(Path(sys.executable).parent / "rfcalc")
    spec = str(ROOT / "arch_specs" / "two_branch_dilated.yaml")
    check = wall([rfcalc, "check", spec])
    fix = wall([rfcalc, "suggest", spec])
    both = wall([rfcalc, "suggest", str(ROOT / "arch_specs" / "c1c2c3c4_cifar10.yaml"), "--rf", ">120",
                  "--params", "<170k"])
    lines += ["", "Whole commands (wall clock, median of 5, process start and imports included):", "",
              "| command | seconds | vs check |", "|---|---|---|",
              f"| `rfcalc check arch_specs/two_branch_dilated.yaml` | {check:.3f} | 1.0x |",
              f"| `rfcalc suggest arch_specs/two_branch_dilated.yaml` (1 edit) | {fix:.3f} | {fix / check:.1f}x |",
              f"| `rfcalc suggest arch_specs/c1c2c3c4_cifar10.yaml --rf '>120' --params '<170k'` (2 edits) | "
              f"{both:.3f} | {both / check:.1f}x |", "", NOTE, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    text = main()
    print(text)
    if "--write" in sys.argv:
        from results_file import write_section

        write_section("suggest-speed", "## `rfcalc suggest`: every bundled spec made to fail\n\n" + text)
