"""rfcalc inspect on torchvision's classification zoo (issue 14) and on 44 timm architectures (issue 26): RF, jump,
parameters, global, wall time and the gradient oracle's verdict per model; and inspect of densenet121 before and
after issue 14, side by side.

    PYTHONPATH=. python bench/inspect_zoo.py                       # the 16 models, markdown on stdout
    PYTHONPATH=. python bench/inspect_zoo.py --models resnet18,vit_b_16 --oracle-rows 6
    PYTHONPATH=. python bench/inspect_zoo.py --speed-only --before ../before     # densenet121 before / after
    PYTHONPATH=. python bench/inspect_zoo.py --write ...           # also replace its sections of bench/RESULTS.md

    PYTHONPATH=. python bench/inspect_zoo.py --timm --out timm.json --budget 1800   # the timm section (issue 26)
    PYTHONPATH=. python bench/inspect_zoo.py --timm --timm-models mixnet_s,resnet18 --oracle-rows -1 --out m.json

timm (issue 26 item 3; a bench/dev dependency only): each model (``timm.create_model(name, pretrained=False)``,
3x224x224) runs in a fresh process with a hard time limit (``--per-model`` seconds, default 300) under a total
budget (``--budget`` seconds: no model starts after it is spent; those left are listed as not run). Recorded per
model: the exit code inspect gives (0 complete, 2 refused, with the refusal's first line), the inspect time,
the oracle's verdict on the rows ``--oracle-rows`` picks (as for torchvision) and its time. ``--out FILE`` writes
the results as JSON to FILE and the markdown table to FILE with ``.md``; ``--write`` also replaces the
``inspect-timm`` section of bench/RESULTS.md. Without timm the section is skipped with one line. timm imports
torchvision at import; beside rfcalc's CPU torch install it with ``pip install --no-deps timm`` plus
``pyyaml huggingface_hub safetensors`` and a torchvision built for the same torch (the CPU index's
``torchvision==<matching>+cpu``; PyPI's pulls a CUDA torch). Where no such torchvision exists, ``--stub-torchvision``
puts a stand-in on the path that only holds the names timm imports (``FrozenBatchNorm2d``, ``InterpolationMode``;
nothing that a model's forward calls) — the numbers are then inspect's own, unchanged.

torchvision is not a dependency of rfcalc and is not in CI: its PyPI wheels are built against CUDA torch and do not
import beside the CPU wheel rfcalc pins. Run this with a Python where ``import torchvision`` works (a separate
venv with torch and torchvision from PyPI, plus rfcalc's base dependencies) and this checkout on PYTHONPATH.

Models are built with ``weights=None``; input 3x224x224 (inception_v3 3x299x299). For each: the table of
``rfcalc.inspect_module`` (the output's RF, jump and global; the trunk's RF: the last feature map larger than 1x1,
the figure the issue quotes), PyTorch's parameter count of what the forward uses, and the gradient oracle
(``rfcalc.inspection.check``) on the first and last rows, the trunk, the row where ``global`` first holds and the
row before it, and ``--oracle-rows`` more spread over the table: its window where not global, its ``global`` flag,
and the parameter count. ``--before DIR`` times densenet121's inspect in a checkout of the code before this round
(its flat module ``rfcalc.inspect``) and in this one, in alternating fresh processes, medians and paired ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "resnet101", "densenet121", "inception_v3", "googlenet",
          "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "squeezenet1_0",
          "shufflenet_v2_x1_0", "convnext_tiny", "vit_b_16"]
# the issue's figures for the trunk (RF / jump), where it gave them
ISSUE_TRUNK = {"alexnet": 195, "vgg16": 212, "resnet18": 435, "resnet50": 427, "resnet101": 971,
               "densenet121": 2071, "inception_v3": 1311, "googlenet": 379, "mobilenet_v2": 491,
               "mobilenet_v3_small": 639, "efficientnet_b0": 851, "regnet_y_400mf": 575, "squeezenet1_0": 155,
               "shufflenet_v2_x1_0": 527, "convnext_tiny": 1688}


def input_shape(name: str) -> tuple[int, int, int]:
    return (3, 299, 299) if name == "inception_v3" else (3, 224, 224)


def build(name: str) -> Any:
    import warnings

    import torchvision.models as tvm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes on init_weights for inception / googlenet
        return getattr(tvm, name)(weights=None)


def oracle_rows(report: Any, extra: int) -> list[str]:
    """The rows the oracle checks (``extra`` < 0: every row)."""
    rows = report.rows
    if extra < 0:
        return [r.name for r in rows]
    picks = {0, len(rows) - 1, trunk_index(report)}
    first = next((i for i, r in enumerate(rows) if r.is_global), None)
    if first is not None:
        picks |= {first, max(first - 1, 0)}
    if extra:
        picks |= {round(k * (len(rows) - 1) / (extra + 1)) for k in range(1, extra + 1)}
    return [rows[i].name for i in sorted(picks)]


def trunk_index(report: Any) -> int:
    maps = [i for i, r in enumerate(report.rows) if r.is_feature_map and r.out_shape[1] * r.out_shape[2] > 1]
    return maps[-1] if maps else len(report.rows) - 1


def zoo(models: list[str], extra_rows: int, oracle: bool) -> list[dict[str, Any]]:
    import torch

    from rfcalc.inspection.api import trace_module
    from rfcalc.inspection.check import inspection_problems, used_parameters

    results = []
    for name in models:
        shape = input_shape(name)
        model = build(name).eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape))  # torch's first-call costs are not inspect's
        start = time.perf_counter()
        inspection = trace_module(model, shape)
        seconds = time.perf_counter() - start
        report = inspection.report
        trunk = report.rows[trunk_index(report)]
        first = next((r.name for r in report.rows if r.is_global), "-")
        entry: dict[str, Any] = {
            "model": name, "input": "x".join(map(str, shape)), "exit": 0 if inspection.complete else 2,
            "rf": report.rf[0], "jump": report.output.geo_out.jump[0], "global": report.is_global,
            "trunk": f"{trunk.geo_out.rf[0]} / {trunk.geo_out.jump[0]}", "trunk_rf": trunk.geo_out.rf[0],
            "params": report.params, "used": used_parameters(model, shape), "first_global": first,
            "rows": len(report.rows), "seconds": seconds}
        if oracle and inspection.complete:
            chosen = oracle_rows(report, extra_rows)
            start = time.perf_counter()
            problems = inspection_problems(model, shape, chosen, inspection=inspection)
            entry.update(oracle_rows=len(chosen), problems=problems, oracle_seconds=time.perf_counter() - start)
        results.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "problems"} | {
            "problems": len(entry.get("problems", []))}), file=sys.stderr, flush=True)
        del model
    return results


_TIMER = """
import json, sys, time, warnings
sys.path.insert(0, {path!r})
import torch, torchvision.models as tvm
torch.set_num_threads({threads})
from {module} import inspect_module
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = tvm.densenet121(weights=None).eval()
inspect_module(model, (3, 224, 224))
times = []
for _ in range({repeats}):
    start = time.process_time()  # CPU seconds of this process: less of the other jobs on a shared machine
    inspect_module(model, (3, 224, 224))
    times.append(time.process_time() - start)
