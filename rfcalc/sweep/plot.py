"""The sweep's picture: test accuracy vs params (or MACs) of every trained trial, the Pareto front as a step
line, the best trial starred, the rule's limit as a vertical line, and the rejected candidates as ticks
along the bottom (they were never trained). matplotlib's object API, imported when drawn."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rfcalc.extras import missing
from rfcalc.sweep.outcome import Outcome
from rfcalc.sweep.results import Results


def limit_of(rules: dict[str, Any] | None, second: str) -> float | None:
    """The upper bound of the params / macs rule (lt or le), if the rules have one."""
    from rfcalc.quantities import parse_number

    bound = (rules or {}).get(second)
    if isinstance(bound, dict):
        for op in ("lt", "le"):
            if bound.get(op) is not None:
                return float(parse_number(bound[op]))
    return None


def write_plot(results: Results, path: Path, limit: float | None = None) -> Path:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise missing("matplotlib", "train", "the sweep's plot") from None

    second = results.second
    figure = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()

    def xy(outcome: Outcome) -> tuple[list[float], list[float]]:
        rows = [r for r in results.rows if r.outcome is outcome and r.accuracy is not None and r.cost(second)]
        return [float(r.cost(second) or 0) for r in rows], [100 * float(r.accuracy or 0) for r in rows]

    x, y = xy(Outcome.complete)
    ax.scatter(x, y, color="tab:blue", label=f"complete ({len(x)})", zorder=3)
    px, py = xy(Outcome.pruned)
    if px:
        ax.scatter(px, py, color="tab:gray", marker="x", label=f"pruned ({len(px)}, accuracy when stopped)", zorder=2)
    front = sorted((float(r.cost(second) or 0), 100 * float(r.accuracy or 0)) for r in results.rows if r.front)
    if front:
        right = max([p[0] for p in front] + x + px)
        steps = front + [(right, front[-1][1])] if right > front[-1][0] else front
        ax.step([p[0] for p in steps], [p[1] for p in steps], where="post", color="tab:red", linewidth=1.2,
                zorder=2)
        ax.scatter([p[0] for p in front], [p[1] for p in front], s=150, facecolors="none", edgecolors="tab:red",
                   linewidths=1.5, label=f"Pareto front ({len(front)})", zorder=3)
    best = results.best
    if best is not None:
        ax.scatter([float(best.cost(second) or 0)], [100 * float(best.accuracy or 0)], marker="*", s=260, color="gold",
                   edgecolor="black", label=f"best: trial {best.number}", zorder=4)
        ax.annotate(f"{best.number}", (float(best.cost(second) or 0), 100 * float(best.accuracy or 0)),
                    textcoords="offset points", xytext=(8, 6))
    rejected = [float(r.cost(second) or 0) for r in results.rows if r.outcome is Outcome.rejected and r.cost(second)]
    if rejected:
        ax.plot(rejected, [0.0] * len(rejected), linestyle="none", marker="|", markersize=14, color="tab:orange",
                transform=ax.get_xaxis_transform(), clip_on=False,
                label=f"rejected by the rules ({len(rejected)}, never trained)")
    if limit is not None:
        ax.axvline(limit, color="tab:orange", linestyle="--", linewidth=1, label=f"{second} limit {limit:,.0f}")
    ax.set_xlabel(second if second == "params" else "MACs")
    ax.set_ylabel("best test accuracy (%)")
    ax.set_title(f"sweep {results.study}: accuracy vs {second}")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(_thousands())
    ax.legend(loc="best", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k")
