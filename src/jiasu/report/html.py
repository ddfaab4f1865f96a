"""Render a `Report` as one self-contained HTML page: inline CSS and inline SVG plots.

The page loads nothing from the network (no scripts, fonts or images from elsewhere),
so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from jiasu.hardware.peak import Peak, describe_peak, peak_warnings
from jiasu.measure.stats import RATIO_CONFIDENCE, speedup_bounds, speedup_words
from jiasu.report.model import Entry, Report, Run
from jiasu.report.plots import PLOTS, run_plots
from jiasu.report.terminal import (
    BAD_VERDICTS,
    PEAK_COLUMN,
    format_rate,
    metric_text,
    peak_header,
    speedup_caption,
    time_text,
    timed_text,
)

CSS = """
:root { --ink:#22262e; --muted:#5d6470; --line:#e3e6eb; --bg:#f6f7f9; --card:#fff;
  --good:#2f6db5; --bad:#c8414b; --warn:#b5892a; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  color:var(--ink); background:var(--bg); }
header { background:#1d2633; color:#fff; padding:22px 40px 18px; }
header h1 { margin:0; font-size:22px; font-weight:650; letter-spacing:.2px; }
header p { margin:4px 0 0; color:#c3cad5; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:24px 40px 48px; }
section.run { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:20px 24px; margin-bottom:24px; box-shadow:0 1px 2px rgba(20,30,50,.04); }
h2 { margin:0 0 2px; font-size:18px; }
h3 { margin:22px 0 8px; font-size:14px; text-transform:uppercase; letter-spacing:.6px;
  color:var(--muted); }
.source { color:var(--muted); font-size:12px; margin:0 0 14px; word-break:break-all; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin:12px 0 6px; }
.card { flex:1 1 170px; border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card .k { color:var(--muted); font-size:12px; }
.card .v { font-size:22px; font-weight:650; }
.card .v.good { color:var(--good); } .card .v.bad { color:var(--bad); }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:right;
  white-space:nowrap; }
th { color:var(--muted); font-weight:600; background:#fafbfc; }
th:first-child, td:first-child, td.l, th.l { text-align:left; }
td.wrap { white-space:normal; text-align:left; min-width:140px; }
td small, th small { display:block; font-size:11px; color:var(--muted); font-weight:400; }
tr.bad td small { color:inherit; opacity:.8; }
tr.baseline td { font-weight:600; }
tr.bad td { color:var(--bad); }
tr.good td.speedup { color:var(--good); font-weight:600; }
ul.reasons { margin:6px 0 0; padding-left:18px; color:var(--muted); font-size:13px; }
.tag { display:inline-block; padding:0 7px; border-radius:9px; font-size:11px;
  background:#eef1f5; color:var(--muted); }
.tag.bad { background:#fbe9ea; color:var(--bad); }
.tag.good { background:#e8f0fa; color:var(--good); }
.plots { display:grid; grid-template-columns:repeat(auto-fit,minmax(460px,1fr)); gap:16px;
  align-items:start; margin-top:16px; }
.scroll { overflow-x:auto; }
figure.plot { margin:0; border:1px solid var(--line); border-radius:8px; padding:8px; }
figure.plot svg { width:100%; height:auto; display:block; }
figure.plot figcaption { color:var(--muted); font-size:12px; padding:4px 6px 0; }
.note { color:var(--muted); font-size:13px; margin:6px 0; }
dl.env { display:grid; grid-template-columns:max-content 1fr; gap:3px 18px; margin:0;
  font-size:13px; }
dl.env dt { color:var(--muted); } dl.env dd { margin:0; word-break:break-word; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:8px 0 30px; }
"""

CAPTIONS = {
    "speedup": "Bars: the baseline's time / this time, the baseline timed the same way "
    "(higher is better); whiskers: a 90% interval from paired rounds where the run had them; "
    "dashed line: 1×. Red bars are slower than the baseline.",
    "latency": "Per-call latency over the timed repeats (lower is better).",
    "accuracy": "Each point is one entry; the step line joins the ones no other beats on both "
    "cost and accuracy (the Pareto front); dashed red: the accuracy budget under the baseline.",
    "curves": "Accuracy after each epoch against wall time since the start of training; "
    "★ marks the final test accuracy.",
    "peak": "Achieved FLOP rate (FLOPs per sample counted by torch's FlopCounterMode × "
    "samples/s) as a share of the peak measured by `jiasu doctor --measure` (its age and "
    "noise are under Environment).",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cards(run: Run, peak: Peak | None, now: datetime | None) -> str:
    cards: list[tuple[str, str, str]] = []
    best = next((e for e in run.entries if e.name == run.chosen), None)
    if best is None or run.is_baseline(best):
        others = [e for e in run.entries if not run.is_baseline(e) and e.speedup is not None]
        best = max(others, key=lambda e: e.speedup or 0.0, default=None)
    if best is not None and best.speedup is not None:
        tone = "good" if best.speedup >= 1 else "bad"
        versus = f" vs {run.versus(best)}"
        cards.append((f"{best.name}{versus}", speedup_words(best.speedup), tone))
        if best.accuracy_delta_points is not None:
            tone = "bad" if best.verdict in BAD_VERDICTS else ""
            cards.append(("accuracy change", f"{best.accuracy_delta_points:+.2f} pts", tone))
        elif metric_text(best) != "—":
            tone = "bad" if best.verdict in BAD_VERDICTS else ""
            cards.append(("metric vs baseline", metric_text(best), tone))
        fraction = best.peak_fraction(peak)
        if fraction is not None and peak is not None:
            of = describe_peak(peak, best.precision, now)
            tone = "bad" if peak_warnings(peak, now) else ""
            cards.append((f"{best.name}: share of {of}", f"{fraction:.2%}", tone))
    cards.append(("entries compared", str(len(run.entries)), ""))
    if run.skipped:
        cards.append(("skipped or dropped", str(len(run.skipped)), ""))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{_e(k)}</div>'
            f'<div class="v {tone}">{_e(v)}</div></div>'
            for k, v, tone in cards
        )
        + "</div>"
    )


def _row_class(entry: Entry, run: Run) -> str:
    if run.is_baseline(entry):
        return "baseline"
    if entry.verdict in BAD_VERDICTS or (entry.speedup is not None and entry.speedup < 1):
        return "bad"
    return "good" if entry.speedup is not None and entry.speedup > 1 else ""


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


_CELL_CLASS = {"what": "wrap", "speedup": "speedup"}


def _speedup_cell(entry: Entry, run: Run) -> str:
    if run.is_baseline(entry):
        timed = timed_text(entry)
        return "baseline" + (f"<small>timed {_e(timed)}</small>" if timed != "—" else "")
    if entry.speedup is None:
        return "—"
    i = entry.speedup_interval
    bounds = speedup_bounds(entry.speedup, (i.low, i.high) if i else None)
    sub = ""
    if bounds is not None:
        sub = f"<small>{RATIO_CONFIDENCE:.0%} interval {bounds[0]:.2f}–{bounds[1]:.2f}</small>"
    if entry.versus:
        sub += f"<small>vs {_e(entry.versus)}</small>"
    return f"{_e(speedup_words(entry.speedup))}{sub}"


def _delta_cell(entry: Entry) -> str:
    if entry.accuracy_delta_points is None:
        return "—"
    i = entry.accuracy_delta_interval
    sub = f"<small>[{i.low:+.2f}, {i.high:+.2f}]</small>" if i is not None else ""
    return f"{entry.accuracy_delta_points:+.2f}{sub}"


def _agreement_cell(entry: Entry) -> str:
    parts = []
    if entry.top1_agreement is not None:
        parts.append(f"top-1 {entry.top1_agreement:.2%}")
    if entry.cosine_similarity is not None and entry.top1_agreement is None:
        parts.append(f"cos {entry.cosine_similarity:.6f}")
    if entry.max_abs_error is not None:
        parts.append(f"<small>max |err| {entry.max_abs_error:.2g}</small>")
    return "".join(parts) or "—"


def _peak_cell(entry: Entry, peak: Peak | None) -> str:
    achieved = entry.achieved_flops_per_s
    if achieved is None:
        return "—"
    fraction = entry.peak_fraction(peak)
    rate = _e(format_rate(achieved, "FLOP/s"))
    return rate if fraction is None else f"{fraction * 100:.2g}%<small>{rate}</small>"


def _entries_table(run: Run, peak: Peak | None, now: datetime | None) -> str:
    of_peak = "of peak"
    if peak is not None:
        of_peak += f"<small>{_e(peak_header(peak, now).removeprefix(PEAK_COLUMN).strip())}</small>"
    # (header, cell as safe HTML); a column shows when some entry has a value
    columns: list[tuple[str, Any]] = [
        ("what", lambda e: _e(e.label or "—")),
        ("speedup", lambda e: _speedup_cell(e, run)),
        ("train s", lambda e: _fmt(e.train_seconds, ".1f")),
        ("to target s", lambda e: _fmt(e.time_to_target_s, ".1f")),
        ("latency ms<small>p50 / p99</small>", lambda e: _e(time_text(e))),
        ("samples/s", lambda e: _fmt(e.samples_per_s, ",.0f")),
        ("accuracy", lambda e: _fmt(e.accuracy, ".2%")),
        ("Δ acc.<small>points</small>", _delta_cell),
        ("metric<small>vs baseline</small>", lambda e: _e(metric_text(e))),
        ("agreement", _agreement_cell),
        (of_peak, lambda e: _peak_cell(e, peak)),
    ]
    cells = {h: [fn(e) for e in run.entries] for h, fn in columns}
    shown = [h for h, _ in columns if any(v != "—" for v in cells[h])]
    head = "<th>entry</th>" + "".join(
        f'<th class="{"l" if h == "what" else ""}">{h}</th>' for h in shown
    )
    head += '<th class="l">verdict</th>'
    rows = []
    for i, entry in enumerate(run.entries):
        star = " ★" if entry.name == run.chosen and run.chosen != run.baseline else ""
        tags = [entry.verdict] if entry.verdict else []
        if entry.speedup is not None and entry.speedup < 1:
            tags.append("slower")
        tag = " ".join(
            f'<span class="tag {"bad" if t in BAD_VERDICTS or t == "slower" else "good"}">'
            f"{_e(t)}</span>"
            for t in tags
        )
        rows.append(
            f'<tr class="{_row_class(entry, run)}"><td>{_e(entry.name + star)}</td>'
            + "".join(f'<td class="{_CELL_CLASS.get(h, "")}">{cells[h][i]}</td>' for h in shown)
            + f'<td class="l">{tag}</td></tr>'
        )
    reasons = "".join(
        f"<li><b>{_e(e.name)}</b>: {_e(e.reason)}</li>" for e in run.entries if e.reason
    )
    body = "".join(rows)
    notes = f'<ul class="reasons">{reasons}</ul>' if reasons else ""
    return (
        f'<div class="scroll"><table class="entries"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{notes}"
    )


def _skipped_table(run: Run) -> str:
    if not run.skipped:
        return '<p class="note">Nothing was skipped or dropped.</p>'
    rows = "".join(
        f'<tr><td>{_e(s.name)}</td><td class="l"><span class="tag">{_e(s.status)}</span></td>'
        f'<td class="wrap">{_e(s.reason)}</td></tr>'
        for s in run.skipped
    )
    return (
        '<table class="skipped"><thead><tr><th>name</th><th class="l">status</th>'
        f'<th class="l">reason</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _plots(run: Run, peak: Peak | None) -> str:
    drawn = run_plots(run, peak)
    figures = [
        f'<figure class="plot" data-plot="{name}"><div class="svg">{drawn[name]}</div>'
        f"<figcaption><b>{_e(title)}.</b> {_e(CAPTIONS[name])}</figcaption></figure>"
        for name, title in PLOTS
        if name in drawn
    ]
    return f'<div class="plots">{"".join(figures)}</div>' if figures else ""


ENV_FIELDS = (
    ("cpu_model", "CPU"),
    ("cpu_features", "CPU features"),
    ("logical_cpus", "logical CPUs"),
    ("usable_cpus", "CPUs usable"),
    ("torch_threads", "torch threads"),
    ("device", "device"),
    ("cuda_device_name", "CUDA device"),
    ("torch", "torch"),
    ("python", "Python"),
    ("platform", "platform"),
    ("packages", "optional packages"),
    ("jiasu", "jiasu"),
    ("timestamp", "measured at"),
)


def _env_value(key: str, value: object) -> str:
    if key == "cpu_features" and isinstance(value, dict):
        return ", ".join(k for k, v in value.items() if v) or "none detected"
    if key == "packages" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v) or "none installed"
    return str(value)


def _environment(env: dict[str, Any], peak: Peak | None, now: datetime | None) -> str:
    items = [(label, _env_value(k, env[k])) for k, label in ENV_FIELDS if env.get(k) is not None]
    if peak is not None:
        bf16 = peak.matmul_bf16_flops_per_s
        items.append(
            (
                "measured peak",
                f"fp32 {peak.matmul_fp32_flops_per_s / 1e9:,.0f} GFLOP/s · bf16 "
                f"{'—' if bf16 is None else f'{bf16 / 1e9:,.0f}'} GFLOP/s · memory "
                f"{peak.memory_bytes_per_s / 1e9:,.1f} GB/s ({peak.threads} threads, "
                f"{peak.measured_at or 'no date'}; {describe_peak(peak, 'fp32', now)}"
                + (f", best of {peak.rounds} rounds)" if peak.rounds else ")"),
            )
        )
        items += [("warning", warning) for warning in peak_warnings(peak, now)]
    else:
        items.append(("measured peak", "not measured: run `jiasu doctor --measure` once"))
    if not items:
        return '<p class="note">No environment was recorded.</p>'
    return (
        '<dl class="env">'
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
        + "</dl>"
    )


def _run_section(run: Run, report: Report, index: int) -> str:
    peak, now = report.peak, report.created_at
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in run.notes)
    budget = (
        f"; accuracy budget −{run.accuracy_budget_points:g} points"
        if run.accuracy_budget_points is not None
        else ""
    )
    return (
        f'<section class="run" id="run-{index}" data-kind="{_e(run.kind)}">'
        f"<h2>{_e(run.title)}</h2>"
        f'<p class="source">{_e(run.kind)}{" · " + _e(run.source) if run.source else ""}</p>'
        f"{_cards(run, peak, now)}"
        f"<h3>Results</h3>{_entries_table(run, peak, now)}"
        f'<p class="note">{_e(speedup_caption(run))}{budget}.</p>'
        f"{notes}{_plots(run, peak)}"
        f"<h3>Skipped or dropped, and why</h3>{_skipped_table(run)}"
        f"<h3>Environment</h3>{_environment(run.environment, peak, now)}"
        "</section>"
    )


def render_html(report: Report) -> str:
    """The whole page as a string."""
    sections = "".join(_run_section(run, report, i) for i, run in enumerate(report.runs))
    if not sections:
        sections = '<section class="run"><p class="note">This report has no runs.</p></section>'
    kinds = ", ".join(sorted({r.kind for r in report.runs})) or "no runs"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(report.title)}</h1>"
        f"<p>{len(report.runs)} run(s): {_e(kinds)} · created {_e(report.created)}</p></header>"
        f"<main>{sections}</main>"
        "<footer>Made by jiasu. Every speedup was measured against a baseline in the same run."
        "</footer></body></html>\n"
    )
