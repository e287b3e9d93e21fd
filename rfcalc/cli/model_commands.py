"""The `export` and `erf` commands. Importing this module imports no torch; the command bodies do."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rfcalc.cli.common import console, guarded, require_extra
from rfcalc.cli.outputs import IMAGE, PYTHON, output_file, writing


def register(app: typer.Typer) -> None:
    """Add `export` and `erf` to the command line."""
    app.command("export")(export)
    app.command("erf")(erf)


@guarded
def export(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE.py", help="Write the source here "
                                                                         "(default: print it).")] = None,
    class_name: Annotated[str | None, typer.Option("--class-name", metavar="NAME", help="The model class's name "
                                                                            "(default: the spec's name in "
                                                                            "CamelCase).")] = None,
) -> None:
    """Standalone, readable PyTorch source of the spec's model (no rfcalc needed to run it).

    Exit 0 when it is printed or written, 2 when the spec or --class-name is invalid or --output cannot be written.
    """
    from rfcalc.analysis.load import load_spec
    from rfcalc.model.export import export_source

    if output is not None:
        output_file("--output", output, PYTHON)
    source = export_source(load_spec(spec), class_name)
    if output is None:
        typer.echo(source, nl=False)
        return
    with writing("--output", output):
        output.write_text(source, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


@guarded
def erf(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file (YAML).")],
    weights: Annotated[Path | None, typer.Option(
        "--weights", "-w", metavar="FILE.pt",
        help="A checkpoint written by `rfcalc train` or a bare state_dict (default: random weights).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE.png",
                                                 help="Where to draw the heatmap.")] = Path("erf.png"),
    batch: Annotated[int, typer.Option(min=1, metavar="N", help="Random inputs to average the gradient over.")] = 32,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the random inputs and weights.")] = 0,
) -> None:
    """The effective receptive field of the centre unit of the last feature map, against the theoretical RF.

    Exit 0 when the heatmap is written, 2 when the spec or --weights is invalid, --output cannot be written or
    torch / matplotlib is missing.
    """
    output_file("--output", output, IMAGE)
    require_extra("torch", "torch")
    require_extra("matplotlib", "plot")
    import torch

    from rfcalc.analysis.load import load_spec
    from rfcalc.model.builder import build_model
    from rfcalc.model.erf import effective_rf, summary, write_erf_plot
    from rfcalc.model.weights import load_weights, read_checkpoint

    loaded = load_spec(spec)
    torch.manual_seed(seed)
    model = build_model(loaded)
    if weights is not None:
        load_weights(model, read_checkpoint(weights), source=weights, spec_name=loaded.name)
    result = effective_rf(loaded, model, batch=batch, seed=seed,
                          weights="random weights" if weights is None else f"weights from {weights.name}")
    _, height, width = loaded.input_shape
    from rfcalc.lines import line_width

    for line in summary(result, (height, width), line_width(console())):
        typer.echo(line)
    with writing("--output", output):
        write_erf_plot(result, output)
    typer.echo(f"wrote {output}", err=True)
