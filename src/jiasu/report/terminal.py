"""Render a `Report` as rich tables: speedups and accuracy deltas at a glance.

Only the columns some entry fills are shown; anything slower than its baseline, over
the accuracy budget, rejected or failed is red and says so.

>>> from rich.console import Console
>>> from jiasu.report.model import Entry, Report, Run
>>> run = Run("benchmark", "t", "a", (Entry("a", speedup=1.0), Entry("b", speedup=0.5)))
>>> Console(width=100).print(*render_report(Report((run,))))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from jiasu.hardware.peak import Peak, describe_peak, format_age, peak_age_s, peak_warnings
from jiasu.measure.stats import RATIO_CONFIDENCE, speedup_words
from jiasu.report.model import Entry, Report, Run

BAD_VERDICTS = frozenset({"rejected", "failed", "over budget"})


def format_rate(value: float, unit: str) -> str:
    """A rate with an SI prefix: format_rate(6.8e8, "FLOP/s") == "680 MFLOP/s"."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def speedup_text(entry: Entry, run: Run) -> str:
    """ "1.27× faster (1.20–1.34)", "baseline" or "1.25× slower" (this time / the baseline's)."""
    if run.is_baseline(entry):
        return "baseline"
    if entry.speedup is None:
        return "—"
    interval = entry.speedup_interval
    return speedup_words(entry.speedup, (interval.low, interval.high) if interval else None)


TIMED = {"isolated": "alone", "blocks": "blocks", "screening": "screened", "interleaved": "mixed"}


def timed_text(entry: Entry) -> str:
    """How the entry was timed (optimize: alone, in blocks, screened, mixed)."""
    timed = entry.details.get("timed")
    return TIMED.get(str(timed), str(timed)) if timed else "—"


def delta_text(entry: Entry) -> str:
    if entry.accuracy_delta_points is None:
        return "—"
    text = f"{entry.accuracy_delta_points:+.2f}"
    if entry.accuracy_delta_interval is not None:
        i = entry.accuracy_delta_interval
        text += f" [{i.low:+.2f}, {i.high:+.2f}]"
    return text


METRIC_NAMES = {"mse": "MSE", "mae": "MAE", "agreement": "agreement"}


def metric_text(entry: Entry) -> str:
    """The verification's metric where it is not accuracy, with its change against the
    baseline: "MSE 0.0247 (+0.0043 [+3.3e-05, +0.0086])", "agreement 99.60% (−0.40 [−0.80,
    −0.10] points)" (top-1), "agreement 0.999962" (cosine similarity)."""
    if entry.task_metric is None or entry.metric_value is None:
        return "—"
    name = METRIC_NAMES.get(entry.task_metric, entry.task_metric)
    delta, i = entry.metric_delta, entry.metric_delta_interval
    if entry.task_metric != "agreement":
        change = "" if delta is None else f" ({delta:+.2g}"
        if change and i is not None:
            change += f" [{i.low:+.2g}, {i.high:+.2g}]"
        return f"{name} {entry.metric_value:.4g}{change}{')' if change else ''}"
    if entry.top1_agreement is None:  # cosine similarity
        return f"{name} {entry.metric_value:.6f}"
    change = "" if delta is None else f" ({delta * 100:+.2f}"
    if change and i is not None:
        change += f" [{i.low * 100:+.2f}, {i.high * 100:+.2f}]"
    return f"{name} {entry.metric_value:.2%}{change + ' points)' if change else ''}"


def time_text(entry: Entry) -> str:
    if entry.latency_ms_p50 is not None:
        p99 = f" / {entry.latency_ms_p99:.3g}" if entry.latency_ms_p99 is not None else ""
        return f"{entry.latency_ms_p50:.3g}{p99}"
    return "—"


def peak_text(entry: Entry, peak: Peak | None) -> str:
    fraction = entry.peak_fraction(peak)
    achieved = entry.achieved_flops_per_s
    if achieved is None:
        return "—"
    if fraction is None:
        return format_rate(achieved, "FLOP/s")
    return f"{format_rate(achieved, 'FLOP/s')} = {fraction * 100:.2g}%"


