"""report.html laid out for triage, non-finite results shown as failing everywhere, and the
plots' layout (synthetic tables, no torch, no browser)."""

from __future__ import annotations

import base64
import re
import struct

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from refbp.report import plots, scenario_summary, synthetic_results
from refbp.report.digest import digest
from refbp.report.html import render_html
from refbp.report.markdown import to_markdown
from refbp.report.summary import overview_table


def failing_table() -> pd.DataFrame:
    """``ok`` passes; ``bad`` fails on grad:0.weight from step 2; ``boom`` diverges to inf on
    both sides from step 3 (its measured differences there are 0: inf - inf is not compared)."""
    df = synthetic_results(["ok", "bad", "boom"], steps=4)
    bad = (df["scenario"] == "bad") & (df["tensor"] == "grad:0.weight") & (df["step"] >= 2)
    df.loc[bad, ["tol_ratio", "normwise", "max_abs", "refbp_value", "torch_value"]] = [
        [40.0, 2e-11, 0.5, 1.5, 1.0]]
    df.loc[bad, ["passed", "verdict"]] = [False, "fail"]
    boom = (df["scenario"] == "boom") & (df["step"] >= 3) & df["tensor"].isin(["loss", "output"])
    df.loc[boom, ["tol_ratio", "normwise", "max_abs", "max_rel"]] = 0.0
    df.loc[boom, ["refbp_value", "torch_value"]] = np.inf
    df.loc[boom, ["passed", "verdict"]] = [False, "nonfinite"]
    df.loc[(df["scenario"] == "boom") & (df["step"] >= 3), ["refbp_loss", "torch_loss"]] = np.inf
    return df


def test_nonfinite_on_both_sides_is_the_worst_figure_everywhere() -> None:
    df = failing_table()
    s = scenario_summary(df).set_index("scenario")
    boom = s.loc["boom"]
    assert not boom["passed"] and boom["worst_tol_ratio"] == np.inf
    assert boom["worst_normwise"] == np.inf and boom["loss_tol_ratio"] == np.inf
    assert boom["first_nonfinite_step"] == 3 and boom["first_nonfinite_tensor"] == "loss"
    assert pd.isna(s.loc["bad", "first_nonfinite_step"])
    assert s.loc["bad", "worst_tol_ratio"] == 40.0
    header, rows = overview_table(s.reset_index())
    cells = dict(zip(header, rows[list(s.index).index("boom")], strict=True))
    assert cells["worst tol ratio"] == "non-finite from step 3"
    d = digest(df)
    heat = d.heat.set_index(["scenario", "kind"])["fail_ratio"]
    assert heat[("boom", "loss")] == np.inf and heat[("boom", "output")] == np.inf
    assert heat[("boom", "grad")] < 1
    assert d.errors[("boom", "loss", 3)] == np.inf and d.errors[("boom", "loss", 2)] < 1e-11
    assert "non-finite from step 3" in to_markdown(d, {})


def test_page_puts_verdict_and_failures_first_and_provenance_last() -> None:
    page = render_html(digest(failing_table()), {"suite": "synthetic", "git_commit": "abc"})
    order = [page.index(mark) for mark in (
        "class='verdict bad'", "id='failures'", "id='scenarios'", "id='heatmap'",
        "id='details'", "<details id='provenance'>", "<script>")]
    assert order == sorted(order)
    failures = page[page.index("id='failures'"):page.index("id='scenarios'")]
    first = re.search(r"<tr data-first-failure>(.*?)</tr>", failures)
    assert first is not None
    assert re.findall(r">([^<>]+)</", first.group(1)) == [
        "bad", "float64", "2", "grad:0.weight", "tol ratio 40",
        "refbp 1.5, torch 1 at (0, 1)", "3"]
    boom = failures.split('href="#s2">boom</a>')[1].split("</tr>")[0]
    assert '<td class="fail">NaN or infinity on both sides</td>' in boom
    assert "culprit" not in failures  # the table names no proven culprit: no column
    assert page.count("<tr data-first-failure>") == 1
    assert "abc" in page.split("<details id='provenance'>")[1]
    # failing scenarios' details open, the passing one collapsed in its group
    assert '<details class="scenario" id="s1" open>' in page
    assert '<details class="scenario" id="s0">' in page.split("id='passing'")[1]
    assert not re.search(r'(src|href)="(https?:|//)', page)


