"""`rfcalc erf`: the effective receptive field (Luo et al., 2016) of the centre unit of the last feature map.

The gradient of that unit (summed over its channels) with respect to the input, its magnitude summed
over input channels and averaged over a batch of random inputs, is the ERF map. Its size is the side
of the smallest square around the unit's centre that holds 95% of the gradient mass, set against the
theoretical RF of the table (its part inside the image when it reaches past the image's edge). Needs torch
(and matplotlib for the picture).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
from torch import nn

from rfcalc.analysis.load import Spec
from rfcalc.errors import RfcalcError
from rfcalc.lines import wrap_parts, wrap_words
from rfcalc.model.builder import build_model
from rfcalc.model.plan import plan_model, row_modules
from rfcalc.table.report import Row


@dataclass(frozen=True)
class ErfResult:
    """The ERF of one unit: the mean gradient-magnitude map and how it compares with the theoretical RF."""

    spec_name: str
    row: Row
    unit: tuple[int, int]
    heat: list[list[float]]            # H x W, mean |d unit / d input|, summed over input channels
    centre: tuple[Fraction, Fraction]  # the unit's RF centre in input pixels
    side: Fraction                     # side of the square around the centre holding ``fraction`` of the mass
    fraction: float
    batch: int
    weights: str

    @property
    def rf(self) -> tuple[int, int]:
        return self.row.geo_out.rf

    def window(self, axis: int) -> tuple[Fraction, Fraction]:
        return self.row.geo_out.window(axis, self.unit[axis])


def last_feature_map(spec: Spec) -> Row:
    """The last row of the report whose output is a feature map."""
    rows = [row for row in spec.report.rows if row.is_feature_map]
    if not rows:
        raise RfcalcError(f"{spec.name} has no feature map to take an effective receptive field of")
    return rows[-1]


def effective_rf(spec: Spec, model: nn.Module | None = None, batch: int = 32, seed: int = 0,
                 fraction: float = 0.95, weights: str = "random weights") -> ErfResult:
    """The ERF of the centre unit of the last feature map of ``model`` (``build_model(spec)`` if None)."""
    model = build_model(spec) if model is None else model
    model.eval()
    row = last_feature_map(spec)
    module = dict(model.named_modules())[row_modules(plan_model(spec.nodes, spec.report))[row.name]]
    _, height, width = row.out_shape
    unit = ((height - 1) // 2, (width - 1) // 2)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *spec.input_shape), generator=generator).requires_grad_(True)
    kept: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: kept.append(out))
    try:
        model(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(kept[0][:, :, unit[0], unit[1]].sum(), x, allow_unused=True)
    heat = torch.zeros(spec.input_shape[1:]) if grad is None else grad.abs().sum(dim=1).mean(dim=0)
    geo = row.geo_out
    centre = (geo.start[0] + unit[0] * geo.jump[0], geo.start[1] + unit[1] * geo.jump[1])
    return ErfResult(spec.name, row, unit, heat.tolist(), centre, mass_square(heat.tolist(), centre, fraction),
                     fraction, batch, weights)


def mass_square(heat: list[list[float]], centre: tuple[Fraction, Fraction], fraction: float) -> Fraction:
    """Side of the smallest square centred on ``centre`` that holds ``fraction`` of the map's mass (0 if none)."""
    cells = sorted((max(abs(i - centre[0]), abs(j - centre[1])), value)
                   for i, line in enumerate(heat) for j, value in enumerate(line))
    total = sum(value for _, value in cells)
    if total <= 0:
        return Fraction(0)
    running = 0.0
    for distance, value in cells:
        running += value
        if running >= fraction * total * (1 - 1e-9):
            return 2 * distance + 1
    return 2 * cells[-1][0] + 1  # pragma: no cover - rounding only


