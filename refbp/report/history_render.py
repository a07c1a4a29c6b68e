"""The tables of a regression history (:mod:`refbp.report.history`) as Markdown and CSV.

``refbp history`` prints :func:`to_markdown` and writes it to ``history.md``, the tidy
:func:`to_csv` to ``history.csv`` (one row per report and scenario, every report) and
``history.html`` (:mod:`refbp.report.history_html`). The figure of a scenario at a report is
its *worst ratio to tolerance*: over all its tensors and steps, the larger of the tolerance
ratio ``max |a-b| / (atol + rtol |b|)`` and the normwise error over its tolerance, as the
verdict reads them (a normwise error the absolute floor waived does not count; NaN/inf
failures are infinite: ``refbp.report.summary.fail_ratio``); above 1 the scenario is outside
tolerance.
"""

from __future__ import annotations

import pandas as pd

from refbp.report.history import History
from refbp.report.markdown import md_list, md_table
from refbp.report.summary import Table, fmt

MAX_POINT_COLUMNS = 10
"""The scenario table of the Markdown shows the latest this many reports (the CSV all)."""
MAX_FLAG_LINES = 20
"""Flagged scenarios listed per comparison in the Markdown (the CSV and HTML list all)."""
FLAG_MARK = " ⚑"
"""Appended to a figure that the comparison with the previous report flags."""


def comparison_line(h: History, i: int) -> str:
    """"REGRESSION: 1 newly failing, 2 grown more than 10x, ..." for point ``i`` vs ``i-1``."""
    if i == 0:
        return "first report"
    r = h.comparisons[i - 1]
    verdict = "REGRESSION" if r.regressed else "no regression"
    counts = [(len(r.newly_failing), "newly failing"),
              (len(r.grown), f"grown more than {h.factor:g}x"), (len(r.fixed), "fixed"),
              (len(r.added_scenarios), "added"), (r.missing, "missing"),
              (len(r.changed_scenarios), "reconfigured")]
    said = ", ".join(f"{n} {what}" for n, what in counts if n)
    return f"{verdict}: {said}" if said else verdict


def points_table(h: History) -> Table:
    """One row per report: when, commit, torch, machine, counts and the comparison."""
    header = ["#", "started", "commit", "torch", "machine", "scenarios", "failed",
              "worst ratio to tolerance", "vs previous", "source"]
    ratio = h.worst["ratio"]
    rows = []
    for i, p in enumerate(h.points):
        mine = h.worst["point"] == i
        rows.append([f"#{i + 1}", p.started.isoformat(timespec="seconds"), p.commit, p.torch,
                     p.machine, str(int(mine.sum())),
                     str(int((~h.worst.loc[mine, "passed"].astype(bool)).sum())),
                     fmt(ratio[mine].max()), comparison_line(h, i), p.source])
    return header, rows


def scenario_matrix(h: History, last: int | None = None) -> pd.DataFrame:
    """Scenario x report: the worst ratio to tolerance (NaN where a report lacks the
    scenario), rows in :meth:`History.scenarios` order, columns the 0-based report index
    (the latest ``last`` reports only, when given)."""
    m = (h.worst.pivot_table(index="scenario", columns="point", values="ratio", aggfunc="max",
                      dropna=False))
    cols = list(range(len(h.points)))
    if last is not None:
        cols = cols[-last:]
    return m.reindex(index=h.scenarios(), columns=cols)


def flag_text(h: History, scenario: str) -> str:
    """Every flag of ``scenario`` over the history: ``"#3: grown 12x: loss; #5: fixed: loss"``."""
    return "; ".join(f"#{i + 1}: {', '.join(texts)}" for (i, s), texts in
                     sorted(h.flags.items()) if s == scenario)


def scenario_table(h: History, last: int | None = MAX_POINT_COLUMNS) -> Table:
    """The worst ratio to tolerance of each scenario at each report (flagged figures marked),
    and the scenario's flags."""
    m = scenario_matrix(h, last)
    dtypes = h.worst.groupby("scenario")["dtype"].last()
    header = ["scenario", "dtype", *(f"#{i + 1}" for i in m.columns), "flags"]
    rows = []
    for name, values in m.iterrows():
        cells = [("-" if pd.isna(v) else fmt(v)) + (FLAG_MARK if (i, name) in h.flags else "")
                 for i, v in values.items()]
        rows.append([str(name), str(dtypes.get(name, "")), *cells, flag_text(h, str(name))])
    return header, rows