def _opt(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


PEAK_COLUMN = "achieved / peak"

# (header, cell, justify): a column is shown when any entry has a value in it.
Column = tuple[str, Callable[[Entry, Run, Peak | None], str], str]
COLUMNS: tuple[Column, ...] = (
    ("what", lambda e, r, p: e.label or "—", "left"),
    ("speedup", lambda e, r, p: speedup_text(e, r), "right"),
    ("against", lambda e, r, p: "—" if r.is_baseline(e) else e.versus or "—", "left"),
    ("timed", lambda e, r, p: timed_text(e), "left"),
    ("train s", lambda e, r, p: _opt(e.train_seconds, ".1f"), "right"),
    ("to target s", lambda e, r, p: _opt(e.time_to_target_s, ".1f"), "right"),
    ("latency ms p50 / p99", lambda e, r, p: time_text(e), "right"),
    ("samples/s", lambda e, r, p: _opt(e.samples_per_s, ",.0f"), "right"),
    ("accuracy", lambda e, r, p: _opt(e.accuracy, ".2%"), "right"),
    ("Δ acc. points", lambda e, r, p: delta_text(e), "right"),
    ("metric vs baseline", lambda e, r, p: metric_text(e), "right"),
    (PEAK_COLUMN, lambda e, r, p: peak_text(e, p), "right"),
    ("verdict", lambda e, r, p: e.verdict or "—", "left"),
)


def row_style(entry: Entry, run: Run) -> str:
    if run.is_baseline(entry):
        return "bold"
    if entry.verdict in BAD_VERDICTS or (entry.speedup is not None and entry.speedup < 1):
        return "red"
    if entry.speedup is not None and entry.speedup > 1:
        return "green"
    return ""


def peak_header(peak: Peak | None, now: datetime | None = None) -> str:
    """The share-of-peak column's title: which peak, how old and how noisy."""
    if peak is None:
        return PEAK_COLUMN
    spread = "noise unknown" if peak.fp32_spread is None else f"±{peak.fp32_spread:.0%}"
    return f"{PEAK_COLUMN} (measured {format_age(peak_age_s(peak, now))}, {spread})"


def run_table(run: Run, peak: Peak | None = None, now: datetime | None = None) -> Table:
    """One row per entry, baseline first; only columns with a value somewhere."""
    cells = {header: [cell(e, run, peak) for e in run.entries] for header, cell, _ in COLUMNS}
    shown = [(h, j) for h, _, j in COLUMNS if any(v != "—" for v in cells[h])]
    titles = {PEAK_COLUMN: peak_header(peak, now)}
    caption = speedup_caption(run)
    if run.accuracy_budget_points is not None:
        caption += f"; accuracy budget −{run.accuracy_budget_points:g} points"
    # Text, not str: a title from a results file is printed as written, never as markup
    table = Table(
        title=Text(run.title, style="table.title"),
        caption=Text(caption, style="table.caption"),
        caption_justify="left",
    )
    table.add_column("entry", no_wrap=True)
    for header, justify in shown:
        table.add_column(titles.get(header, header), justify=justify)  # type: ignore[arg-type]
    for index, entry in enumerate(run.entries):
        name = entry.name + (
            " ★" if entry.name == run.chosen and run.chosen != run.baseline else ""
        )
        row = [Text(name)] + [Text(cells[h][index]) for h, _ in shown]
        table.add_row(*row, style=row_style(entry, run))
    return table


def speedup_caption(run: Run) -> str:
    """How every speedup in `run` is computed, in one line."""
    base = (
        "the baseline named under 'against', timed the same way"
        if any(e.versus for e in run.entries)
        else run.baseline
    )
    text = f"speedup = {run.metric} of {base} / this {run.metric}; N× slower = this / baseline"
    if any(e.speedup_interval is not None for e in run.entries):
        text += f"; ({RATIO_CONFIDENCE:.0%} interval from paired rounds)"
    return text


def skipped_table(run: Run) -> Table | None:
    if not run.skipped:
        return None
    title = Text(f"{run.kind}: not used, and why", style="table.title")
    table = Table(title=title, title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("status")
    table.add_column("reason")
    for item in run.skipped:
        table.add_row(Text(item.name), Text(item.status), Text(item.reason), style="yellow")
    return table


def peak_line(report: Report) -> Text:
    peak = report.peak
    if peak is None:
        return Text(
            "distance to the limit: no measured peak; run `jiasu doctor --measure` once",
            style="dim",
        )
    now = report.created_at
    bf16 = peak.matmul_bf16_flops_per_s
    rounds = f", best of {peak.rounds} rounds" if peak.rounds else ""
    text = Text(
        f"share of peak = achieved FLOP/s / {describe_peak(peak, 'fp32', now)} "
        f"({peak.threads} threads{rounds}, {peak.measured_at or 'no date'}); "
        f"bf16 peak {'—' if bf16 is None else f'{bf16 / 1e9:,.0f}'} GFLOP/s, "
        f"memory {peak.memory_bytes_per_s / 1e9:,.1f} GB/s",
        style="dim",
    )
    for warning in peak_warnings(peak, now):
        text.append(f"\nwarning: {warning}", style="yellow")
    return text


def render_report(report: Report) -> list[RenderableType]:
    """Renderables to print in order: per run its table, notes and skipped items."""
    out: list[RenderableType] = []
    for run in report.runs:
        parts: list[RenderableType] = [run_table(run, report.peak, report.created_at)]
        parts.extend(Text(note, style="dim") for note in run.notes)
        skipped = skipped_table(run)
        if skipped is not None:
            parts.append(skipped)
        out.append(Group(*parts))
    out.append(peak_line(report))
    return out
