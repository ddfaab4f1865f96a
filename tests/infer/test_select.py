"""Selection is a pure function of the trial table: tested on made-up tables."""

from __future__ import annotations

import pytest

from jiasu.infer.select import Trial, pareto_front, select


def t(
    name: str,
    verdict: str = "accepted",
    exact: str = "numeric",
    ms: float | None = 1.0,
    rate: float | None = None,
    acc: float | None = 0.9,
) -> Trial:
    return Trial(
        name, verdict, exact, ms, rate if rate is not None else (1e3 / ms if ms else None), acc
    )  # type: ignore[arg-type]


def test_fastest_accepted_wins_for_each_target() -> None:
    trials = [t("eager", exact="exact", ms=0.2), t("ort", ms=0.04), t("ov", ms=0.05, rate=9e5)]
    assert select(trials, "latency") == "ort"
    assert select(trials, "throughput") == "ov"


@pytest.mark.parametrize("verdict", ["rejected", "failed", "skipped"])
def test_never_picks_outside_the_budget_however_fast(verdict: str) -> None:
    trials = [t("eager", exact="exact", ms=1.0), t("int8", verdict, "approximate", ms=0.001)]
    assert select(trials, "latency") == "eager"
    assert select(trials, "throughput") == "eager"


def test_all_failed_gives_no_choice() -> None:
    trials = [t("a", "failed", ms=None), t("b", "skipped", ms=None), t("c", "rejected")]
    assert select(trials, "latency") is None
    assert select([], "throughput") is None


def test_accepted_without_measurement_is_not_eligible() -> None:
    assert select([t("a", ms=None), t("b", ms=float("nan"))], "latency") is None


def test_exact_tie_goes_to_more_exact_then_earlier() -> None:
    trials = [
        t("int8", exact="approximate", ms=1.0),
        t("ort", ms=1.0),
        t("opt", exact="exact", ms=1.0),
    ]
    assert select(trials, "latency") == "opt"
    same = [t("first", ms=1.0), t("second", ms=1.0)]
    assert select(same, "latency") == "first"


def test_tie_margin_prefers_exactness_within_noise_only() -> None:
    trials = [t("fp32", ms=1.02), t("int8", exact="approximate", ms=1.0)]
    assert select(trials, "latency") == "int8"  # no margin: strictly the fastest
    assert select(trials, "latency", tie_margin=0.03) == "fp32"  # 2% apart: a tie
    far = [t("fp32", ms=1.5), t("int8", exact="approximate", ms=1.0)]
    assert select(far, "latency", tie_margin=0.03) == "int8"


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="target"):
        select([], "speed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tie_margin"):
        select([], "latency", tie_margin=1.5)


def test_pareto_front_drops_dominated_trials() -> None:
    trials = [
        t("eager", exact="exact", ms=1.0, acc=0.95),
        t("ort", ms=0.5, acc=0.95),  # dominates eager
        t("int8", exact="approximate", ms=0.2, acc=0.94),  # faster, less accurate: on the front
        t("bad", "rejected", ms=0.1, acc=0.5),  # not accepted: never on the front
    ]
    assert pareto_front(trials, "latency") == ["ort", "int8"]


def test_a_difference_within_the_measured_noise_goes_to_the_more_exact() -> None:
    def trial(name: str, exact: str, ms: float, noise: float) -> Trial:
        return Trial(name, "accepted", exact, ms, 1e3 / ms, 0.9, noise)  # type: ignore[arg-type]

    # int8 measures 8 % faster, but fp32's own figures vary by ±10 %: not resolved, a tie.
    noisy = [trial("fp32", "numeric", 1.0, 0.10), trial("int8", "approximate", 0.92, 0.02)]
    assert select(noisy, "latency") == "fp32"
    # Measured quietly, the same 8 % is real, and the faster wins.
    quiet = [trial("fp32", "numeric", 1.0, 0.02), trial("int8", "approximate", 0.92, 0.02)]
    assert select(quiet, "latency") == "int8"
    # Noise widens a tie only up to MAX_NOISE_MARGIN (15 %): a 2× gain is never hidden.
    wild = [trial("fp32", "numeric", 1.0, 5.0), trial("int8", "approximate", 0.5, 0.02)]
    assert select(wild, "latency") == "int8"
    # Between equally exact runtimes, a tie goes to the faster median.
    same = [trial("ort", "numeric", 1.0, 0.1), trial("ov", "numeric", 0.95, 0.1)]
    assert select(same, "latency") == "ov"