def change_lines(h: History, i: int, limit: int | None = MAX_FLAG_LINES) -> list[str]:
    """``"scenario: flag, flag"`` for every scenario flagged at point ``i`` (at most
    ``limit``, then a count of the rest)."""
    lines = [f"{s}: {', '.join(texts)}" for (j, s), texts in sorted(h.flags.items()) if j == i]
    if limit is not None and len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more (history.csv)"]
    return lines


def headline(h: History, verdict: bool = True) -> str:
    """"3 reports from ... to ...; latest vs previous: REGRESSION" (without the verdict when
    ``verdict`` is false)."""
    first, last = h.points[0].started, h.points[-1].started
    n = len(h.points)
    span = (f"{n} reports from {first.isoformat(timespec='seconds')} to "
            f"{last.isoformat(timespec='seconds')}" if n > 1
            else f"1 report ({first.isoformat(timespec='seconds')})")
    if n == 1:
        return f"{span}; nothing to compare it with"
    if not verdict:
        return span
    return f"{span}; latest vs previous: {'REGRESSION' if h.regressed else 'no regression'}"


def rule_text(h: History) -> str:
    """How reports are compared (the ``refbp compare`` rule and its settings)."""
    removed = " (missing scenarios allowed)" if h.allow_removed else ""
    return (f"Each report is compared with the one before it as `refbp compare` does (factor "
            f"{h.factor:g}, floor {h.floor:g}{removed}): a case (scenario, dtype, tensor) "
            "newly failing, grown past the factor or missing is a regression. Figures: the "
            "worst ratio to tolerance of each scenario (the larger of the tolerance ratio "
            "and the normwise error over its tolerance, worst over tensors and steps; above "
            f"1 is outside tolerance);{FLAG_MARK} marks a flagged figure.")


def to_markdown(h: History) -> str:
    """The history as Markdown: reports, changes, the scenario table."""
    parts = [f"## refbp history: {headline(h)}", "", rule_text(h), "",
             f"### Reports ({len(h.points)})", "", md_table(points_table(h)), ""]
    changes = [(i, change_lines(h, i)) for i in range(1, len(h.points))]
    changes = [(i, lines) for i, lines in changes if lines]
    if changes:
        parts += ["### Changes", ""]
        for i, lines in changes:
            parts += [f"#{i + 1} vs #{i} ({comparison_line(h, i)})", "", md_list(lines), ""]
    n = len(h.points)
    shown = min(n, MAX_POINT_COLUMNS)
    title = ("### Worst ratio to tolerance per scenario" +
             (f" (latest {shown} of {n} reports; all in history.csv)" if shown < n else ""))
    parts += [title, "", md_table(scenario_table(h)), ""]
    return "\n".join(parts)


def to_frame(h: History) -> pd.DataFrame:
    """The tidy table of ``history.csv``: one row per report and scenario, with the report's
    start time, commit, torch, machine and source, and the scenario's figures and flags; a
    scenario flagged where the report lacks it (missing) has a row with its flag and no
    figures."""
    w = h.worst
    info = pd.DataFrame([{"point": i, "report": f"#{i + 1}",
                          "started": p.started.isoformat(timespec="seconds"),
                          "git_commit": str(p.provenance.get("git_commit") or "unknown"),
                          "torch": p.torch, "machine": p.machine, "source": p.source,
                          "regression": h.regressed_at(i)} for i, p in enumerate(h.points)])
    present = set(zip(w["point"], w["scenario"], strict=True))
    absent = pd.DataFrame([{"point": i, "scenario": name} for (i, name) in sorted(h.flags)
                           if (i, name) not in present], columns=["point", "scenario"])
    if len(absent):  # flagged where the report lacks them (missing): a row with the flag
        w = pd.concat([w, absent], ignore_index=True)
    out = w.rename(columns={"ratio": "worst_ratio"}).merge(info, on="point")
    out["flags"] = ["; ".join(h.flags.get((int(i), str(s)), []))
                    for i, s in zip(out["point"], out["scenario"], strict=True)]
    cols = ["report", "started", "git_commit", "torch", "machine", "scenario", "dtype",
            "worst_ratio", "tol_ratio", "normwise_ratio", "passed", "noise", "flags",
            "regression", "source"]
    return out.sort_values(["point", "scenario"], kind="stable")[cols]


def to_csv(h: History) -> str:
    """:func:`to_frame` as CSV text (floats round-trip exactly)."""
    text: str = to_frame(h).to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return text
