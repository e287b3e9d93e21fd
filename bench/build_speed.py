"""How long `rfcalc.build_model` takes on a ResNet-50-sized spec (bench/resnet50.yaml, 25.6M parameters).

    python bench/build_speed.py [SPEC] [--repeat N]

Prints the time to import torch (paid once per process, not part of build_model), to load the spec
(torch-free), and to build the module (median and best of N, torch already imported). The target is
build_model under 1 s on a CPU.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(HERE / "resnet50.yaml"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    import torch  # noqa: F401

    import rfcalc
    from rfcalc.model.builder import build_model, count_parameters
    torch_s = time.perf_counter() - started

    started = time.perf_counter()
    spec = rfcalc.load_spec(args.spec)
    load_s = time.perf_counter() - started

    times, model = [], None
    for _ in range(args.repeat):
        started = time.perf_counter()
        model = build_model(spec)
        times.append(time.perf_counter() - started)
    assert model is not None and count_parameters(model) == spec.report.params

    print(f"spec            {spec.name}: {len(spec.report.rows)} rows, {spec.report.params:,} parameters")
    print(f"import torch    {torch_s:.2f} s (once per process)")
    print(f"load_spec       {load_s * 1000:.0f} ms")
    print(f"build_model     median {statistics.median(times):.3f} s, best {min(times):.3f} s over {args.repeat}"
          f" ({'under' if statistics.median(times) < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
