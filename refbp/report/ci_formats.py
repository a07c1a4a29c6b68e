"""Machine-readable outputs for CI: JUnit XML, JSON and GitHub Actions annotations.

- :func:`run_junit`: one ``<testcase>`` per scenario of a ``refbp run`` (failure = the
  scenario's first failing row as a "refbp vs torch" message).
- :func:`compare_junit`, :func:`compare_json`, :func:`compare_github`: the outcome of
  ``refbp compare`` (see :mod:`refbp.report.compare`). In JUnit each scenario of either report is
  one test case that fails when one of its cases newly fails, grew past the factor or is
  missing from the new report (unless removals are allowed); in GitHub form, one ``::error``
  annotation per regressing scenario (its worst case: dtype, tensor, first failing step),
  worst first and at most :data:`MAX_ANNOTATIONS`, and the Markdown job summary, which lists
  every regressing scenario.

Nothing here imports torch; XML is built with :mod:`xml.etree.ElementTree`, so names and
messages are escaped.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from refbp.report.markdown import md_table
from refbp.report.reproduce import PREFIX

if TYPE_CHECKING:
    from refbp.report.compare import ComparisonResult


@dataclass(frozen=True)
class TestCase:
    """One JUnit test case: ``failure`` is None when it passed."""

    name: str
    classname: str
    failure: str | None = None
    details: str = ""
    properties: tuple[tuple[str, str], ...] = ()


def junit_xml(suite: str, cases: Iterable[TestCase]) -> str:
    """A JUnit XML document (``<testsuites>`` with one ``<testsuite>``) for ``cases``."""
    cases = list(cases)
    failures = sum(c.failure is not None for c in cases)
    root = ET.Element("testsuites", name="refbp", tests=str(len(cases)),
                      failures=str(failures), errors="0")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(failures), errors="0", skipped="0")
    for c in cases:
        tc = ET.SubElement(ts, "testcase", name=c.name, classname=c.classname)
        if c.properties:
            props = ET.SubElement(tc, "properties")
            for key, value in c.properties:
                ET.SubElement(props, "property", name=key, value=value)
        if c.failure is not None:
            f = ET.SubElement(tc, "failure", message=c.failure, type="ParityFailure")
            f.text = c.details or c.failure
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _num(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.6g}"


def run_junit(summary: pd.DataFrame, suite: str) -> str:
    """JUnit XML of a run from its per-scenario summary (``refbp.report.scenario_summary``)."""
    cases = []
    for _, row in summary.iterrows():
        passed = bool(row["passed"])
        cases.append(TestCase(
            name=str(row["scenario"]), classname=f"refbp.{suite or 'scenarios'}.{row['dtype']}",
            failure=None if passed else f"{row['first_failure']}: "
            f"{row['first_failure_message']}",
            details="" if passed else str(row["first_failure_message"]),
            properties=(("worst_normwise", _num(row["worst_normwise"])),
                        ("worst_tol_ratio", _num(row["worst_tol_ratio"])))))
    return junit_xml(f"refbp run {suite}".strip(), cases)


def _case_records(result: ComparisonResult) -> list[dict[str, Any]]:
    """Every regressing case as a flat record (reason, scenario, dtype, tensor, figures)."""
    out: list[dict[str, Any]] = []
    for reason, table in (("newly failing", result.newly_failing), ("grown", result.grown),
                          ("missing", result.removed_cases)):
        for (scenario, dtype, tensor), r in table.iterrows():
            step = r.get("first_failing_step_new")
            out.append({
                "reason": reason, "scenario": str(scenario), "dtype": str(dtype),
                "tensor": str(tensor),
                "first_failing_step": None if step is None or pd.isna(step) else int(step),
                "tol_ratio_baseline": float_or_none(r.get("tol_ratio_base")),
                "tol_ratio_new": float_or_none(r.get("tol_ratio_new")),
                "normwise_ratio_baseline": float_or_none(r.get("normwise_ratio_base")),
                "normwise_ratio_new": float_or_none(r.get("normwise_ratio_new")),
                "reproduce": result.reproduce.get(str(scenario)),
            })
    return out


def float_or_none(x: Any) -> float | None:
    """``x`` as a JSON number: a finite float, else None (NaN, infinity, missing)."""
    if x is None or pd.isna(x):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def compare_json(result: ComparisonResult) -> str:
    """The comparison as a JSON document (stable keys; ``regressed`` is the verdict)."""
    doc = {
        "regressed": result.regressed,
        "baseline": result.baseline, "new": result.new,
        "factor": result.factor, "floor": result.floor,
        "allow_removed": result.allow_removed,
        "counts": {"newly_failing": len(result.newly_failing), "grown": len(result.grown),
                   "fixed": len(result.fixed), "missing_cases": len(result.removed_cases),
                   "added_scenarios": len(result.added_scenarios),
                   "removed_scenarios": len(result.removed_scenarios)},
        "regressions": _case_records(result),
        "added_scenarios": result.added_scenarios,
        "removed_scenarios": result.removed_scenarios,
        "changed_scenarios": result.changed_scenarios,
        "commits": {side: p.get("git_commit") for side, p in result.provenance.items()},
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _describe(rec: dict[str, Any]) -> str:
    where = f"{rec['scenario']} ({rec['dtype']}), {rec['tensor']}"
    if rec["reason"] == "missing":
        return f"{where}: in the baseline but missing from the new report"
    step = ("" if rec["first_failing_step"] is None
            else f", first failing step {rec['first_failing_step']}")
    again = f"; {PREFIX}{rec['reproduce']}" if rec.get("reproduce") else ""
    return (f"{where}: {rec['reason']}{step}; tolerance ratio {_num(rec['tol_ratio_baseline'])} "
            f"-> {_num(rec['tol_ratio_new'])}, normwise/tol "
            f"{_num(rec['normwise_ratio_baseline'])} -> {_num(rec['normwise_ratio_new'])}"
            f"{again}")


def _counted(result: ComparisonResult) -> list[dict[str, Any]]:
    """The regressing case records; missing cases count only when removals are not allowed."""
    return [r for r in _case_records(result)
            if not (r["reason"] == "missing" and result.allow_removed)]


def compare_junit(result: ComparisonResult) -> str:
    """The comparison as JUnit XML: one test case per scenario of either report."""
    by_scenario: dict[str, list[str]] = {}
    for rec in _counted(result):
        by_scenario.setdefault(rec["scenario"], []).append(_describe(rec))
    if not result.allow_removed:
        for name in result.removed_scenarios:
            by_scenario.setdefault(name, []).insert(
                0, f"{name}: scenario in the baseline but missing from the new report")
    names = list(dict.fromkeys([*result.scenarios, *result.removed_scenarios]))
    cases = [TestCase(name=name, classname="refbp.compare",
                      failure=by_scenario[name][0] if name in by_scenario else None,
                      details="\n".join(by_scenario.get(name, [])))
             for name in names]
    return junit_xml("refbp compare", cases)


def _escape_annotation(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


MAX_ANNOTATIONS = 10
"""``::error`` lines ``compare --format github`` writes at most: GitHub shows 10 error
annotations per step (50 per job); the rest are listed in the job summary."""

_SEVERITY = {"newly failing": 0, "missing scenario": 1, "missing": 1, "grown": 2}
"""Order of the regressions, worst first: a case that newly fails, then what went missing,
then a discrepancy that grew while still within tolerance."""


@dataclass(frozen=True)
class ScenarioRegression:
    """A regressing scenario for the annotations: its worst case and how many cases regress."""

    scenario: str
    worst: str
    cases: int
    key: tuple[int, float]


def _worst_ratio(rec: dict[str, Any]) -> float:
    return max((v for v in (rec["tol_ratio_new"], rec["normwise_ratio_new"]) if v is not None),
               default=math.inf)


def regressing_scenarios(result: ComparisonResult) -> list[ScenarioRegression]:
    """One entry per regressing scenario, worst first (severity, then the largest new ratio
    of tolerance)."""
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for rec in _counted(result):
        by_scenario.setdefault(rec["scenario"], []).append(rec)
    out = []
    for name, recs in by_scenario.items():
        worst = min(recs, key=lambda r: (_SEVERITY[r["reason"]], -_worst_ratio(r)))
        out.append(ScenarioRegression(name, _describe(worst), len(recs),
                                      (_SEVERITY[worst["reason"]], -_worst_ratio(worst))))
    if not result.allow_removed:
        out += [ScenarioRegression(name, f"scenario {name} is in the baseline but missing from "
                                         "the new report", 1, (_SEVERITY["missing scenario"], 0.0))
                for name in result.removed_scenarios]
    return sorted(out, key=lambda r: r.key)


def compare_github(result: ComparisonResult,
                   limit: int = MAX_ANNOTATIONS) -> tuple[str, str]:
    """``(annotations, summary)``: at most ``limit`` ``::error`` lines, one per regressing
    scenario, worst first, and the Markdown job summary, which lists every regressing
    scenario (those past the limit too) before the full comparison."""
    scenarios = regressing_scenarios(result)
    lines = []
    for reg in scenarios[:limit]:
        more = f" (and {reg.cases - 1} more regressing cases)" if reg.cases > 1 else ""
        lines.append(f"::error title={_escape_annotation(f'refbp parity: {reg.scenario}')}::"
                     f"{_escape_annotation(reg.worst + more)}")
    summary = result.to_markdown()
    if scenarios:
        shown = min(limit, len(scenarios))
        table = md_table((["scenario", "regressing cases", "worst"],
                          [[r.scenario, str(r.cases), r.worst] for r in scenarios]))
        summary += ("\n\n## Regressing scenarios, worst first\n\n"
                    f"{len(scenarios)} regressing scenarios; the {shown} worst are annotated "
                    f"in the log.\n\n{table}\n")
    return "\n".join(lines) + ("\n" if lines else ""), summary
