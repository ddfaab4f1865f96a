"""The report's plots, drawn with matplotlib and embedded as inline SVG.

Each `plot_*` function takes a `Run` and returns an SVG string, or None when the run
has nothing to show for that plot (a benchmark has no training curves). matplotlib is
the `report` extra; it is imported on first use.

>>> pareto_front([(1.0, 0.90), (2.0, 0.95), (3.0, 0.93)])
[0, 1]
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from jiasu.core.extras import require
from jiasu.hardware.peak import Peak
from jiasu.measure.stats import speedup_words
from jiasu.report.model import Entry, Run

BASELINE = "#8a8f98"
FASTER = "#2f6db5"
SLOWER = "#c8414b"
BUDGET = "#c8414b"
PALETTE = ("#2f6db5", "#e38b29", "#3a9b6b", "#8057b5", "#c8414b", "#2aa0b5", "#b5892a")
INK = "#22262e"
GRID = "#e3e6eb"

_salt = itertools.count()


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, value) that no other point beats on both, by cost.

    A point is on the front when every cheaper-or-equal point has a lower value.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _mpl() -> Any:
    matplotlib = require("matplotlib", extra="report", purpose="the HTML report's plots")
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "path",  # text as outlines: looks the same in every browser
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.edgecolor": "#b9bec7",
            "axes.labelcolor": INK,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": GRID,
            "grid.linewidth": 0.8,
            "xtick.color": "#4a505b",
            "ytick.color": "#4a505b",
            "legend.frameon": False,
        }
    )
    from matplotlib.figure import Figure

    return Figure


def _figure(width_in: float, height_in: float) -> Any:
    figure_cls = _mpl()
    return figure_cls(figsize=(width_in, height_in), dpi=100, layout="constrained")


def _svg(fig: Any) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = f"jiasu-{next(_salt)}"  # unique ids per page
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _is_bad(entry: Entry) -> bool:
    return entry.verdict in ("rejected", "failed", "over budget")


def _colour(entry: Entry, run: Run) -> str:
    """The same in every plot: grey baseline, red if slower or rejected, else blue."""
    if run.is_baseline(entry):
        return BASELINE
    if _is_bad(entry) or (entry.speedup is not None and entry.speedup < 1):
        return SLOWER
    return FASTER


def _line_colour(entry: Entry, run: Run) -> str:
    """Curves need one colour each: grey baseline, then the palette in entry order."""
    if entry.name == run.baseline:
        return BASELINE
    others = [e.name for e in run.entries if e.name != run.baseline]
    return PALETTE[others.index(entry.name) % len(PALETTE)]


def _tick(entry: Entry) -> str:
    return f"{entry.name} ({entry.verdict})" if _is_bad(entry) else entry.name


def _height(rows: int) -> float:
    return max(2.6, 0.9 + 0.42 * rows)


def plot_speedup(run: Run) -> str | None:
    """Horizontal bars: speedup over the baseline timed alike, interval whiskers, 1× line."""
    entries = [e for e in run.entries if e.speedup is not None]
    if len(entries) < 2:
        return None
    fig = _figure(6.4, _height(len(entries)))
    ax = fig.add_subplot()
    names = [_tick(e) for e in entries][::-1]
    values = [e.speedup or 0.0 for e in entries][::-1]
    colours = [_colour(e, run) for e in entries][::-1]
    ax.barh(names, values, color=colours, height=0.6)
    for i, e in enumerate(entries[::-1]):
        if e.speedup_interval is not None:
            low, high = e.speedup_interval.low, e.speedup_interval.high
            ax.errorbar(
                e.speedup,
                i,
                xerr=[[max(0.0, (e.speedup or 0) - low)], [max(0.0, high - (e.speedup or 0))]],
                fmt="none",
                ecolor=INK,
                capsize=3,
                lw=1,
            )
        ax.annotate(
            "baseline" if run.is_baseline(e) else speedup_words(e.speedup or 0.0),
            (e.speedup or 0, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=8,
            color=INK,
        )
    ax.axvline(1.0, color=INK, lw=1, ls="--")
    ax.set_xlim(0, max(values) * 1.22)
    ax.set_xlabel(f"{run.baseline}'s time / this time (timed alike) — higher is better")
    ax.grid(axis="y", visible=False)
    ax.set_title("Speedup")
    return _svg(fig)


def plot_latency(run: Run) -> str | None:
    """Latency distribution per entry: box plots of the repeats, or p50–p99 ranges."""
    entries = [e for e in run.entries if e.latency_ms or e.latency_ms_p50 is not None]
    if not entries:
        return None
    fig = _figure(6.4, _height(len(entries)))
    ax = fig.add_subplot()
    positions = list(range(len(entries)))[::-1]
    for pos, e in zip(positions, entries, strict=True):
        colour = _colour(e, run)
        if len(e.latency_ms) >= 2:
            ax.boxplot(
                [list(e.latency_ms)],
                positions=[pos],
                orientation="horizontal",
                widths=0.5,
                whis=(1, 99),
                patch_artist=True,
                boxprops={"facecolor": colour, "alpha": 0.35, "edgecolor": colour},
                medianprops={"color": colour, "lw": 2},
                whiskerprops={"color": colour},
                capprops={"color": colour},
                flierprops={"marker": ".", "markersize": 3, "markeredgecolor": colour},
            )
        else:
            p50 = e.latency_ms_p50 if e.latency_ms_p50 is not None else e.latency_ms[0]
            p99 = e.latency_ms_p99 if e.latency_ms_p99 is not None else p50
            ax.hlines(pos, p50, p99, color=colour, lw=2)
            ax.plot([p50], [pos], "o", color=colour)
            ax.plot([p99], [pos], "|", color=colour, markersize=10)
    ax.set_yticks(positions, [_tick(e) for e in entries])
    values = [v for e in entries for v in (e.latency_ms or (e.latency_ms_p50 or 0.0,))]
    if values and min(values) > 0 and max(values) / min(values) > 30:
        ax.set_xscale("log")
    ax.set_xlabel("ms per call — lower is better")
    ax.grid(axis="y", visible=False)
    ax.set_title("Latency distribution")
    return _svg(fig)


def _cost(run: Run) -> tuple[str, Callable[[Entry], float | None]]:
    if any(e.latency_ms_p50 is not None for e in run.entries):
        return "latency p50, ms", lambda e: e.latency_ms_p50
    return "training time, s", lambda e: e.train_seconds


def plot_accuracy_cost(run: Run) -> str | None:
    """Accuracy against latency (or training time) with the Pareto front and budget line."""
    label, cost = _cost(run)
    entries = [e for e in run.entries if e.accuracy is not None and cost(e) is not None]
    if not entries:
        return None
    points = [(cost(e) or 0.0, (e.accuracy or 0.0) * 100) for e in entries]
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    front = pareto_front(points)
    xs = [x for x, _ in points]
    right = max(xs) * 1.25
    fx = [points[i][0] for i in front] + [right]  # the front holds on to the right edge
    fy = [points[i][1] for i in front] + [points[front[-1]][1]]
    ax.step(fx, fy, where="post", color=FASTER, lw=1.2, alpha=0.6, label="Pareto front")
    for i, (e, (x, y)) in enumerate(zip(entries, points, strict=True)):
        colour = _colour(e, run)
        marker = "*" if e.name == run.chosen else "o"
        ax.plot([x], [y], marker, color=colour, markersize=11 if marker == "*" else 7)
        lift = 5 if i % 2 == 0 else -12  # alternate above and below: near points stay legible
        ax.annotate(e.name, (x, y), xytext=(6, lift), textcoords="offset points", fontsize=8)
    base = run.baseline_entry
    if run.accuracy_budget_points is not None and base is not None and base.accuracy is not None:
        line = base.accuracy * 100 - run.accuracy_budget_points
        ax.axhline(
            line, color=BUDGET, ls="--", lw=1, label=f"budget: −{run.accuracy_budget_points:g} pts"
        )
    ys = [y for _, y in points] + ([line] if base and run.accuracy_budget_points else [])
    pad = max(0.3, (max(ys) - min(ys)) * 0.25)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xlim(0, right)
    ax.set_xlabel(f"{label} — lower is better")
    ax.set_ylabel("test accuracy, %")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Accuracy against cost")
    return _svg(fig)


def plot_curves(run: Run) -> str | None:
    """Training curves: accuracy after each epoch against wall time, per entry."""
    entries = [e for e in run.entries if any(p.accuracy is not None for p in e.curve)]
    if not entries:
        return None
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    for e in entries:
        colour = _line_colour(e, run)
        pts = [(p.wall_s, p.accuracy * 100) for p in e.curve if p.accuracy is not None]
        ax.plot(*zip(*pts, strict=True), "o-", color=colour, lw=1.8, markersize=5, label=e.name)
        if e.accuracy is not None:
            ax.plot([pts[-1][0]], [e.accuracy * 100], "*", color=colour, markersize=12)
    walls = [p.wall_s for e in entries for p in e.curve]
    ys = [v for e in entries for v in _curve_values(e)]
    pad = max(0.2, (max(ys) - min(ys)) * 0.15)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xlim(0, max(walls) * 1.08)
    ax.set_xlabel("wall time, s (training + validation)")
    ax.set_ylabel("accuracy, %")
    ax.plot([], [], "o", color=BASELINE, label="validation, per epoch")
    ax.plot([], [], "*", color=BASELINE, markersize=10, label="test, at the end")
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Training curves")
    return _svg(fig)


def _curve_values(entry: Entry) -> list[float]:
    values = [p.accuracy * 100 for p in entry.curve if p.accuracy is not None]
    return values + ([entry.accuracy * 100] if entry.accuracy is not None else [])


def plot_peak(run: Run, peak: Peak | None) -> str | None:
    """Achieved FLOP rate as a share of the measured peak (log scale, 100% = peak)."""
    rows: list[tuple[Entry, float]] = []
    for entry in run.entries:
        fraction = entry.peak_fraction(peak)
        if fraction is not None and fraction > 0:
            rows.append((entry, fraction))
    if not rows:
        return None
    fig = _figure(6.4, _height(len(rows)))
    ax = fig.add_subplot()
    names = [_tick(e) for e, _ in rows][::-1]
    shares = [f * 100 for _, f in rows][::-1]
    colours = [_colour(e, run) for e, _ in rows][::-1]
    ax.barh(names, shares, color=colours, height=0.6)
    for i, share in enumerate(shares):
        ax.annotate(
            f"{share:.2g}%",
            (share, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.set_xlim(min(min(shares) / 3, 0.1), 160)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.axvline(100, color=INK, lw=1.2)
    ax.text(100, len(rows) - 0.45, "peak ", ha="right", va="center", fontsize=8, color=INK)
    ax.set_xlabel("achieved FLOP/s, % of measured peak (log scale)")
    ax.grid(axis="y", visible=False)
    ax.set_title("Distance to the limit")
    return _svg(fig)


PLOTS: tuple[tuple[str, str], ...] = (
    ("speedup", "Speedup per technique or backend"),
    ("latency", "Latency distributions"),
    ("accuracy", "Accuracy against cost"),
    ("curves", "Training curves"),
    ("peak", "Distance to the limit"),
)


def run_plots(run: Run, peak: Peak | None) -> dict[str, str]:
    """Every plot this run can show, by name (keys from `PLOTS`)."""
    drawn = {
        "speedup": plot_speedup(run),
        "latency": plot_latency(run),
        "accuracy": plot_accuracy_cost(run),
        "curves": plot_curves(run),
        "peak": plot_peak(run, peak),
    }
    return {name: svg for name, svg in drawn.items() if svg is not None}
