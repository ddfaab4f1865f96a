"""A generated report opened in a real headless Chromium: no console errors, no network,
every plot drawn and non-empty, and a screenshot kept as a test artefact.

Chromium is Debian's (`apt-get install chromium`, done by `make browser` and .ci/run),
driven by Playwright's Python package; Playwright's own browser download is not used.
The screenshot goes to $JIASU_ARTIFACTS_DIR (default: build/test-artifacts).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from jiasu.hardware.peak import Peak
from jiasu.report import build_report, write_html

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("JIASU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _artifacts() -> Path:
    folder = Path(os.environ.get("JIASU_ARTIFACTS_DIR", REPO / "build" / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
    )
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium not found at {CHROMIUM}; install it with `make browser`")
    profile = tempfile.mkdtemp(prefix="jiasu-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _ink_fraction(png: bytes) -> float:
    """Share of pixels that are not (near-)white."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    histogram = image.histogram()
    return 1 - sum(histogram[245:]) / sum(histogram)


def test_report_renders_in_chromium(
    browser: Any,
    demo_result: dict[str, Any],
    optimize_result: dict[str, Any],
    train_result: dict[str, Any],
    comparison_result: dict[str, Any],
    peak: Peak,
    tmp_path: Path,
) -> None:
    report = build_report(
        [demo_result, optimize_result, train_result, comparison_result],
        peak=peak,
        title="jiasu report (browser test)",
    )
    path = write_html(report, tmp_path / "report.html")

    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")

    assert errors == []
    assert [u for u in requests if not u.startswith("file:")] == []  # nothing from the network
    figures = page.query_selector_all("figure.plot")
    kinds = {f.get_attribute("data-plot") for f in figures}
    assert {"speedup", "latency", "accuracy", "curves", "peak"} <= kinds
    for figure in figures:
        svg = figure.query_selector("svg")
        assert svg is not None
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        assert svg.evaluate("s => s.querySelectorAll('path, use').length") > 20
        assert _ink_fraction(figure.screenshot()) > 0.02, figure.get_attribute("data-plot")
    assert page.title() == "jiasu report (browser test)"

    shot = _artifacts() / "report-browser.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