print(json.dumps(times))
"""


def speed(before: Path, rounds: int, repeats: int, threads: int) -> dict[str, Any]:
    """densenet121's inspect, before (``before``'s ``rfcalc.inspect``) and after, in fresh processes, alternating
    before-after and after-before so that a drift of the machine's load weighs on both."""
    runs: dict[str, list[float]] = {"before": [], "after": []}
    paired = []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    versions = [("before", before, "rfcalc.inspect"), ("after", ROOT, "rfcalc.inspection.api")]
    for k in range(rounds):
        medians = {}
        for label, path, module in (versions if k % 2 == 0 else versions[::-1]):
            code = _TIMER.format(path=str(path), module=module, repeats=repeats, threads=threads)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            runs[label] += times
            medians[label] = statistics.median(times)
        paired.append(medians["after"] / medians["before"])
        print(json.dumps(medians), file=sys.stderr, flush=True)
    return {"before": statistics.median(runs["before"]), "after": statistics.median(runs["after"]),
            "best_before": min(runs["before"]), "best_after": min(runs["after"]),
            "paired": paired, "ratio": statistics.median(paired), "n": len(runs["after"])}


def machine() -> str:
    import torch
    import torchvision

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.machine()}, {os.cpu_count()} cores (load average {load} when written), Python "
            f"{platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, CPU")


