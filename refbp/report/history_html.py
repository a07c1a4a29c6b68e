"""``history.html``: a regression history (:mod:`refbp.report.history`) as a self-contained page
(inline CSS and script, plots as base64 PNG; no external asset, no network), like
``report.html``.

First screen: the verdict of the latest report against the previous one and the trend of the
worst ratio to tolerance over all scenarios; then the reports (start time, commit, torch
version, machine, what the comparison with the previous one found), the changes flagged at
each report, a trend plot per scenario (flagged scenarios first, then the ones closest to
failing in the latest report; at most ``max_plots``) and every scenario's figures at the
latest ``max_columns`` reports in a sortable, filterable table. Every string from the data is
escaped.
"""

from __future__ import annotations

from refbp.report import plots
from refbp.report.history import REGRESSION_FLAGS, History
from refbp.report.history_render import (
    change_lines,
    comparison_line,
    headline,
    points_table,
    rule_text,
    scenario_matrix,
    scenario_table,
)
from refbp.report.html import e, filter_box, html_table, page

MAX_PLOTS = 24
"""Scenarios with a trend plot: flagged ones first, then those closest to failing."""
MAX_COLUMNS = 30
"""Reports (the latest) shown as columns of the scenario table; history.csv has them all."""
MAX_CHANGE_LINES = 200
"""Flagged scenarios listed per comparison."""


def _label(h: History, i: int) -> str:
    p = h.points[i]
    return f"#{i + 1} {p.commit[:8]} torch {p.torch}"


def _regressing(texts: list[str], allow_removed: bool) -> bool:
    return any(t.startswith(REGRESSION_FLAGS[:2]) or
               (t.startswith(REGRESSION_FLAGS[2]) and not allow_removed) for t in texts)


def _overview(h: History) -> str:
    w = h.worst
    n = len(h.points)
    worst = w.groupby("point")["ratio"].max().reindex(range(n))
    median = w.groupby("point")["ratio"].median().reindex(range(n))
    flagged = sorted({i for (i, _) in h.flags})
    regressed = [i for i in range(n) if h.regressed_at(i)]
    uri = plots.trend_plot([_label(h, i) for i in range(n)],
                           {"worst scenario": worst.to_numpy(float),
                            "median scenario": median.to_numpy(float)},
                           flagged, regressed, title="all scenarios")
    return ("<h2 id='trend'>Trend</h2><p class='note'>The worst and the median scenario's "
            "worst ratio to tolerance at each report (0 drawn at 1e-18); orange circles: "
            "reports with flagged changes; red crosses: reports that regress against the one "
            f"before.</p><img alt='trend of all scenarios' src=\"{uri}\">")


def _plotted(h: History, max_plots: int) -> list[str]:
    flagged = [s for s in h.scenarios() if any(s == name for (_, name) in h.flags)]
    last = h.worst[h.worst["point"] == len(h.points) - 1]
    closest = last.sort_values("ratio", ascending=False, kind="stable")["scenario"]
    order = list(dict.fromkeys([*flagged, *closest]))
    return order[:max_plots]


def _scenario_plots(h: History, max_plots: int) -> str:
    names = _plotted(h, max_plots)
    n = len(h.points)
    labels = [_label(h, i) for i in range(n)]
    figures = []
    for name in names:
        rows = h.worst[h.worst["scenario"] == name].set_index("point").reindex(range(n))
        flagged = [i for i in range(n) if (i, name) in h.flags]
        regressed = [i for i in flagged if _regressing(h.flags[(i, name)], h.allow_removed)]
        uri = plots.trend_plot(labels, {"ratio to tolerance": rows["ratio"].to_numpy(float),
                                        "tol ratio": rows["tol_ratio"].to_numpy(float)},
                               flagged, regressed, title=name)
        figures.append(f"<figure class='trend' id='p-{e(name)}'><img alt='trend of {e(name)}' "
                       f"loading='lazy' src=\"{uri}\"></figure>")
    total = h.worst["scenario"].nunique()
    note = (f" Plots for {len(names)} of {total} scenarios: the flagged ones first, then the "
            "ones closest to failing in the latest report." if len(names) < total else "")
    return ("<h2 id='plots'>Scenario trends</h2><p class='note'>Worst ratio to tolerance "
            "(the check that decides) and worst tolerance ratio of each scenario at each "
            "report; "
            f"missing points: the report lacks the scenario.{note}</p>" + "\n".join(figures))