def test_proven_culprit_is_shown_where_the_table_has_one() -> None:
    df = failing_table()
    df["culprit"] = ""
    df["culprit_evidence"] = ""
    m = (df["scenario"] == "bad") & ~df["passed"]
    df.loc[m, ["culprit", "culprit_evidence"]] = ["refbp", "finite differences agree with torch"]
    page = render_html(digest(df), {})
    failures = page[page.index("id='failures'"):page.index("id='scenarios'")]
    assert "<th>culprit (where proven)</th>" in failures
    assert "refbp: finite differences agree with torch" in failures
    assert "not proven" in failures.split('href="#s2">boom</a>')[1].split("</tr>")[0]


def test_all_scenarios_table_is_sortable_and_filterable() -> None:
    page = render_html(digest(failing_table()), {})
    table = page[page.index("id='scenarios'"):page.index("id='heatmap'")]
    assert 'data-filter-for="t-all"' in table and '<table id="t-all" class="sortable">' in table
    assert table.count('data-result="FAIL"') == 2 and table.count('data-result="pass"') == 1
    assert '<td class="fail num" data-v="Infinity">non-finite from step 3</td>' in table
    assert '<td class="num" data-v="40.0">4.00e+01</td>' in table
    assert "<script>" in page and "localeCompare" in page  # the sorting script is inline


def single_scenario() -> pd.DataFrame:
    """A layer check's table: one scenario, no loss recorded."""
    df = synthetic_results(["check-layer:mine.py:Dense like Linear"], steps=3)
    df = df[df["kind"] != "loss"].assign(refbp_loss=np.nan, torch_loss=np.nan)
    return df.reset_index(drop=True)


def png_size(uri: str) -> tuple[int, int]:
    data = base64.b64decode(uri.split(",", 1)[1])
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_one_scenario_report_has_no_heatmap_no_table_and_no_empty_loss_plot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: dict[str, tuple[int, int]] = {}
    real = plots.scenario_plots

    def spy(*args: object, **kwargs: object) -> str:
        uri = real(*args, **kwargs)  # type: ignore[arg-type]
        drawn["size"] = png_size(uri)
        return uri

    monkeypatch.setattr(plots, "scenario_plots", spy)
    page = render_html(digest(single_scenario()), {"subject": "Dense"})
    assert "id='heatmap'" not in page and "id='scenarios'" not in page
    assert "tolerance ratio heatmap" not in page
    assert '<details class="scenario" id="s0" open>' in page
    assert "1 scenario: 1 passed, 0 failed" in page
    # one panel (error vs step): about half the width of the two-panel figure
    assert drawn["size"][0] < 0.65 * 10.0 * plots.DPI
    two = png_size(real([1, 2], [1.0, 0.5], [1.0, 0.5],
                        {"grad": (np.array([1, 2]), np.array([1e-16, 2e-16]))}, 1e-12, "t"))
    assert two[0] > 0.9 * 10.0 * plots.DPI


def test_ulp_caption_states_facts_on_a_passing_run() -> None:
    df = synthetic_results(["f32"], steps=2, dtype="float32")
    df["max_ulp"] = np.where(df["kind"] == "error", np.nan, 2.0)
    page = render_html(digest(df), {})
    caption = page.split("id='ulp'")[1].split("<img")[0]
    assert "median 2 ULP, largest 2 ULP" in caption
    assert "Every one of these rows is within its tolerance" in caption
    assert "accumulated" not in caption and "fail" not in caption
    df.loc[df.index[:3], "passed"] = False
    caption = render_html(digest(df), {}).split("id='ulp'")[1].split("<img")[0]
    assert "3 of these rows fail their tolerance." in caption