def zoo_section(results: list[dict[str, Any]], extra_rows: int) -> str:
    lines = [
        "## rfcalc inspect on torchvision's classification zoo (issue 14)",
        "",
        f"`PYTHONPATH=. python bench/inspect_zoo.py --oracle-rows {extra_rows}` ({machine()}). "
        "Models built with "
        "`weights=None`; RF / jump in input pixels; *trunk*: the last feature map larger than 1x1 (the issue's "
        "figure beside it); *global*: every unit of the output depends on every input pixel; *params*: the table "
        "against PyTorch's count of what the forward uses; *oracle*: the gradient oracle "
        "(`rfcalc.inspection.check`) on the rows listed in the script (window where not global, `global`, "
        "parameters). Inspect time: one run after a warm-up forward pass.",
        "",
        "| model | input | exit | output RF / jump | global | trunk RF / jump (issue) | params (= used) | "
        "first global row | rows | inspect s | oracle |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        issue = ISSUE_TRUNK.get(r["model"])
        trunk = r["trunk"] + (f" ({issue})" if issue is not None else "")
        same = "=" if r["params"] == r["used"] else f"≠ {r['used']:,}"
        verdict = "-" if "problems" not in r else (
            f"exact ({r['oracle_rows']} rows, {r['oracle_seconds']:.0f} s)" if not r["problems"]
            else f"{len(r['problems'])} problems: {r['problems'][0]}")
        lines.append(f"| {r['model']} | {r['input']} | {r['exit']} | {r['rf']} / {r['jump']} | "
                     f"{'yes' if r['global'] else 'no'} | {trunk} | {r['params']:,} {same} | `{r['first_global']}` "
                     f"| {r['rows']} | {r['seconds']:.1f} | {verdict} |")
    return "\n".join(lines) + "\n"


def speed_section(result: dict[str, Any], before: Path, rounds: int, repeats: int, threads: int) -> str:
    paired = ", ".join(f"{p:.2f}" for p in result["paired"])
    return "\n".join([
        "## inspect of densenet121, before and after issue 14",
        "",
        f"`PYTHONPATH=. python bench/inspect_zoo.py --speed-only --before {before}` ({machine()}, torch on "
        f"{threads} thread(s)). Before: the code before this round (commit 3a46aba, `rfcalc.inspect`); after: this "
        f"checkout. {rounds} rounds, each a fresh process per version (order alternating) timing {repeats} "
        f"inspects after one warm-up, in CPU seconds of the process (`time.process_time`: the cores are shared, "
        f"and wall time swung 4x between identical runs); densenet121, 3x224x224.",
        "",
        "| | median CPU s | best CPU s | |",
        "|---|---|---|---|",
        f"| before | {result['before']:.3f} | {result['best_before']:.3f} | |",
        f"| after | {result['after']:.3f} | {result['best_after']:.3f} | after / before, median of the per-round "
        f"ratios: **{result['ratio']:.2f}** ({paired}); of the medians: {result['after'] / result['before']:.2f}; "
        f"of the bests: {result['best_after'] / result['best_before']:.2f} |",
        "",
    ])


# -- timm (issue 26 item 3) ---------------------------------------------------------------------------------------
TIMM_MODELS = [
    "resnet18", "resnet50d", "seresnext26d_32x4d", "resnest14d", "dla34", "dpn68", "cspresnet50", "cspdarknet53",
    "darknet53", "densenet121", "efficientnet_b0", "mobilenetv3_small_100", "mobilenetv4_conv_small",
    "ghostnet_100", "rexnet_100", "regnety_002", "mixnet_s", "tinynet_e", "convnext_atto", "convnextv2_atto",
    "efficientformer_l1", "poolformer_s12", "mixer_s16_224", "fastvit_t8", "repvgg_a0", "inception_v3",
    "xception41", "selecsls42b", "fbnetc_100", "hardcorenas_a", "lcnet_050", "nfnet_l0",
    # refused on main 8266bf2 (issue 26's table)
    "vit_tiny_patch16_224", "deit_tiny_patch16_224", "coatnet_0_rw_224", "swin_tiny_patch4_window7_224",
    "res2net50_14w_8s", "edgenext_xx_small", "hrnet_w18_small", "mobilevit_xxs", "vgg11", "levit_128s",
    "resmlp_12_224", "tresnet_m",
]
TIMM_SHAPE = (3, 224, 224)
STUB = Path(__file__).resolve().parent / "torchvision_stub"


def timm_missing(stub: bool) -> str | None:
    """Why timm cannot be imported here (None: it can)."""
    env = _timm_env(stub)
    code = "import timm; print(timm.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode == 0:
        return None
    lines = out.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {out.returncode}"


def _timm_env(stub: bool) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT)] + ([str(STUB)] if stub else []) + [p for p in env.get("PYTHONPATH", "").split(":") if p]
    env["PYTHONPATH"] = ":".join(paths)
    return env