def _changes(h: History) -> str:
    parts = []
    for i in range(1, len(h.points)):
        lines = change_lines(h, i, MAX_CHANGE_LINES)
        if not lines:
            continue
        cls = "bad" if h.regressed_at(i) else "ok"
        items = "".join(f"<li class='mono'>{e(line)}</li>" for line in lines)
        parts.append(f"<p><b>#{i + 1} vs #{i}</b> <span class='{cls}'>"
                     f"{e(comparison_line(h, i))}</span></p><ul class='messages'>{items}</ul>")
    if not parts:
        return "<h2 id='changes'>Changes</h2><p class='note'>Nothing flagged.</p>"
    return "<h2 id='changes'>Changes</h2>" + "\n".join(parts)


def _scenarios(h: History, max_columns: int) -> str:
    table = scenario_table(h, last=max_columns)
    m = scenario_matrix(h, last=max_columns)
    results = ["flagged" if any(s == name for (_, s) in h.flags) else "not flagged"
               for name in m.index]
    numeric = [f"#{i + 1}" for i in m.columns]
    body = html_table(table, table_id="t-history", sortable=True, results=results,
                      numeric_headers=numeric)
    n = len(h.points)
    note = (f" Showing the latest {len(m.columns)} of {n} reports; history.csv has them "
            "all." if len(m.columns) < n else "")
    return (f"<h2 id='scenarios'>All scenarios ({len(m)})</h2><p class='note'>Worst ratio to "
            f"tolerance per report; click a column header to sort; type to filter.{note}</p>"
            + filter_box("t-history", ["flagged", "not flagged"], "filter: scenario, dtype, "
                         "flag...", "any") + f"<div class='scroll'>{body}</div>")


def _verdict(h: History) -> str:
    if len(h.points) == 1:
        badge, cls = "<span class='badge ok'>1 REPORT</span>", "ok"
    elif h.regressed:
        badge, cls = "<span class='badge bad'>REGRESSION</span>", "bad"
    else:
        badge, cls = "<span class='badge ok'>NO REGRESSION</span>", "ok"
    what = " (the latest report against the one before)" if len(h.points) > 1 else ""
    return (f"<p class='verdict {cls}'>{badge}{e(headline(h, verdict=False))}{what}</p>"
            f"<p class='note'>{e(rule_text(h))}</p>")


def render_history_html(h: History, *, max_plots: int = MAX_PLOTS,
                        max_columns: int = MAX_COLUMNS) -> str:
    """The text of ``history.html`` (see the module docstring)."""
    nav = " ".join(f"<a href='#{a}'>{t}</a>" for a, t in
                   (("trend", "Trend"), ("reports", "Reports"), ("changes", "Changes"),
                    ("plots", "Scenario trends"), ("scenarios", "All scenarios")))
    reports = html_table(points_table(h), table_id="t-reports", sortable=True,
                         numeric_headers=["scenarios", "failed", "worst ratio to tolerance"])
    parts = [_verdict(h), f"<nav>{nav}</nav>", _overview(h),
             f"<h2 id='reports'>Reports ({len(h.points)})</h2><p class='note'>Ordered by "
             f"start time (provenance).</p><div class='scroll'>{reports}</div>",
             _changes(h), _scenario_plots(h, max_plots), _scenarios(h, max_columns)]
    return page("refbp regression history", parts)

