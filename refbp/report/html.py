"""``report.html``: a self-contained page (inline CSS and script, plots as base64 PNG, no
external asset, no network).

Laid out for triage, the first screen first: the verdict; the failing scenarios, one line
each (first failing step, tensor, the number that decides, the culprit where the table names
a proven one); the scenarios whose rows are rounding noise; then the rest: every scenario in a
sortable, filterable table (bounded in height: it scrolls), the scenario x tensor-kind heatmap
of the worst failing ratio (failing scenarios first, at most ``max_heatmap_rows``), float32 ULP
distances, and per scenario its worst discrepancy per tensor kind with loss curves and error
vs step, failing ones open and passing ones collapsed; provenance collapsed at the bottom.
A report of one scenario (a ``refbp check-*`` report) is laid out for that one scenario: no
scenario table and no heatmap, its details open. The page's size is bounded on large runs:
only ``max_plot_scenarios`` scenarios get plots (failing ones first, then the ones closest to
failing), only the failing, noisy and ``max_passing_details`` passing scenarios closest to
failing get details, and the scenario table holds at most ``max_table_rows``; the page says
what was left out. Every string from the data is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from refbp.report import plots
from refbp.report.digest import Digest, message_sections
from refbp.report.html_assets import CSS, JS
from refbp.report.schema import KINDS
from refbp.report.summary import (
    Table,
    culprit_text,
    deciding_text,
    headline,
    kind_table,
    kind_tables,
    lost_workers_sentence,
    overview_table,
    provenance_table,
    scenario_caption,
    sides,
    values_text,
    verdict_note,
)

MAX_PLOT_SCENARIOS = 16
"""At most this many scenarios are plotted unless selected by name (``plots``)."""
CLOSEST_PLOTTED = 4
"""Passing scenarios plotted by default: the ones closest to failing."""
MAX_HEATMAP_ROWS = 40
"""Scenarios in the heatmap: failing ones first, then the ones closest to failing."""
MAX_OPEN_FAILING = 16
"""Failing scenarios whose details are open when the page loads (the others collapsed)."""
MAX_PASSING_DETAILS = 200
"""Passing scenarios with a details section (the ones closest to failing): the page's size
stays bounded on a large sweep; every scenario's figures are in the scenario table and in
``results.parquet``."""
MAX_TABLE_ROWS = 3000
"""Rows of the scenario table: every failing and noisy scenario, then the passing ones
closest to failing."""

_RESULT_CLASS = {"pass": "pass", "FAIL": "fail", "noise": "noise"}
_FAILING_TEXT = ("non-finite", "NaN or infinity", "tol ratio ", "normwise ", "error: ")
"""Cell texts that say why a row fails (coloured as failing)."""
_NUMERIC_HEADERS = {"steps", "worst normwise", "worst tol ratio", "thread noise", "at step",
                    "step", "failed rows", "noise rows"}


def e(text: Any) -> str:
    """HTML-escape any value as text."""
    return html.escape(str(text), quote=True)


def _sort_value(text: str) -> str:
    """The ``data-v`` of a numeric cell: its number, ``Infinity`` for a non-finite result,
    '' (sorted first) for a missing one."""
    if text in ("inf",) or text.startswith("non-finite"):
        return "Infinity"
    try:
        return repr(float(text.split()[0])) if text else ""
    except ValueError:
        return ""


def _cell(text: str, numeric: bool, link: str | None = None, sortable: bool = False) -> str:
    cls = _RESULT_CLASS.get(text, "")
    if text.startswith(_FAILING_TEXT) or (numeric and text == "inf"):
        cls = "fail num" if numeric else "fail"
    elif numeric:
        cls = cls or "num"
    body = e(text) if link is None else f'<a href="#{e(link)}">{e(text)}</a>'
    sort = f' data-v="{_sort_value(text)}"' if numeric and sortable else ""
    return f"<td{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}{sort}>{body}</td>"


def html_table(table: Table, *, links: dict[int, str] | None = None, table_id: str = "",
               sortable: bool = False, results: Iterable[str] | None = None,
               mark_first: bool = False, numeric_headers: Iterable[str] = ()) -> str:
    """Render a ``Table``: result cells ("pass", "noise", "FAIL", non-finite) coloured,
    numbers right-aligned (the columns of the report's numeric headers and of
    ``numeric_headers``); ``links`` maps a row number to an anchor for its first cell;
    ``sortable`` makes the header clickable; ``results`` gives each row's ``data-result``
    (for the result filter); ``mark_first`` marks the first row ``data-first-failure``."""
    header, rows = table
    numbers = _NUMERIC_HEADERS | set(numeric_headers)
    numeric = [h in numbers for h in header]
    attrs = (f' id="{e(table_id)}"' if table_id else "") + (' class="sortable"' if sortable
                                                            else "")
    out = [f"<table{attrs}><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header)
           + "</tr></thead><tbody>"]
    result_of = list(results) if results is not None else None
    for i, row in enumerate(rows):
        cells = "".join(_cell(str(cell), numeric[j],
                              links.get(i) if links and j == 0 else None, sortable)
                        for j, cell in enumerate(row))
        tr = " data-first-failure" if mark_first and i == 0 else ""
        if result_of is not None:
            tr += f' data-result="{e(result_of[i])}"'
        out.append(f"<tr{tr}>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def filter_box(table_id: str, results: Iterable[str],
               placeholder: str = "filter: scenario, dtype, tensor...",
               any_result: str = "any result") -> str:
    """The filter box of table ``table_id`` (the inline script): a text filter and a choice
    of ``data-result`` among ``results``."""
    options = "".join(f'<option value="{e(r)}">{e(r)}</option>' for r in
                      dict.fromkeys(results))
    return (f'<div class="filter" data-filter-for="{e(table_id)}"><input type="search" '
            f'placeholder="{e(placeholder)}" aria-label="filter rows"> '
            f'<select aria-label="result"><option value="">{e(any_result)}</option>{options}'
            '</select> <span class="count note"></span></div>')


def _plot_order(summary: pd.DataFrame) -> list[str]:
    """Scenario names by interest: failing ones (table order), then multi-step scenarios by
    worst tolerance ratio (closest to failing first), then single-step ones likewise."""
    failing = summary.loc[~summary["passed"], "scenario"].tolist()
    passing = summary[summary["passed"]]
    passing = passing.assign(_single=passing["steps"] <= 1)
    passing = passing.sort_values(["_single", "worst_tol_ratio"], ascending=[True, False],
                                  kind="stable", na_position="last")
    return failing + passing["scenario"].tolist()


def _ulp_section(f32: pd.DataFrame, left: str) -> str:
    """ULP-distance histogram of the float32 rows with a measured ``max_ulp`` (a digest's
    ``ulps``), with a caption stating what was measured and how many of those rows fail."""
    if f32.empty:
        return ""
    by_kind = {k: g["max_ulp"].to_numpy() for k, g in f32.groupby("kind", sort=False)}
    median, largest = float(f32["max_ulp"].median()), float(f32["max_ulp"].max())
    failing = int((~f32["passed"].astype(bool)).sum()) if "passed" in f32 else 0
    verdict = (f"{failing} of these rows fail their tolerance." if failing else
               "Every one of these rows is within its tolerance or explained as rounding.")
    return ("<h2 id='ulp'>float32: ULP distances</h2><p class='note'>Largest distance in "
            f"units in the last place between {e(left)} and torch in each float32 tensor, "
            f"over {len(f32)} rows: median {median:g} ULP, largest {largest:g} ULP. "
            f"{verdict}</p><img alt=\"ULP histogram\" loading=\"lazy\" "
            f"src=\"{plots.ulp_histogram_plot(by_kind, left)}\">")


def _heatmap(heat: pd.DataFrame, summary: pd.DataFrame, max_rows: int) -> str:
    """The scenario x kind image of a digest's ``heat``: each cell is the larger of the
    tolerance ratio and the normwise error in units of its tolerance (unless the absolute
    floor waived it) -- the check that decides, so a scenario failing on normwise error shows
    a failing colour; a row failing on NaN/inf is in the "beyond" bin."""
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
                "(failing ones first, then those closest to failing).</p>")
    return (f"<h2 id='heatmap'>Worst failing ratio: scenario &times; tensor kind</h2><p "
            "class='note'>Each cell is the larger of the tolerance ratio and the normwise error "
            "in units of its tolerance (the check that decides); above 1 fails. The colour "
            f"scale runs to 1e{plots.RATIO_LOG_RANGE[1]:.0f} &times; the tolerance; its "
            "top bin holds everything beyond, NaN and infinity included; grey: not "
            f"recorded.</p>{note}<img alt=\"tolerance ratio heatmap\" loading=\"lazy\" "
            f"src=\"{uri}\">")


def _first_nonfinite(row: Any) -> int | None:
    step = getattr(row, "first_nonfinite_step", None)
    return None if step is None or pd.isna(step) else int(step)


def _scenario_plot(row: Any, d: Digest, left: str) -> str:
    name = row.scenario
    loss = d.losses.loc[name]
    err = d.errors.loc[name] if name in d.errors.index.get_level_values(0) else None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if err is not None:
        for kind in KINDS:
            if kind in err.index.get_level_values(0):
                part = err.loc[kind]
                curves[kind] = (part.index.to_numpy(), part.to_numpy(dtype=np.float64))
    uri = plots.scenario_plots(loss.index.to_numpy(), loss["refbp_loss"].to_numpy(),
                               loss["torch_loss"].to_numpy(), curves,
                               float(d.normwise_tol[name]), name, left,
                               first_nonfinite=_first_nonfinite(row))
    return f'<img alt="{e(name)}: loss curves and error vs step" loading="lazy" src="{uri}">'


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


def _failures(d: Digest, anchors: dict[str, str], left: str) -> str:
    """The first-screen table of failing scenarios: one row each, from its first failing row;
    a culprit column when a first failing row names a proven one (``culprit_text``)."""
    summary = d.summary
    names = summary.loc[~summary["passed"], "scenario"].tolist()
    if not names:
        return ""
    first = d.failing.groupby("scenario", sort=False).head(1).set_index("scenario")
    culprits = {name: culprit_text(first.loc[name]) for name in names}
    with_culprit = any(culprits.values())
    header = ["scenario", "dtype", "step", "tensor", "deciding number",
              f"{left} vs torch (worst element)", "failed rows"]
    if with_culprit:
        header.insert(6, "culprit (where proven)")
    failed = summary.set_index("scenario")["failed_rows"]
    rows = []
    for name in names:
        r = first.loc[name]
        row = [name, str(r["dtype"]), str(int(r["step"])), str(r["tensor"]),
               deciding_text(r), values_text(r, left), str(int(failed[name]))]
        if with_culprit:
            row.insert(6, culprits[name] or "not proven")
        rows.append(row)
    table = html_table((header, rows), links={i: anchors[n] for i, n in enumerate(names)},
                       table_id="t-failures", sortable=True, mark_first=True)
    if len(rows) > 12:
        table = f"<div class='scroll'>{table}</div>"
    return (f"<h2 id='failures' class='bad'>Failures ({len(names)} of {len(summary)} "
            "scenarios)</h2><p class='note'>Each failing scenario's first failing row (by "
            "step): the tensor and the number that makes it fail. A name leads to the "
            f"scenario's rows, tables and plots.</p>{table}")


def _noise(summary: pd.DataFrame, anchors: dict[str, str]) -> str:
    noisy = summary[summary["result"] == "noise"]
    if noisy.empty:
        return ""
    rows = [[r.scenario, str(r.dtype), str(r.noise_rows), str(r.first_noise)]
            for r in noisy.itertuples(index=False)]
    table = html_table((["scenario", "dtype", "noise rows", "first noise row"], rows),
                       links={i: anchors[r[0]] for i, r in enumerate(rows)},
                       table_id="t-noise", sortable=True)
    if len(rows) > 12:
        table = f"<div class='scroll'>{table}</div>"
    return ("<h2 id='noise' class='warn'>Rounding noise, not failures "
            f"({len(noisy)} scenarios)</h2><p class='note'>Rows outside the tolerance but "
            "within it plus the measured rounding floor: two correct roundings of an "
            f"ill-conditioned value.</p>{table}")


def _all_scenarios(summary: pd.DataFrame, anchors: dict[str, str], max_rows: int) -> str:
    shown = _closest_first(summary, max_rows)
    rows = summary[summary["scenario"].isin(shown)]
    table = overview_table(rows)
    names = rows["scenario"].tolist()
    body = html_table(table, links={i: anchors[n] for i, n in enumerate(names) if n in anchors},
                      table_id="t-all", sortable=True, results=rows["result"].tolist())
    note = ""
    if len(rows) < len(summary):
        note = (f" Showing {len(rows)} of {len(summary)}: every failing and noisy scenario and "
                "the passing ones closest to failing; all are in results.parquet.")
    return (f"<h2 id='scenarios'>All scenarios ({len(summary)})</h2><p class='note'>Click a "
            f"column header to sort; type to filter.{note}</p>"
            f"{filter_box('t-all', ['FAIL', 'noise', 'pass'])}<div class='scroll'>{body}</div>")


def _closest_first(summary: pd.DataFrame, n: int) -> set[str]:
    """The non-passing scenarios and, up to ``n`` in all, the passing ones closest to
    failing."""
    order = _plot_order(summary)
    keep = set(summary.loc[summary["result"] != "pass", "scenario"])
    return keep | set([name for name in order if name not in keep][:max(n - len(keep), 0)])


def _scenario_details(row: Any, d: Digest, messages: dict[str, list[str]], table: Table,
                      plot: bool, left: str, anchor: str, is_open: bool) -> str:
    cls = {"FAIL": "bad", "noise": "warn"}.get(row.result, "ok")
    first = f" &mdash; first failure {e(row.first_failure)}" if row.first_failure else ""
    parts = [f'<details class="scenario" id="{anchor}"{" open" if is_open else ""}>',
             f"<summary>{e(row.scenario)} <span class='{cls}'>{e(row.result)}</span>{first}"
             "</summary>", f"<p class='note'>{e(scenario_caption(row))}</p>"]
    if row.explanation:
        parts.append(f"<p class='explain'><b>Explanation:</b> {e(row.explanation)}</p>")
    if messages.get(row.scenario):
        items = "".join(f"<li class='mono'>{e(m)}</li>" for m in messages[row.scenario])
        parts.append(f"<ul class='messages'>{items}</ul>")
    parts.append(html_table(table))
    if plot:
        parts.append(_scenario_plot(row, d, left))
    parts.append("</details>")
    return "\n".join(parts)


def _details(d: Digest, anchors: dict[str, str], left: str, plotted: set[str]) -> str:
    """Per scenario with an anchor (see ``render_html``) its details: open for the first
    failing ones, collapsed in a group for the passing ones."""
    summary = d.summary
    tables = kind_tables(d.worst, left)
    empty = kind_table(d.worst.iloc[:0], left)
    messages = {name: msgs for _, groups in message_sections(d) for name, msgs in groups}
    single = len(summary) == 1
    out: list[str] = []
    passing: list[str] = []
    n_failing = 0
    for row in summary.itertuples(index=False):
        if row.scenario not in anchors:
            continue
        opened = single or (row.result == "FAIL" and n_failing < MAX_OPEN_FAILING)
        n_failing += row.result == "FAIL"
        text = _scenario_details(row, d, messages, tables.get(row.scenario, empty),
                                 row.scenario in plotted, left, anchors[row.scenario], opened)
        (passing if row.result == "pass" and not single else out).append(text)
    parts = [f"<h2 id='details'>{'Scenario' if single else 'Scenario details'}</h2>", *out]
    if passing:
        plural = "scenario" if len(passing) == 1 else "scenarios"
        n_passing = int((summary["result"] == "pass").sum())
        which = "" if len(passing) == n_passing else \
            f" (the {len(passing)} of {n_passing} closest to failing)"
        parts.append(f"<details class='group' id='passing'><summary>{len(passing)} passing "
                     f"{plural}: worst discrepancy per tensor kind{which}</summary>")
        parts += passing
        parts.append("</details>")
    if len(plotted) < len(summary) and not single:
        parts.append(f"<p class='note'>Plots for {len(plotted)} of {len(summary)} scenarios "
                     "(the failing ones, the ones closest to failing and those selected with "
                     "<code>refbp run --plots EXPRESSION</code>); the others have tables "
                     "only.</p>")
    return "\n".join(parts)


def _graph_view(nodes: pd.DataFrame, max_rows: int) -> str:
    """The nodes of each graph model checked node by node, in execution order: the worst
    tolerance ratio of the node's value and of its gradient; the first departing node (the
    first whose value fails, else the last whose gradient fails) marked."""
    if nodes.empty:
        return ""
    out = ["<h2 id='graph'>Graph models, node by node</h2><p class='note'>Each node's value "
           "and gradient on the first batch (tolerance ratio: 1 is the tolerance); the first "
           "node that departs from torch is marked.</p>"]
    for scenario, rows in nodes.groupby("scenario", sort=False):
        name = rows["tensor"].str.split(":", n=1).str[1]
        table = rows.assign(node=name).pivot_table(
            index="node", columns="kind", values="tol_ratio", aggfunc="max", sort=False)
        expl = rows.assign(node=name).groupby("node", sort=False)["explanation"].first()
        bad_values = rows[(rows["kind"] == "node") & ~rows["passed"]]
        bad_grads = rows[(rows["kind"] == "node_grad") & ~rows["passed"]]
        first = (bad_values["tensor"].iloc[0] if len(bad_values) else
                 bad_grads["tensor"].iloc[-1] if len(bad_grads) else "").split(":", 1)[-1]
        lines = []
        for node in list(table.index)[:max_rows]:
            cls = " class='bad'" if node == first else ""
            value = table.loc[node].get("node", float("nan"))
            grad = table.loc[node].get("node_grad", float("nan"))
            lines.append(f"<tr{cls}><td>{e(node)}</td><td>{e(expl[node])}</td>"
                         f"<td class='num'>{value:.3g}</td><td class='num'>{grad:.3g}</td></tr>")
        more = (f"<p class='note'>{len(table) - max_rows} more nodes in the results table.</p>"
                if len(table) > max_rows else "")
        head = (f"<p>{e(scenario)}: first departing node <b>{e(first)}</b></p>" if first
                else f"<p>{e(scenario)}: every node within tolerance</p>")
        out.append(f"{head}<table><tr><th>node</th><th>op, ATen operator, source</th>"
                   f"<th>value ratio</th><th>gradient ratio</th></tr>{''.join(lines)}</table>"
                   f"{more}")
    return "".join(out)


def _verdict(summary: pd.DataFrame, n_rows: int, provenance: dict[str, Any]) -> str:
    passed = bool(summary["passed"].all())
    badge = "<span class='badge ok'>PASS</span>" if passed else \
        "<span class='badge bad'>FAIL</span>"
    what = f"{sides(provenance)[0]} vs torch"
    if provenance.get("suite"):
        what += f", suite {provenance['suite']}"
    lost = lost_workers_sentence(provenance)
    lost_line = f"<p class='warn' id='lost-workers'>{e(lost)}</p>" if lost else ""
    return (f"<p class='verdict {'ok' if passed else 'bad'}'>{badge}"
            f"{e(headline(summary, n_rows))}</p>{lost_line}<p class='note'>{e(what)}; how to "
            "read it and the run's provenance are at the <a href='#provenance'>bottom</a>.</p>")


def _provenance(provenance: dict[str, Any]) -> str:
    return ("<details id='provenance'><summary><b>Provenance and how to read this report"
            f"</b></summary><p>{e(verdict_note(provenance))}</p>"
            f"{html_table(provenance_table(provenance))}</details>")


def render_html(d: Digest, provenance: dict[str, Any], *,
                plots: Callable[[str], bool] | None = None,
                max_plot_scenarios: int = MAX_PLOT_SCENARIOS,
                closest_plotted: int = CLOSEST_PLOTTED,
                max_heatmap_rows: int = MAX_HEATMAP_ROWS,
                max_passing_details: int = MAX_PASSING_DETAILS,
                max_table_rows: int = MAX_TABLE_ROWS) -> str:
    """The text of ``report.html`` for the digest of a validated results table (plots for
    the scenarios of :func:`plotted_scenarios`; details for the failing and noisy ones and
    ``max_passing_details`` passing ones; a scenario table of at most ``max_table_rows``)."""
    summary = d.summary
    single = len(summary) == 1
    left = sides(provenance)[1]
    plotted = plotted_scenarios(summary, plots, max_plot_scenarios=max_plot_scenarios,
                                closest=closest_plotted)
    detailed = plotted | _closest_first(
        summary, max_passing_details + int((summary["result"] != "pass").sum()))
    anchors = {name: f"s{i}" for i, name in enumerate(summary["scenario"])
               if name in detailed}
    links = [("failures", "Failures", not summary["passed"].all()),
             ("noise", "Noise", (summary["result"] == "noise").any()),
             ("scenarios", "All scenarios", not single), ("heatmap", "Heatmap", not single),
             ("ulp", "ULP distances", not d.ulps.empty),
             ("graph", "Graph nodes", not d.nodes.empty), ("details", "Details", True),
             ("provenance", "Provenance", True)]
    nav = " ".join(f"<a href='#{a}'>{t}</a>" for a, t, shown in links if shown)
    parts = [_verdict(summary, d.n_rows, provenance), f"<nav>{nav}</nav>",
             _failures(d, anchors, left), _noise(summary, anchors)]
    if not single:
        parts += [_all_scenarios(summary, anchors, max_table_rows),
                  _heatmap(d.heat, summary, max_heatmap_rows)]
    parts += [_ulp_section(d.ulps, left), _graph_view(d.nodes, max_table_rows),
              _details(d, anchors, left, plotted),
              _provenance(provenance)]
    return page("refbp parity report", parts)


def page(title: str, parts: Iterable[str]) -> str:
    """A self-contained HTML page: ``title`` as its title and heading, then ``parts`` (empty
    ones left out), with the inline style sheet and script."""
    head = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)}</title>", f"<style>{CSS}</style></head><body>",
            f"<h1>{e(title)}</h1>"]
    return "\n".join([*head, *(p for p in parts if p), f"<script>{JS}</script>",
                      "</body></html>"])