def timm_one(name: str, extra_rows: int) -> dict[str, Any]:
    """One timm model in this process: inspect, then the oracle on the chosen rows."""
    import warnings

    import timm
    import torch

    from rfcalc.errors import RfcalcError
    from rfcalc.inspection.api import trace_module
    from rfcalc.inspection.check import inspection_problems

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False).eval()
    with torch.no_grad():
        model(torch.zeros(1, *TIMM_SHAPE))  # torch's first-call costs are not inspect's
    entry: dict[str, Any] = {"model": name, "params_total": sum(p.numel() for p in model.parameters())}
    start = time.perf_counter()
    try:
        inspection = trace_module(model, TIMM_SHAPE)
    except RfcalcError as exc:
        entry.update(exit=2, seconds=time.perf_counter() - start, refusal=str(exc).splitlines()[0], rows=0)
        return entry
    entry["seconds"] = time.perf_counter() - start
    report = inspection.report
    entry.update(exit=0 if inspection.complete else 2, rows=len(report.rows))
    if not inspection.complete:
        error = inspection.error
        entry["refusal"] = f"{error.path}: {error.message}" if error is not None else "?"
        return entry
    out = report.output
    entry.update(rf=report.rf[0], jump=out.geo_out.jump[0], is_global=report.is_global, params=report.params)
    chosen = oracle_rows(report, extra_rows)
    start = time.perf_counter()
    problems = inspection_problems(model, TIMM_SHAPE, chosen, inspection=inspection)
    entry.update(oracle_rows=len(chosen), problems=problems, oracle_seconds=time.perf_counter() - start)
    return entry


def timm_zoo(models: list[str], extra_rows: int, budget: float, per_model: float, threads: int,
             stub: bool) -> list[dict[str, Any]]:
    """Each model in a fresh process with a hard limit; none starts once ``budget`` seconds are spent."""
    results: list[dict[str, Any]] = []
    began = time.perf_counter()
    env = _timm_env(stub)
    for name in models:
        spent = time.perf_counter() - began
        if spent >= budget:
            results.append({"model": name, "exit": "not run", "refusal": f"the budget of {budget:.0f} s was spent"})
            continue
        limit = min(per_model, max(1.0, budget - spent))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--timm-one", name, "--oracle-rows", str(extra_rows),
               "--threads", str(threads)]
        start = time.perf_counter()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit)
        except subprocess.TimeoutExpired:
            results.append({"model": name, "exit": "timeout", "refusal": f"stopped after {limit:.0f} s"})
        else:
            lines = out.stdout.strip().splitlines()
            if out.returncode == 0 and lines:
                results.append(json.loads(lines[-1]))
            else:
                tail = (out.stderr.strip().splitlines() or ["?"])[-1]
                results.append({"model": name, "exit": f"crash ({out.returncode})", "refusal": tail})
        results[-1]["wall"] = time.perf_counter() - start
        shown = {k: v for k, v in results[-1].items() if k != "problems"}
        print(json.dumps(shown | {"problems": len(results[-1].get("problems", []))}), file=sys.stderr, flush=True)
    return results


