"""``report.html``: a self-contained page (inline CSS, plots as base64 PNG, no external asset).

Sections: headline, provenance, the scenario table (pass/fail coloured, linked to each
scenario), a scenario x tensor-kind heatmap of the worst failing ratio, the first failing
rows, then per scenario its worst discrepancy per tensor kind with loss curves and error vs
step. To keep rendering fast on large reports only ``max_plot_scenarios`` scenarios get plots
(failing ones first, then multi-step ones closest to failing) and the heatmap shows at most
``max_heatmap_rows`` scenarios (failing ones first); the page says what was left out. Every
string from the data is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from refbp.report import plots
from refbp.report.digest import Digest, message_sections
from refbp.report.schema import KINDS
from refbp.report.summary import (
    Table,
    headline,
    kind_table,
    kind_tables,
    overview_table,
    provenance_table,
    scenario_caption,
    sides,
    verdict_note,
)

MAX_PLOT_SCENARIOS = 16
"""At most this many scenarios are plotted unless selected by name (``plots``)."""
CLOSEST_PLOTTED = 4
"""Passing scenarios plotted by default: the ones closest to failing."""
MAX_HEATMAP_ROWS = 150

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass { background: #d7f5d7; } td.fail { background: #f8d0d0; font-weight: bold; }
.headline { font-size: 1.15em; font-weight: bold; }
.ok { color: #17701a; } .bad { color: #b00020; }
code, .mono { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: 0.9em; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
.explain { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; }
section.scenario { border-top: 1px solid #ddd; margin-top: 1.5em; }
"""

_RESULT_CLASS = {"pass": "pass", "FAIL": "fail"}
_NUMERIC_HEADERS = {"steps", "worst normwise", "worst tol ratio", "thread noise",
                    "at step", "refbp", "your code", "torch"}


def e(text: Any) -> str:
    """HTML-escape any value as text."""
    return html.escape(str(text), quote=True)