def test_heatmap_scale_reaches_1e12_and_puts_beyond_and_nonfinite_in_one_bin() -> None:
    cmap, norm = plots.ratio_colour_scale()
    ratios = np.array([0.5, 2.0, 1e4, 1e8, 1e11, 1e13, np.inf, np.nan])
    colours = [tuple(c) for c in cmap(norm(np.ma.masked_invalid(plots.ratio_logs(ratios))))]
    assert colours[0][1] > colours[0][0]  # green: passes
    assert colours[1][0] > colours[1][1]  # red: fails
    assert len({colours[2], colours[3], colours[4]}) == 3  # 1e4, 1e8, 1e11 told apart
    assert colours[5] == colours[6] != colours[4]  # beyond 1e12 and inf share the top bin
    assert colours[7] != colours[6]  # missing: grey
    assert np.allclose(colours[6][:3], [int(plots.BEYOND_COLOUR[i:i + 2], 16) / 255
                                        for i in (1, 3, 5)])


def test_saved_figures_keep_labels_drawn_outside_the_axes() -> None:
    fig = Figure(figsize=(2.0, 1.0))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_ylabel("a label left of the figure's edge")
    width, _ = png_size(plots.to_data_uri(fig))
    assert width > 2.0 * plots.DPI  # the image grew to hold the label instead of cutting it


def test_culprit_comes_from_independent_evidence_never_from_the_referee() -> None:
    df = failing_table()
    m = (df["scenario"] == "bad") & ~df["passed"]
    df.loc[m, "referee"] = "exact referee: refbp 4e-17 from exact, torch 6e-07: torch is off"
    page = render_html(digest(df), {})
    failures = page[page.index("id='failures'"):page.index("id='scenarios'")]
    assert "culprit" not in failures  # a referee's verdict is about rounding: no culprit
    df.loc[m, "attribution"] = "finite differences agree with torch (normwise 1e-09): refbp is off"
    failures = render_html(digest(df), {}).split("id='failures'")[1].split("id='scenarios'")[0]
    bad = failures.split('href="#s1">bad</a>')[1].split("</tr>")[0]
    assert "<td>refbp: finite differences agree with torch (normwise 1e-09)</td>" in bad
    assert "not proven" in failures.split('href="#s2">boom</a>')[1].split("</tr>")[0]


def test_page_size_is_bounded_on_a_large_run() -> None:
    df = failing_table()
    many = synthetic_results([f"p{i:02d}" for i in range(30)], steps=1, seed=3)
    d = digest(pd.concat([df, many], ignore_index=True))
    page = render_html(d, {}, max_passing_details=5, max_table_rows=10, closest_plotted=0,
                       max_heatmap_rows=8)
    table = page.split('<table id="t-all"')[1].split("</table>")[0]
    assert table.count("<tr data-result=") == 10
    assert table.count('data-result="FAIL"') == 2  # every failing scenario is kept
    assert "Showing 10 of 33" in page
    group = page.split("id='passing'")[1]
    assert group.count('<details class="scenario"') == 5
    assert "(the 5 of 31 closest to failing)" in group
    # the passing scenarios kept are the ones closest to failing
    summary = d.summary[d.summary["passed"]].sort_values("worst_tol_ratio", ascending=False)
    for name in summary["scenario"].iloc[:5]:
        assert f">{name} <span class='ok'>pass</span>" in group
    assert "Heatmap limited to 8 of 33 scenarios" in page


def test_exact_tolerances_give_a_deciding_number() -> None:
    df = failing_table()
    df[["rtol", "atol", "normwise_tol"]] = 0.0
    page = render_html(digest(df), {})
    first = page.split("<tr data-first-failure>")[1].split("</tr>")[0]
    assert "normwise 2e-11 = inf x tol" in first


def test_json_summary_names_the_first_nonfinite_step() -> None:
    import json

    from refbp.report.json_summary import to_json

    doc = json.loads(to_json(digest(failing_table()), {}))
    by_name = {s["scenario"]: s for s in doc["scenarios"]}
    assert by_name["boom"]["first_nonfinite"] == {"step": 3, "tensor": "loss"}
    assert by_name["boom"]["worst_tol_ratio"] is None
    assert by_name["bad"]["first_nonfinite"] is None and by_name["bad"]["worst_tol_ratio"] == 40