def _cell(text: str, width: int = 110) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def timm_section(results: list[dict[str, Any]], extra_rows: int, budget: float, per_model: float,
                 stub: bool, version: str) -> str:
    agree = [r for r in results if r.get("exit") == 0 and not r.get("problems")]
    exact = sum(1 for r in agree if "problems" in r)
    refused = sum(1 for r in results if r.get("exit") == 2)
    wrong = [r["model"] for r in results if r.get("problems")]
    lines = [
        "## rfcalc inspect on 44 timm architectures (issue 26)",
        "",
        f"`PYTHONPATH=. python bench/inspect_zoo.py --timm --oracle-rows {extra_rows} --budget {budget:.0f} "
        f"--per-model {per_model:.0f}{' --stub-torchvision' if stub else ''}` ({_machine_timm(version, stub)}). "
        "`timm.create_model(name, pretrained=False)`, 3x224x224, each model in a fresh process. *exit*: 0 "
        "complete, 2 refused (the refusal's first line); *oracle*: the gradient oracle (`rfcalc.inspection.check`) "
        "on the rows the script picks (window, `global`, parameters).",
        "",
        f"**{len(results)} models: {sum(1 for r in results if r.get('exit') == 0)} exit 0 ({exact} agree with the "
        f"oracle on every row checked), {refused} refused, "
        f"{len(wrong)} wrong{': ' + ', '.join(wrong) if wrong else ''}, "
        f"{sum(1 for r in results if r.get('exit') not in (0, 2))} not finished.**",
        "",
        "| model | exit | RF / jump | global | params | rows | inspect s | oracle | refusal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("exit") == 0:
            verdict = "-" if "problems" not in r else (
                f"exact ({r['oracle_rows']} rows, {r['oracle_seconds']:.0f} s)" if not r["problems"]
                else f"{len(r['problems'])} problems: {_cell(r['problems'][0], 80)}")
            lines.append(f"| {r['model']} | 0 | {r['rf']} / {r['jump']} | {'yes' if r['is_global'] else 'no'} | "
                         f"{r['params']:,} | {r['rows']} | {r['seconds']:.1f} | {verdict} | |")
        else:
            seconds = f"{r['seconds']:.1f}" if "seconds" in r else "-"
            lines.append(f"| {r['model']} | {r.get('exit')} | | | | {r.get('rows', '')} | {seconds} | | "
                         f"{_cell(str(r.get('refusal', '')))} |")
    return "\n".join(lines) + "\n"


def _machine_timm(version: str, stub: bool) -> str:
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    tv = "a stand-in torchvision (bench/torchvision_stub)" if stub else "torchvision"
    return (f"{platform.machine()}, {os.cpu_count()} cores (load average {load} when written), Python "
            f"{platform.python_version()}, torch {torch.__version__}, timm {version}, {tv}, CPU")


def run_timm(args: argparse.Namespace) -> None:
    from results_file import write_section

    missing = timm_missing(args.stub_torchvision)
    if missing is not None:
        hint = "add --stub-torchvision" if "torchvision" in missing else "install it as this script's docstring says"
        print(f"timm section skipped: timm is not importable here ({missing}); {hint}")
        return
    version = subprocess.run([sys.executable, "-c", "import timm; print(timm.__version__)"], capture_output=True,
                             text=True, env=_timm_env(args.stub_torchvision)).stdout.strip()
    models = args.timm_models.split(",") if args.timm_models else TIMM_MODELS
    results = timm_zoo(models, args.oracle_rows, args.budget, args.per_model, args.threads, args.stub_torchvision)
    text = timm_section(results, args.oracle_rows, args.budget, args.per_model, args.stub_torchvision, version)
    sys.stdout.write(text)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    if args.write:
        write_section("inspect-timm", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--oracle-rows", type=int, default=6, help="rows checked besides the fixed ones (-1: all)")
    parser.add_argument("--no-oracle", action="store_true")
    parser.add_argument("--before", type=Path, help="a checkout of rfcalc before this round (densenet121 timing)")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="replace this script's sections of bench/RESULTS.md")
    parser.add_argument("--timm", action="store_true", help="the timm section (issue 26) instead of torchvision's")
    parser.add_argument("--timm-models", default="", help="comma-separated timm names (default: the issue's 44)")
    parser.add_argument("--budget", type=float, default=3600.0, help="timm: total seconds; no model starts after")
    parser.add_argument("--per-model", type=float, default=300.0, help="timm: hard limit per model, seconds")
    parser.add_argument("--stub-torchvision", action="store_true", help="timm: a stand-in torchvision on the path")
    parser.add_argument("--out", type=Path, help="timm: write the results as JSON here (and markdown beside it)")
    parser.add_argument("--timm-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.timm_one:
        print(json.dumps(timm_one(args.timm_one, args.oracle_rows)))
        return
    if args.timm:
        run_timm(args)
        return
    from results_file import write_section

    if not args.speed_only:
        results = zoo(args.models.split(","), args.oracle_rows, not args.no_oracle)
        text = zoo_section(results, args.oracle_rows)
        sys.stdout.write(text)
        if args.write:
            write_section("inspect-zoo", text)
    if args.before is not None:
        result = speed(args.before.resolve(), args.rounds, args.repeats, args.threads)
        text = speed_section(result, args.before, args.rounds, args.repeats, args.threads)
        sys.stdout.write(text)
        if args.write:
            write_section("inspect-speed", text)


if __name__ == "__main__":
    main()
