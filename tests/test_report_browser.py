"""report.html in a real browser (headless Chromium driven by playwright): no console error,
the first failure visible without scrolling on a report of many scenarios, and the inline
script's sorting and filtering at work.

Chromium comes from the system (``apt-get install chromium``; ``.ci/run`` installs it). Outside
CI the test is skipped when it is missing; in CI (``CI=true``) a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from refbp.report import synthetic_results, write_report

VIEWPORT = {"width": 1280, "height": 900}
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str:
    """The system Chromium's path; skips (fails in CI) when it or playwright is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path, why = None, "playwright is not installed (pip install -e '.[dev]')"
    else:
        why = "no chromium on PATH (apt-get install chromium)"
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must check report.html in a browser: {why}")
        pytest.skip(f"report.html browser check needs Chromium: {why}")
    return path


def open_page(browser: Any, file: Path, errors: list[str]) -> Any:
    """A page of ``browser`` showing ``file``; console errors and page errors go to
    ``errors``."""
    page = browser.new_page(viewport=VIEWPORT)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(file.as_uri())
    return page


def many_scenarios_failing_late(n: int = 240) -> pd.DataFrame:
    """``n`` passing scenarios, then two failing ones at the end of the table."""
    names = [f"pass-{i:03d}" for i in range(n)] + ["late-fail-a", "late-fail-b"]
    df = synthetic_results(names, steps=3)
    bad = df["scenario"].str.startswith("late-fail") & (df["tensor"] == "grad:0.weight")
    df.loc[bad, ["tol_ratio", "normwise", "max_abs", "refbp_value", "torch_value"]] = [
        [25.0, 3e-11, 0.5, 1.5, 1.0]]
    df.loc[bad, ["passed", "verdict"]] = [False, "fail"]
    return df


def test_first_failure_is_on_the_first_screen_without_console_errors(tmp_path: Path) -> None:
    exe = chromium()
    from playwright.sync_api import sync_playwright

    out = write_report(many_scenarios_failing_late(), tmp_path / "rep", {"suite": "synthetic"})
    page_file = out / "report.html"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=LAUNCH_ARGS)
        try:
            page = open_page(browser, page_file, errors)
            first = page.locator("tr[data-first-failure]")
            box: Any = first.bounding_box()
            assert box is not None and 0 < box["y"] and box["y"] + box["height"] < 900, box
            assert first.locator("td").first.inner_text() == "late-fail-a"
            assert page.evaluate("window.scrollY") == 0
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height < 6000, height  # 242 scenarios: passing ones collapsed, table scrolls
            # sort the scenario table by worst tol ratio, descending: the failures come first
            header = page.locator("#t-all th", has_text="worst tol ratio")
            header.click()
            header.click()
            top = page.locator("#t-all tbody tr").first.locator("td").first.inner_text()
            assert top.startswith("late-fail")
            page.locator("[data-filter-for='t-all'] input").fill("late-fail-b")
            assert page.locator("#t-all tbody tr:visible").count() == 1
            assert page.locator("[data-filter-for='t-all'] .count").inner_text() == \
                "1 of 242 shown"
            # a link into a collapsed passing scenario opens it
            page.locator("[data-filter-for='t-all'] input").fill("")
            link = page.locator("#t-all tr[data-result='pass'] a").first
            target = str(link.get_attribute("href"))
            assert not page.locator("details#passing").evaluate("d => d.open")
            link.click()
            assert page.locator("details#passing").evaluate("d => d.open")
            assert page.locator(target).is_visible()
        finally:
            browser.close()
    assert errors == []


def test_history_page_sorts_filters_and_shows_the_regression_first(
        tmp_path: Path, history_reports: tuple[Path, Path, Path]) -> None:
    """history.html (``refbp history``) in the browser: the verdict and the trend on the
    first screen, no console error, the scenario table sorted by the latest report's figure
    and filtered to the flagged scenarios by the inline script."""
    exe = chromium()
    from playwright.sync_api import sync_playwright

    from refbp.cli.commands import main

    reports = history_reports
    assert main(["history", *map(str, reports), "--out", str(tmp_path / "trend"), "-q"]) == 1
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=LAUNCH_ARGS)
        try:
            page = open_page(browser, tmp_path / "trend" / "history.html", errors)
            assert page.locator(".verdict .badge").inner_text() == "REGRESSION"
            trend: Any = page.locator("img[alt='trend of all scenarios']").bounding_box()
            assert trend is not None and trend["y"] < 900, trend
            assert page.evaluate("document.images.length") == 4
            assert page.evaluate("Array.from(document.images).every(i => i.complete && "
                                 "i.naturalWidth > 0)")
            rows = page.locator("#t-history tbody tr")
            header = page.locator("#t-history th", has_text="#3")
            header.click()
            header.click()  # descending: mlp (3.0, failing) above clf (0.5) above old
            assert [rows.nth(i).locator("td").first.inner_text() for i in range(3)] == \
                ["mlp", "clf", "old"]
            page.locator("[data-filter-for='t-history'] select").select_option("flagged")
            assert page.locator("#t-history tbody tr:visible").count() == 2
            assert page.locator("[data-filter-for='t-history'] .count").inner_text() == \
                "2 of 3 shown"
            page.locator("[data-filter-for='t-history'] select").select_option("")
            page.locator("[data-filter-for='t-history'] input").fill("newly failing")
            assert page.locator("#t-history tbody tr:visible td").first.inner_text() == "mlp"
        finally:
            browser.close()
    assert errors == []