def summary(result: ErfResult, input_hw: tuple[int, int], width: int = sys.maxsize) -> list[str]:
    """The numbers, as lines to print, each wrapped between words at ``width``. Only the part of an RF inside the
    image can hold gradient: when the theoretical RF is larger than the image (or reaches past an edge), the ERF
    is compared with the theoretical RF's part inside the image, and the lines say so."""
    row, (h, w) = result.row, result.rf
    inside = [_inside(lo, hi, n) for (lo, hi), n in zip((result.window(0), result.window(1)), input_hw)]
    half = (result.side - 1) / 2
    effective = [_inside(c - half, c + half, n) for c, n in zip(result.centre, input_hw)]
    side, cut = _num(result.side), effective != [result.side] * 2
    head = [f"effective RF of '{row.name}' unit {result.unit} of {row.out_shape[1]}x{row.out_shape[2]}",
            f"over {result.batch} random inputs", result.weights]
    lines = [f"  theoretical RF  {h}x{w} around ({_num(result.centre[0])}, {_num(result.centre[1])}); "
             f"{_num(inside[0])}x{_num(inside[1])} of it inside the {input_hw[0]}x{input_hw[1]} input",
             f"  effective RF    {side}x{side}: the square holding {result.fraction:.0%} of the gradient mass"
             + (f"; {_num(effective[0])}x{_num(effective[1])} of it inside the input" if cut and result.side else "")]
    if not result.side:
        lines.append("  ratio           none: no gradient reaches the input")
    elif inside == [h, w]:
        lines.append(f"  ratio           {float(max(effective)) / max(h, w):.0%} of the theoretical RF's side")
    else:
        share = float(max(effective)) / float(max(inside))
        lines.append(f"  ratio           {share:.0%} of the side of the theoretical RF's part inside the input "
                     f"({_num(max(effective))} of {_num(max(inside))} pixels; the rest of the theoretical RF lies "
                     f"outside the image, where no gradient can be)")
    return ["\n".join(wrap_parts(head, width)), *(wrap_words(line, width, indent=" " * 18) for line in lines)]


def _inside(lo: Fraction, hi: Fraction, n: int) -> Fraction:
    """How many of the input pixels 0 … n-1 lie between ``lo`` and ``hi`` (inclusive)."""
    return max(Fraction(0), min(hi, Fraction(n - 1)) - max(lo, Fraction(0)) + 1)


def write_erf_plot(result: ErfResult, path: str | Path) -> Path:
    """The ERF heatmap with the theoretical RF's box and the 95% square, and the mass profiles along h and w."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    heat = torch.tensor(result.heat)
    peak = float(heat.max()) or 1.0
    height, width = heat.shape
    fig, (image_ax, profile_ax) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [1.1, 1]})
    (h_lo, h_hi), (w_lo, w_hi) = result.window(0), result.window(1)
    image_ax.set_facecolor("0.85")
    shown = image_ax.imshow((heat / peak).numpy(), cmap="magma", origin="upper",
                            extent=(-0.5, width - 0.5, height - 0.5, -0.5),
                            vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(shown, ax=image_ax, fraction=0.046, pad=0.04, label="mean |∂unit/∂input| (max = 1)")
    image_ax.add_patch(Rectangle((float(w_lo) - 0.5, float(h_lo) - 0.5), float(w_hi - w_lo + 1),
                                 float(h_hi - h_lo + 1), fill=False, edgecolor="tab:cyan", linewidth=2,
                                 label=f"theoretical RF {_pair(result.rf)}"))
    if result.side:
        half = float(result.side) / 2
        cy, cx = float(result.centre[0]), float(result.centre[1])
        image_ax.add_patch(Rectangle((cx - half, cy - half), 2 * half, 2 * half, fill=False, edgecolor="lime",
                                     linestyle="--", linewidth=1.5,
                                     label=f"{result.fraction:.0%} of the mass: {_num(result.side)}"))
    image_ax.plot([float(result.centre[1])], [float(result.centre[0])], marker="+", color="tab:cyan", markersize=10)
    image_ax.set_xlim(min(-0.5, float(w_lo) - 1.5), max(width - 0.5, float(w_hi) + 1.5))
    image_ax.set_ylim(max(height - 0.5, float(h_hi) + 1.5), min(-0.5, float(h_lo) - 1.5))
    image_ax.set_xlabel("input column (w)")
    image_ax.set_ylabel("input row (h)")
    image_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize="small", frameon=False)
    image_ax.set_title(f"ERF of '{result.row.name}' unit {result.unit}", fontsize="medium")

    total = float(heat.sum()) or 1.0
    for axis, (lo, hi, color, label) in enumerate(((h_lo, h_hi, "tab:blue", "rows (h)"),
                                                  (w_lo, w_hi, "tab:orange", "columns (w)"))):
        profile = heat.sum(dim=1 - axis) / total
        profile_ax.plot(range(len(profile)), profile.numpy(), color=color, marker=".", label=f"mass along {label}")
        for edge in (lo, hi):
            profile_ax.axvline(float(edge), color=color, linestyle=":", linewidth=1)
    profile_ax.set_xlabel("input pixel (dotted: theoretical RF edges)")
    profile_ax.set_ylabel("share of the gradient mass")
    profile_ax.set_ylim(bottom=0)
    profile_ax.grid(True, alpha=0.3)
    profile_ax.legend(fontsize="small")
    profile_ax.set_title(f"{result.spec_name}: {result.batch} random inputs, {result.weights}", fontsize="medium")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(value: Fraction) -> str:
    return str(int(value)) if value.denominator == 1 else f"{float(value):g}"


def _pair(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
