"""Turn each command's result JSON into a report `Run`: small, tolerant adapters.

`from_demo`, `from_train`, `from_optimize` and `from_comparison` each read one kind of
result dict; `from_result` picks the adapter from the dict's shape. Fields a result
lacks stay empty rather than failing, so older or partial results still render.

>>> run = from_comparison({"baseline": "a", "results": {}})
>>> run.kind, run.entries
('benchmark', ())
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jiasu.core.errors import JiasuError
from jiasu.measure.stats import paired_ratio_interval, percentile
from jiasu.report.model import (
    REPORT_KIND,
    CurvePoint,
    Entry,
    Interval,
    Report,
    Run,
    Skipped,
)

DEFAULT_ACCURACY_BUDGET_POINTS = 0.5  # DESIGN.md: at most 0.5 points of accuracy lost


class ReportError(JiasuError):
    """A result file cannot be read or is not a jiasu result."""


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


# --- training-like results (demo, train) ---------------------------------------------
def _curve(history: object) -> tuple[CurvePoint, ...]:
    """Accuracy against cumulative wall time (training plus validation) per epoch."""
    points: list[CurvePoint] = []
    wall = 0.0
    for record in history if isinstance(history, list) else []:
        rec = _dict(record)
        wall += (_num(rec.get("train_seconds")) or 0.0) + (_num(rec.get("val_seconds")) or 0.0)
        accuracy = _num(rec.get("test_accuracy"))
        if accuracy is None:
            accuracy = _num(rec.get("val_accuracy"))
        points.append(
            CurvePoint(
                epoch=int(rec.get("epoch", len(points) + 1)),
                wall_s=wall,
                accuracy=accuracy,
                loss=_num(rec.get("train_loss")),
                samples_per_s=_num(rec.get("samples_per_s")),
                lr=_num(rec.get("lr")),
            )
        )
    return tuple(points)


def _epoch_seconds(side: Mapping[str, Any]) -> list[float]:
    history = side.get("history")
    seconds = [_num(_dict(r).get("train_seconds")) for r in history or []]
    return [s for s in seconds if s is not None and s > 0]


def _recipe_label(side: Mapping[str, Any]) -> str:
    recipe = side.get("recipe")
    if isinstance(recipe, str):
        return recipe
    names = [str(_dict(t).get("name", "")) for t in _dict(recipe).get("techniques", [])]
    return ", ".join(n for n in names if n) or "plain PyTorch"


def _side_entry(
    name: str,
    side: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    flops: float | None,
    budget: float | None,
) -> Entry:
    seconds = _num(side.get("train_seconds"))
    accuracy = _num(side.get("test_accuracy"))
    speedup = interval = delta = None
    verdict = "baseline" if base is None else None
    if base is not None:
        base_s = _num(base.get("train_seconds"))
        if base_s and seconds:
            speedup = base_s / seconds
        base_epochs, epochs = _epoch_seconds(base), _epoch_seconds(side)
        if len(base_epochs) == len(epochs) >= 2 and speedup:  # the epochs are the rounds
            low, high = paired_ratio_interval(base_epochs, epochs, statistic="total", point=speedup)
            interval = Interval(low, high)
        base_acc = _num(base.get("test_accuracy"))
        if accuracy is not None and base_acc is not None:
            delta = (accuracy - base_acc) * 100
            verdict = "accepted" if budget is None or delta >= -budget else "over budget"
    return Entry(
        name=name,
        label=_recipe_label(side),
        speedup=1.0 if base is None else speedup,
        speedup_interval=interval,
        train_seconds=seconds,
        time_to_target_s=_num(side.get("time_to_target_s")),
        samples_per_s=_num(side.get("samples_per_s")),
        accuracy=accuracy,
        accuracy_delta_points=0.0 if base is None and accuracy is not None else delta,
        verdict=verdict,
        precision="bf16" if "bf16" in json.dumps(side.get("recipe")) else "fp32",
        flops_per_sample=_num(side.get("flops_per_sample")) or flops,
        curve=_curve(side.get("history")),
        details={"epochs": side.get("epochs", side.get("epochs_run"))},
    )


def _skipped_from(items: object, status: str) -> list[Skipped]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping):
            name = str(item.get("name", "?"))
            reason = str(item.get("reason", "")) or "no reason given"
            out.append(Skipped(name, reason, item.get("status", status)))
        elif isinstance(item, str):
            out.append(Skipped(item, "no reason given", status))  # type: ignore[arg-type]
    return out


def _flops_for_model(data: Mapping[str, Any], *, training: bool) -> float | None:
    """FLOPs/sample from the result's `model`: a spec {"name", "kwargs"} or a registry name.

    The input is `input_shape` without the batch dimension (default MNIST's).
    """
    from jiasu.models import MODELS, ModelSpec
    from jiasu.report.flops import flops_per_sample

    spec = data.get("model")
    if isinstance(spec, str) and spec in MODELS:
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        return None
    from jiasu.data.mnist import INPUT_SHAPE  # the registry's models are MNIST models

    shape = list(data.get("input_shape") or INPUT_SHAPE)
    try:
        model = ModelSpec.from_dict(spec).build()
        return flops_per_sample(model, shape, training=training)
    except (JiasuError, RuntimeError, TypeError, ValueError):
        return None


def from_demo(
    data: Mapping[str, Any], *, flops_per_sample: float | None = None, source: str = ""
) -> Run:
    """A `jiasu demo` result (`DemoResult.to_dict()`): baseline and accelerated sides."""
    budget = _num(data.get("accuracy_budget_points")) or DEFAULT_ACCURACY_BUDGET_POINTS
    flops = (
        flops_per_sample
        or _num(data.get("flops_per_sample"))
        or _flops_for_model(data, training=True)
    )
    base = _dict(data.get("baseline"))
    fast = _dict(data.get("accelerated"))
    entries = [_side_entry("baseline", base, None, flops, budget)]
    if fast:
        entries.append(_side_entry("accelerated", fast, base, flops, budget))
    skipped = _skipped_from(base.get("techniques_skipped"), "skipped")
    skipped += _skipped_from(fast.get("techniques_skipped"), "skipped")
    notes = []
    if data.get("is_fallback"):
        notes.append(f"data: {data.get('data_source', 'fallback data')} (not MNIST)")
    elif data.get("data_source"):
        notes.append(f"data: {data['data_source']}")
    return Run(
        kind="demo",
        title="demo: the founding example, plain PyTorch and jiasu's way",
        baseline="baseline",
        entries=tuple(entries),
        chosen="accelerated" if fast else None,
        skipped=tuple(skipped),
        accuracy_budget_points=budget,
        metric="training time",
        source=source,
        environment=_dict(data.get("environment")),
        notes=tuple(notes),
    )


def _train_techniques(value: object) -> tuple[list[str], list[Skipped]]:
    """`techniques` as {"kept": [...], "dropped": [...]} or a list of {"name", "status"}."""
    if isinstance(value, Mapping):
        kept = [str(_dict(t).get("name", t)) for t in value.get("kept", [])]
        dropped = _skipped_from(value.get("dropped"), "dropped")
        dropped += _skipped_from(value.get("skipped"), "skipped")
        return kept, dropped
    kept, dropped = [], []
    for item in value if isinstance(value, list) else []:
        entry = _dict(item) if isinstance(item, Mapping) else {"name": str(item)}
        status = str(entry.get("status", "kept"))
        if status in ("kept", "applied", "used"):
            kept.append(str(entry.get("name", "?")))
        else:
            dropped += _skipped_from([entry], status)
    return kept, dropped


def from_train(
    data: Mapping[str, Any], *, flops_per_sample: float | None = None, source: str = ""
) -> Run:
    """A `jiasu train` result: recipe, techniques kept/dropped, times and accuracy.

    When the result holds a `baseline` side (same fields) the run compares the two;
    otherwise it has a single entry.
    """
    budget = _num(data.get("accuracy_budget_points"))
    flops = (
        flops_per_sample
        or _num(data.get("flops_per_sample"))
        or _flops_for_model(data, training=True)
    )
    kept, skipped = _train_techniques(data.get("techniques"))
    side = dict(_dict(data.get("accelerated")) or data)
    if kept and not _dict(side.get("recipe")).get("techniques"):
        side["recipe"] = {"techniques": [{"name": k} for k in kept]}
    base = _dict(data.get("baseline")) or None
    entries = []
    if base is not None:
        entries.append(_side_entry("baseline", base, None, flops, budget))
    name = str(_dict(data.get("recipe")).get("name") or data.get("recipe") or "train")
    name = "accelerated" if name == "baseline" else name
    entries.append(_side_entry(name, side, base, flops, budget))
    return Run(
        kind="train",
        title=f"train: recipe {name}",
        baseline="baseline" if base is not None else name,
        entries=tuple(entries),
        chosen=name,
        skipped=tuple(skipped),
        accuracy_budget_points=budget,
        metric="training time",
        source=source,
        environment=_dict(data.get("environment")),
        notes=tuple(_probe_note(_dict(p)) for p in data.get("probes") or [] if _dict(p)),
    )


def _probe_note(probe: Mapping[str, Any]) -> str:
    """A `--recipe auto` probe in one line: decision, what it rests on, and why (the reason
    carries the measured ratio, its interval and the rounds)."""
    verdict = "kept" if probe.get("kept") else "dropped"
    basis = probe.get("basis") or "measured"
    return f"auto probe {probe.get('name', '?')}: {verdict} ({basis}): {probe.get('reason', '')}"


# --- inference results (optimize) ------------------------------------------------------
def _latencies(candidate: Mapping[str, Any]) -> tuple[float, ...]:
    for key in ("latency_ms", "latencies_ms", "latency_ms_samples"):
        values = candidate.get(key)
        if isinstance(values, list):
            return tuple(float(v) for v in values if _num(v) is not None)
    return ()


def _delta_points(candidate: Mapping[str, Any]) -> tuple[float | None, Interval | None]:
    """Accuracy delta in points; `accuracy_delta` is a fraction like `accuracy`."""
    if _num(candidate.get("accuracy_delta_points")) is not None:
        interval = Interval.from_any(candidate.get("accuracy_delta_points_interval"))
        return _num(candidate["accuracy_delta_points"]), interval
    delta = _num(candidate.get("accuracy_delta"))
    raw = candidate.get("accuracy_delta_interval", candidate.get("accuracy_delta_ci"))
    interval = Interval.from_any(raw)
    if interval is not None:
        interval = Interval(interval.low * 100, interval.high * 100)
    return (None if delta is None else delta * 100), interval


SCREENED_SUFFIX = " (screened)"  # the baseline's entry as the screening timed it


def _versus_timing(c: Mapping[str, Any]) -> str | None:
    """How the baseline figure `c`'s speedup divides was timed (`speedup_versus`, else
    `c`'s own timing: a ratio is only meaningful against a baseline timed alike)."""
    versus = _dict(c.get("speedup_versus")).get("timing") or c.get("timing")
    # a finalist timed in blocks was compared with the baseline timed alone, in one run
    return {"blocks": "isolated"}.get(str(versus), str(versus)) if versus else None


def _speedup_against(
    c: Mapping[str, Any], baselines: Mapping[str | None, tuple[str, float | None]]
) -> tuple[float | None, Interval | None, str | None]:
    """(speedup, interval, baseline entry) for `c`, from the figures the report prints.

    The speedup is the baseline's p50 timed like `c` over `c`'s p50; where the report
    holds no baseline timed like `c` there is no honest ratio, and it is left out. An
    interval that does not contain the speedup is not an interval of it: left out too.
    """
    timing = _versus_timing(c)
    if timing not in baselines:
        return None, None, None
    name, base_p50 = baselines[timing]
    p50 = _num(c.get("latency_ms_p50"))
    speedup = base_p50 / p50 if base_p50 and p50 else None
    if speedup is None and base_p50 is None:
        speedup = _num(c.get("speedup"))  # no times at all: the report's own ratio
    interval = Interval.from_any(c.get("speedup_interval"))
    if speedup is None or interval is None or not interval.low <= speedup <= interval.high:
        interval = None
    return speedup, interval, name


def _metric_fields(c: Mapping[str, Any]) -> dict[str, Any]:
    """The verification's metric (schema 3) where it is not accuracy, which has its own
    fields: {"task_metric", "metric_value", "metric_delta", "metric_delta_interval"}."""
    metric = c.get("metric")
    if not isinstance(metric, str) or metric == "accuracy":
        return {}
    return {
        "task_metric": metric,
        "metric_value": _num(c.get("metric_value")),
        "metric_delta": _num(c.get("metric_delta")),
        "metric_delta_interval": Interval.from_any(c.get("metric_delta_ci")),
    }


def _candidate_entry(
    c: Mapping[str, Any],
    baselines: Mapping[str | None, tuple[str, float | None]],
    flops: float | None,
) -> Entry:
    p50 = _num(c.get("latency_ms_p50"))
    speedup, speedup_interval, versus = _speedup_against(c, baselines)
    delta, delta_interval = _delta_points(c)
    settings = _dict(c.get("settings"))
    precision = str(settings.get("precision", settings.get("dtype", "fp32")))
    return Entry(
        name=str(c.get("name", "?")),
        label=str(c.get("backend", "")),
        speedup=speedup,
        speedup_interval=speedup_interval,
        versus=versus if len(baselines) > 1 else None,
        samples_per_s=_num(c.get("samples_per_s")),
        latency_ms_p50=p50,
        latency_ms_p99=_num(c.get("latency_ms_p99")),
        latency_ms=_latencies(c),
        accuracy=_num(c.get("accuracy")),
        accuracy_delta_points=delta,
        accuracy_delta_interval=delta_interval,
        max_abs_error=_num(c.get("max_abs_error")),
        top1_agreement=_num(c.get("top1_agreement")),
        cosine_similarity=_num(c.get("cosine_similarity")),
        **_metric_fields(c),
        verdict=None if c.get("verdict") is None else str(c.get("verdict")),
        reason=str(c.get("reason") or ""),
        precision={"bfloat16": "bf16", "float32": "fp32"}.get(precision, precision),
        flops_per_sample=_num(c.get("flops_per_sample")) or flops,
        details={**settings, "timed": c["timing"]} if c.get("timing") else settings,
    )


def from_optimize(
    data: Mapping[str, Any], *, flops_per_sample: float | None = None, source: str = ""
) -> Run:
    """A `jiasu optimize` report: `baseline`, `chosen` and `candidates` (see the schema doc)."""
    candidates = [_dict(c) for c in data.get("candidates", []) if isinstance(c, Mapping)]
    base_raw = data.get("baseline")
    base = _dict(base_raw) or next(
        (c for c in candidates if c.get("name") == base_raw), {"name": str(base_raw or "baseline")}
    )
    base_name = str(base.get("name", "baseline"))
    flops = (
        flops_per_sample
        or _num(data.get("flops_per_sample"))
        or _flops_for_model(data, training=False)
    )
    # The baseline figures a ratio may divide, by how they were timed.
    base_timing = str(base["timing"]) if base.get("timing") else None
    baselines: dict[str | None, tuple[str, float | None]] = {
        base_timing: (base_name, _num(base.get("latency_ms_p50")))
    }
    screened = _dict(data.get("baseline_screening"))
    if screened and base_timing != "screening":
        baselines["screening"] = (base_name + SCREENED_SUFFIX, _num(screened.get("latency_ms_p50")))
    others = [c for c in candidates if c.get("name") != base_name]
    first = _candidate_entry({**base, "speedup_interval": None}, baselines, flops)
    entries = [_with(first, speedup=1.0, versus=None, verdict=first.verdict or "baseline")]
    if "screening" in baselines and base_timing != "screening":
        name = baselines["screening"][0]
        entries.append(_screened_baseline_entry(name, screened, entries[0]))
    entries += [_candidate_entry(c, baselines, flops) for c in others]
    unpaired = [
        str(c.get("name")) for c in others
        if _num(c.get("latency_ms_p50")) is not None and _versus_timing(c) not in baselines
    ]  # fmt: skip
    notes = _verification_notes(data)
    if unpaired:
        notes += (
            f"no speedup shown for {', '.join(unpaired)}: this report does not hold the "
            "baseline timed the way they were (rerun `jiasu optimize` for it)",
        )
    chosen_raw = data.get("chosen")
    chosen = str(_dict(chosen_raw).get("name", chosen_raw)) if chosen_raw else None
    skipped = _skipped_from(data.get("skipped"), "skipped")
    skipped += [
        Skipped(e.name, e.reason or "no reason given", e.verdict)  # type: ignore[arg-type]
        for e in entries
        if e.verdict in ("rejected", "failed", "skipped")
    ]
    budget = _optimize_budget(data, entries[0].accuracy)
    return Run(
        kind="optimize",
        title=f"optimize: inference backends, chosen {chosen or 'none'}",
        baseline=base_name,
        entries=tuple(entries),
        chosen=chosen,
        skipped=tuple(skipped),
        accuracy_budget_points=budget,
        metric="latency (p50)",
        source=source,
        environment=_dict(data.get("environment")),
        notes=notes,
    )


def _screened_baseline_entry(name: str, screened: Mapping[str, Any], base: Entry) -> Entry:
    return _with(
        base,
        name=name,
        speedup=1.0,
        speedup_interval=None,
        versus=name,  # its own reference
        samples_per_s=_num(screened.get("samples_per_s")),
        latency_ms_p50=_num(screened.get("latency_ms_p50")),
        latency_ms_p99=_num(screened.get("latency_ms_p99")),
        latency_ms=(),
        verdict="baseline",
        reason="the baseline as the screening timed it: the screened rows' speedups divide it",
        details={**base.details, "timed": "screening"},
    )


def _task_metric(data: Mapping[str, Any]) -> str:
    """The metric an optimize report verified by (schema 3 `task`; before, accuracy)."""
    metric = _dict(data.get("task")).get("metric")
    return metric if isinstance(metric, str) else "accuracy"


def _verification_notes(data: Mapping[str, Any]) -> tuple[str, ...]:
    """What the candidates were verified by, when it was not accuracy on labels."""
    if data.get("verified") is False:
        return (
            "accuracy not verified (no data): the inputs were generated from the signature "
            "for timing only; exact candidates were checked against fp32 on them, approximate "
            "ones not accepted",
        )
    metric = _task_metric(data)
    if metric == "accuracy":
        return ()
    budget = str(_dict(data.get("budget")).get("description") or "")
    what = {
        "mse": "MSE on the labels (lower is better)",
        "mae": "MAE on the labels (lower is better)",
        "agreement": "agreement with fp32 on the same inputs (no labels: top-1 agreement "
        "for class scores, else cosine similarity)",
    }.get(metric, metric)
    return (f"verified by {what}" + (f"; budget: {budget}" if budget else ""),)


def _optimize_budget(data: Mapping[str, Any], base_accuracy: float | None) -> float | None:
    """The budget in points: `budget` {"kind": absolute|relative, "value": fraction};
    None where the report verified by another metric than accuracy (its notes say it)."""
    if _num(data.get("accuracy_budget_points")) is not None:
        return _num(data["accuracy_budget_points"])
    if _task_metric(data) != "accuracy" or data.get("verified") is False:
        return None
    budget = data.get("budget", data.get("accuracy_budget"))
    if _num(budget) is not None:
        return float(budget) * 100
    spec = _dict(budget)
    value = _num(spec.get("value"))
    if value is None:
        return None
    if spec.get("kind") == "relative":
        return None if base_accuracy is None else value * base_accuracy * 100
    return value * 100


def _with(entry: Entry, **changes: Any) -> Entry:
    import dataclasses

    return dataclasses.replace(entry, **changes)


# --- benchmarks (jiasu.measure.compare) --------------------------------------------------
def from_comparison(
    data: Mapping[str, Any],
    *,
    title: str = "benchmark",
    flops_per_sample: float | None = None,
    source: str = "",
) -> Run:
    """A benchmark: `Comparison.to_dict()`, alone or as {"comparison": ..., "environment": ...}."""
    comparison = _dict(data.get("comparison")) or dict(data)
    flops = flops_per_sample or _num(data.get("flops_per_sample"))
    baseline = str(comparison.get("baseline", ""))
    base_seconds = _seconds(_dict(_dict(comparison.get("results")).get(baseline)))
    entries, skipped = [], []
    for name, raw in _dict(comparison.get("results")).items():
        result = _dict(raw)
        m = _dict(result.get("measurement"))
        if not result.get("ok", bool(m)) or not m:
            skipped.append(Skipped(name, str(result.get("error") or "failed"), "failed"))
            continue
        latency = sorted(float(s) * 1e3 for s in m.get("seconds", []))
        speedup = _num(result.get("speedup"))
        interval = None
        seconds = _seconds(result)
        if name != baseline and speedup and seconds and len(seconds) == len(base_seconds):
            # round i timed every case once (interleaved): pair the calls by round
            interval = Interval(*paired_ratio_interval(base_seconds, seconds, point=speedup))
        entries.append(
            Entry(
                name=name,
                label=str(data.get("labels", {}).get(name, "")) if "labels" in data else "",
                speedup=speedup,
                speedup_interval=interval,
                samples_per_s=_num(m.get("items_per_s")),
                latency_ms_p50=percentile(latency, 50) if latency else None,
                latency_ms_p99=percentile(latency, 99) if latency else None,
                latency_ms=tuple(latency),
                verdict="baseline" if name == baseline else None,
                flops_per_sample=flops,
                details={"items_per_call": m.get("items_per_call")},
            )
        )
    return Run(
        kind="benchmark",
        title=str(data.get("title", title)),
        baseline=baseline,
        entries=tuple(entries),
        skipped=tuple(skipped),
        metric="time per call (median)",
        source=source,
        environment=_dict(data.get("environment")),
    )


def _seconds(result: Mapping[str, Any]) -> list[float]:
    """A comparison case's timed calls in the order they ran; [] if any is unusable."""
    raw = _dict(result.get("measurement")).get("seconds")
    values = [_num(v) for v in raw] if isinstance(raw, list) else []
    return [v for v in values if v is not None] if all(v and v > 0 for v in values) else []


# --- dispatch ----------------------------------------------------------------------------
READABLE_SCHEMA_VERSIONS = (1, 2, 3)  # of result and report JSON files (docs/report.md)


def _check_schema_version(data: Mapping[str, Any], where: str) -> None:
    """Refuse a file written in a schema this jiasu does not know (a file without one is
    read as version 1)."""
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        known = ", ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)
        raise ReportError(
            f"{where} has schema_version {version!r:.40}, but this jiasu reads schema_version "
            f"{known}; write it again with this jiasu or upgrade jiasu"
        )


def from_result(data: Mapping[str, Any], *, source: str = "") -> list[Run]:
    """The runs in any jiasu result dict (a report's JSON gives back all its runs)."""
    kind = data.get("kind")
    where = source or "the result"
    _check_schema_version(data, where)
    if kind == REPORT_KIND:
        return list(Report.from_dict(dict(data)).runs)
    if kind == "demo" or (kind is None and "accelerated" in data and "speedup" in data):
        return [from_demo(data, source=source)]
    if kind in ("optimize", "jiasu-optimize-report") or (kind is None and "candidates" in data):
        return [from_optimize(data, source=source)]
    if kind == "train" or (kind is None and "recipe" in data and "train_seconds" in data):
        return [from_train(data, source=source)]
    if kind == "benchmark" or (kind is None and ("results" in data or "comparison" in data)):
        return [from_comparison(data, source=source)]
    raise ReportError(
        f"{where} is not a jiasu result (demo, train, optimize, benchmark or report JSON); "
        "pass a file written with --json"
    )


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Read result files and adapt each; a missing or malformed file is a `ReportError`."""
    runs: list[Run] = []
    for path in map(Path, paths):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportError(f"result file {path} does not exist; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportError(f"result file {path} cannot be read ({exc})") from None
        except json.JSONDecodeError as exc:
            raise ReportError(f"result file {path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ReportError(f"result file {path} holds no JSON object; pass a jiasu result")
        runs.extend(from_result(data, source=str(path)))
    return runs