def html_table(table: Table, *, links: dict[int, str] | None = None) -> str:
    """Render a ``Table``: "pass"/"FAIL" cells are coloured, numbers right-aligned; ``links``
    maps a row number to an anchor for its first cell."""
    header, rows = table
    numeric = [h in _NUMERIC_HEADERS for h in header]
    out = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header)
           + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            text = e(cell)
            if j == 0 and links and i in links:
                text = f'<a href="#{e(links[i])}">{text}</a>'
            td_cls = _RESULT_CLASS.get(cell, "num" if numeric[j] else "")
            cells.append(f'<td class="{td_cls}">{text}</td>' if td_cls else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _plot_order(summary: pd.DataFrame) -> list[str]:
    """Scenario names by interest: failing ones (table order), then multi-step scenarios by
    worst tolerance ratio (closest to failing first), then single-step ones likewise."""
    failing = summary.loc[~summary["passed"], "scenario"].tolist()
    passing = summary[summary["passed"]]
    passing = passing.assign(_single=passing["steps"] <= 1)
    passing = passing.sort_values(["_single", "worst_tol_ratio"], ascending=[True, False],
                                  kind="stable", na_position="last")
    return failing + passing["scenario"].tolist()


def _ulp_section(f32: pd.DataFrame) -> str:
    """ULP-distance histogram of the float32 rows with a measured ``max_ulp`` (a digest's
    ``ulps``)."""
    if f32.empty:
        return ""
    by_kind = {k: g["max_ulp"].to_numpy() for k, g in f32.groupby("kind", sort=False)}
    median = float(f32["max_ulp"].median())
    return ("<h2>float32: ULP distances</h2><p class='note'>Largest ULP distance between refbp "
            f"and torch in each float32 tensor (median {median:g} ULP over {len(f32)} rows). "
            "A few ULP is rounding; a tail into thousands means accumulated error.</p>"
            f"<img alt='ULP histogram' src='{plots.ulp_histogram_plot(by_kind)}'>")


def _heatmap(heat: pd.DataFrame, summary: pd.DataFrame, max_rows: int) -> str:
    """The scenario x kind image of a digest's ``heat``: each cell is the larger of the
    tolerance ratio and the normwise error in units of its tolerance (unless the absolute
    floor waived it) -- the check that decides, so a scenario failing on normwise error shows
    a failing colour."""
    kinds = [k for k in KINDS if k != "error" and k in set(heat["kind"].unique())]
    if not kinds or summary.empty:
        return "<p class='note'>No tensors to show.</p>"
    names = _plot_order(summary)[:max_rows]
    if len(names) == len(summary):
        names = summary["scenario"].tolist()
    matrix = heat.set_index(["scenario", "kind"])["fail_ratio"].unstack("kind")
    matrix = matrix.reindex(index=names, columns=kinds)
    uri = plots.ratio_heatmap(matrix.to_numpy(dtype=np.float64), names, kinds)
    note = ""
    if len(names) < len(summary):
        note = (f"<p class='note'>Heatmap limited to {len(names)} of {len(summary)} scenarios "
                "(failing ones first).</p>")
    return f'<img alt="tolerance ratio heatmap" src="{uri}">{note}'


def _scenario_plot(name: str, losses: pd.DataFrame, errors: pd.Series, tol: float,
                   left: str = "refbp") -> str:
    loss = losses.loc[name]
    err = errors.loc[name] if name in errors.index.get_level_values(0) else None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if err is not None:
        for kind in KINDS:
            if kind in err.index.get_level_values(0):
                part = err.loc[kind]
                curves[kind] = (part.index.to_numpy(), part.to_numpy(dtype=np.float64))
    uri = plots.scenario_plots(loss.index.to_numpy(), loss["refbp_loss"].to_numpy(),
                               loss["torch_loss"].to_numpy(), curves, tol, name, left)
    return f'<img alt="{e(name)}: loss curves and error vs step" src="{uri}">'


def plotted_scenarios(summary: pd.DataFrame, plots: Callable[[str], bool] | None = None, *,
                      max_plot_scenarios: int = MAX_PLOT_SCENARIOS,
                      closest: int = CLOSEST_PLOTTED) -> set[str]:
    """Scenarios that get plots: failing ones (up to ``max_plot_scenarios``), the ``closest``
    passing ones nearest to failing, and every scenario whose name ``plots`` selects."""
    failing = summary.loc[~summary["passed"].astype(bool), "scenario"].tolist()
    order = _plot_order(summary)
    chosen = set(failing[:max_plot_scenarios])
    chosen |= set([n for n in order if n not in set(failing)][:closest])
    if plots is not None:
        chosen |= {n for n in summary["scenario"] if plots(n)}
    return chosen


def render_html(d: Digest, provenance: dict[str, Any], *,
                plots: Callable[[str], bool] | None = None,
                max_plot_scenarios: int = MAX_PLOT_SCENARIOS,
                closest_plotted: int = CLOSEST_PLOTTED,
                max_heatmap_rows: int = MAX_HEATMAP_ROWS) -> str:
    """The text of ``report.html`` for the digest of a validated results table (plots for
    the scenarios of :func:`plotted_scenarios`)."""
    summary, worst = d.summary, d.worst
    anchors = {name: f"s{i}" for i, name in enumerate(summary["scenario"])}
    verdict_cls = "ok" if summary["passed"].all() else "bad"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>refbp parity report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>refbp parity report</h1>",
             f'<p class="headline {verdict_cls}">{e(headline(summary, d.n_rows))}</p>',
             f"<p>{e(verdict_note(provenance))}</p>",
             "<h2>Provenance</h2>", html_table(provenance_table(provenance)),
             "<h2>Scenarios</h2>",
             html_table(overview_table(summary),
                        links={i: anchors[n] for i, n in enumerate(summary["scenario"])}),
             "<h2>Worst failing ratio: scenario &times; tensor kind</h2>",
             "<p class='note'>Each cell is the larger of the tolerance ratio and the normwise "
             "error in units of its tolerance (the check that decides); above 1 fails.</p>",
             _heatmap(d.heat, summary, max_heatmap_rows)]
    for title, groups in message_sections(d):
        parts.append(f"<h2>{e(title)}</h2>")
        for name, messages in groups:
            items = "".join(f"<li class='mono'>{e(m)}</li>" for m in messages)
            parts.append(f"<h3>{e(name)}</h3><ul>{items}</ul>")
    parts.append(_ulp_section(d.ulps))
    plotted = plotted_scenarios(summary, plots, max_plot_scenarios=max_plot_scenarios,
                                closest=closest_plotted)
    left = sides(provenance)[1]
    tables = kind_tables(worst, left)
    parts.append("<h2>Per scenario</h2>")
    if len(plotted) < len(summary):
        parts.append(f"<p class='note'>Plots for {len(plotted)} of {len(summary)} scenarios "
                     "(the failing ones, the ones closest to failing and those selected with "
                     "<code>refbp run --plots EXPRESSION</code>); the others have tables "
                     "only.</p>")
    for row in summary.itertuples(index=False):
        name = row.scenario
        parts += [f'<section class="scenario" id="{anchors[name]}">',
                  f"<h3>{e(name)} <span class='{'ok' if row.passed else 'bad'}'>"
                  f"{row.result}</span></h3>", f"<p class='note'>{e(scenario_caption(row))}</p>"]
        if row.explanation:
            parts.append(f"<p class='explain'><b>Explanation:</b> {e(row.explanation)}</p>")
        parts.append(html_table(tables.get(name, kind_table(worst.iloc[:0], left))))
        if name in plotted:
            parts.append(_scenario_plot(name, d.losses, d.errors,
                                        float(d.normwise_tol[name]), left))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
